/* The option table.  Values come from environ as it is at the first
 * allocation; nothing here allocates, so this runs before hakmem is ready. */
#include "hk_options.h"
#include "hk_error.h"
#include <string.h>
#include <sys/auxv.h>

extern char **environ;

struct hk_options hk_opt = {
    .stats = HK_STATS_OFF,
    .decommit_delay_ms = 250,
    .heap_ss_cache = 2,
    .large_cache_mb = 64,
    .remote_batch = 16,
    .remote_cache = 16,
    .rc_shared_lines = 0,
    .numa = NULL,
    .topology = NULL,
    .profile = NULL,
};

enum opt_kind { OPT_LONG, OPT_STR, OPT_STATS };

struct opt_desc {
    const char *name;   /* without the HAKMEM_ prefix */
    enum opt_kind kind;
    void *field;
    long min, max;
};

static const struct opt_desc opt_table[] = {
    { "STATS",              OPT_STATS, &hk_opt.stats, 0, 2 },
    { "DECOMMIT_DELAY_MS",  OPT_LONG,  &hk_opt.decommit_delay_ms, 0, 3600000 },
    { "SS_CACHE",           OPT_LONG,  &hk_opt.heap_ss_cache, 0, 64 },
    { "LARGE_CACHE_MB",     OPT_LONG,  &hk_opt.large_cache_mb, 0, 65536 },
    { "REMOTE_BATCH",       OPT_LONG,  &hk_opt.remote_batch, 1, 64 },
    { "REMOTE_CACHE",       OPT_LONG,  &hk_opt.remote_cache, 0, 1024 },
    { "REMOTE_CACHE_SHARED_LINES", OPT_LONG, &hk_opt.rc_shared_lines, 0, 1 },
    { "NUMA",               OPT_STR,   &hk_opt.numa, 0, 0 },
    { "TOPOLOGY",           OPT_STR,   &hk_opt.topology, 0, 0 },
    { "PROFILE",            OPT_STR,   &hk_opt.profile, 0, 0 },
};

/* Presets: a documented set of values, applied before the variables so that
 * an explicit HAKMEM_X still wins. */
struct preset {
    const char *name;
    long decommit_delay_ms, heap_ss_cache, large_cache_mb, remote_batch, remote_cache, rc_shared_lines;
    const char *numa;
};

static const struct preset presets[] = {
    { "default",         250,  2,  64, 16,    16, 0, NULL },
    { "fast",           2000,  8, 256, 32,    32, 1, NULL },
    { "low-memory",        0,  0,   0,  4,     0, 0, NULL },
    { "numa-interleave", 250,  2,  64, 16,    16, 0, "interleave" },
};

const char *const hk_profile_names[] = { "default", "fast", "low-memory", "numa-interleave", NULL };

static const char *env_value(const char *name)
{
    size_t n = strlen(name);
    if (environ == NULL)
        return NULL;
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, "HAKMEM_", 7) == 0 && strncmp(*e + 7, name, n) == 0 && (*e)[7 + n] == '=')
            return *e + 8 + n;
    }
    return NULL;
}

static bool parse_long(const char *s, long *out)
{
    long v = 0;
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000L)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

static void apply_preset(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            hk_opt.decommit_delay_ms = presets[i].decommit_delay_ms;
            hk_opt.heap_ss_cache = presets[i].heap_ss_cache;
            hk_opt.large_cache_mb = presets[i].large_cache_mb;
            hk_opt.remote_batch = presets[i].remote_batch;
            hk_opt.remote_cache = presets[i].remote_cache;
            hk_opt.rc_shared_lines = presets[i].rc_shared_lines;
            hk_opt.numa = presets[i].numa;
            return;
        }
    }
    hk_warn("unknown HAKMEM_PROFILE (known: default, fast, low-memory, numa-interleave): ", name);
}

void hk_options_init(void)
{
    /* A set-user-ID, set-group-ID or capability-gaining program (AT_SECURE)
     * takes nothing from its caller's environment, as glibc ignores its
     * malloc tunables and jemalloc its MALLOC_CONF there: HAKMEM_TOPOLOGY
     * would have it parse a file of the caller's choosing. */
    if (getauxval(AT_SECURE))
        return;
    const char *profile = env_value("PROFILE");
    if (profile != NULL)
        apply_preset(profile);
    for (size_t i = 0; i < sizeof opt_table / sizeof opt_table[0]; i++) {
        const struct opt_desc *d = &opt_table[i];
        const char *v = env_value(d->name);
        long x;
        if (v == NULL)
            continue;
        switch (d->kind) {
        case OPT_STR:
            *(const char **)d->field = v;
            break;
        case OPT_STATS:
            if (strcmp(v, "json") == 0)
                *(long *)d->field = HK_STATS_JSON;
            else if (parse_long(v, &x) && x <= 1)
                *(long *)d->field = x;
            else
                hk_warn("HAKMEM_STATS must be 0, 1 or json, ignoring: ", v);
            break;
        case OPT_LONG:
            if (parse_long(v, &x) && x >= d->min && x <= d->max)
                *(long *)d->field = x;
            else
                hk_warn2("value out of range, ignoring: HAKMEM_", d->name, v);
            break;
        }
    }
}
