/* Shared harness of the benchmark workloads: options, threads, latency
 * percentiles, the result line, the batch channel and /proc readers. */
#define _GNU_SOURCE
#include "bench.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *bench_name = "unknown";

/* ---- failure -------------------------------------------------------------- */

/* Formats on the stack and writes directly: the heap may be the broken part. */
void bench_fail(const char *fmt, ...)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "hakmem-bench-error workload=%s ", bench_name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(buf);
    buf[len++] = '\n';
    if (write(STDERR_FILENO, buf, len) < 0)
        _exit(3);
    _exit(3); /* other threads may still run: skip atexit handlers */
}

void bench_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", bench_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try --help)\n");
    exit(2);
}

/* ---- options ------------------------------------------------------------------ */

/* Option names match with '-' and '_' taken as the same character. */
static bool name_eq(const char *a, const char *b, size_t blen)
{
    size_t i = 0;
    for (; i < blen && a[i]; i++) {
        char x = a[i] == '-' ? '_' : a[i], y = b[i] == '-' ? '_' : b[i];
        if (x != y)
            return false;
    }
    return i == blen && a[i] == '\0';
}

static long long parse_number(const char *key, const char *val, long long min)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 0);
    if (errno || end == val || *end != '\0')
        bench_usage_error("%s: '%s' is not an integer", key, val);
    if (v < min)
        bench_usage_error("%s must be at least %lld", key, min);
    return v;
}

static void print_usage(const bench_config *cfg)
{
    printf("usage: %s [--threads N] [--quick] [--latency] [--full-check] [--pin-nodes]"
           " [--seed N] [--KNOB N | KNOB=N ...]\n\n%s\n\n",
           cfg->workload, cfg->summary);
    printf("common options:\n"
           "  --threads N    threads (default 1)\n"
           "  --quick        small run for tests (under 0.2 s)\n"
           "  --latency      time every %dth operation, report p50/p95/p99/p999 in ns\n"
           "  --full-check   fill and verify whole blocks, not just their ends\n"
           "  --pin-nodes    pin thread i to the CPUs of NUMA node i %% nodes\n"
           "  --seed N       random seed (default 42)\n"
           "  --help         this text\n\n",
           BENCH_LAT_EVERY);
    printf("workload knobs (default / --quick default):\n");
    for (const bench_knob *k = cfg->knobs; k && k->name; k++)
        printf("  --%-13s %s (%lld / %lld)\n", k->name, k->help, k->def, k->quick);
    printf("\nOutput: one line 'hakmem-bench-result workload=%s threads=N ops=N seconds=S"
           " ops_per_sec=X check=ok [...]' on stdout;\ncorruption: 'hakmem-bench-error ...'"
           " on stderr and exit status 3.\n",
           cfg->workload);
}

/* Sets option key to val; with val == NULL only tells whether key exists. */
static bool set_option(bench_config *cfg, const char *key, size_t klen, const char *val)
{
    static const struct {
        const char *name;
        size_t off;
    } flags[] = {
        {"quick", offsetof(bench_config, quick)},
        {"latency", offsetof(bench_config, latency)},
        {"full_check", offsetof(bench_config, full_check)},
        {"pin_nodes", offsetof(bench_config, pin_nodes)},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (name_eq(flags[i].name, key, klen)) {
            if (val)
                *(bool *)((char *)cfg + flags[i].off) = parse_number(flags[i].name, val, 0) != 0;
            return true;
        }
    if (name_eq("threads", key, klen)) {
        if (!val)
            return true;
        long long n = parse_number("threads", val, 1);
        if (n > BENCH_MAX_THREADS)
            bench_usage_error("threads must be at most %d", BENCH_MAX_THREADS);
        cfg->threads = (int)n;
        return true;
    }
    if (name_eq("seed", key, klen)) {
        if (val)
            cfg->seed = (uint64_t)parse_number("seed", val, 0);
        return true;
    }
    for (bench_knob *k = cfg->knobs; k && k->name; k++)
        if (name_eq(k->name, key, klen)) {
            if (val) {
                k->value = parse_number(k->name, val, k->min);
                k->set = true;
            }
            return true;
        }
    return false;
}

static bool is_flag(const char *key, size_t klen)
{
    return name_eq("quick", key, klen) || name_eq("latency", key, klen) ||
           name_eq("full_check", key, klen) || name_eq("pin_nodes", key, klen) ||
           name_eq("help", key, klen);
}

static void pin_setup(void);
static void find_hakmem(void);

void bench_parse(bench_config *cfg, int argc, char **argv)
{
    bench_name = cfg->workload;
    cfg->threads = 1;
    cfg->seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *key = arg, *val;
        bool dashed = strncmp(arg, "--", 2) == 0;
        if (dashed)
            key += 2;
        else if (strcmp(arg, "-h") == 0)
            key = "help";
        const char *eq = strchr(key, '=');
        size_t klen = eq ? (size_t)(eq - key) : strlen(key);
        if (name_eq("help", key, klen)) {
            print_usage(cfg);
            exit(0);
        }
        if (eq)
            val = eq + 1;
        else if (dashed && is_flag(key, klen))
            val = "1";
        else if (!dashed)
            bench_usage_error("unexpected argument '%s' (options are --KEY VALUE or KEY=VALUE)", arg);
        else if (!set_option(cfg, key, klen, NULL))
            bench_usage_error("unknown option '%s'", arg);
        else if (i + 1 < argc)
            val = argv[++i];
        else
            bench_usage_error("%s needs a value", arg);
        if (!set_option(cfg, key, klen, val))
            bench_usage_error("unknown option '%.*s'", (int)klen, key);
    }
    for (bench_knob *k = cfg->knobs; k && k->name; k++)
        if (!k->set)
            k->value = cfg->quick ? k->quick : k->def;
    if (cfg->pin_nodes)
        pin_setup();
    find_hakmem();
}

long long bench_knob_value(const bench_config *cfg, const char *name)
{
    for (const bench_knob *k = cfg->knobs; k && k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k->value;
    bench_fail("reason=no-such-knob name=%s", name);
}

/* ---- harness memory ------------------------------------------------------------- */

void *bench_aux_alloc(size_t size)
{
    void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        bench_fail("reason=mmap-failed size=%zu", size);
    return p;
}

void bench_aux_free(void *p, size_t size)
{
    if (p)
        munmap(p, size ? size : 1);
}

/* ---- block contents --------------------------------------------------------------- */

size_t bench_block_check(const char *where, const void *p, size_t expect, size_t lo,
                         size_t hi, uint64_t seed, uint64_t nonce, bool full)
{
    const unsigned char *b = p;
    uint64_t key = bench_block_key(p, seed, nonce), w;
    memcpy(&w, b, 8);
    size_t size = (size_t)(w ^ key);
    if (expect ? size != expect : (size < lo || size > hi))
        bench_fail("reason=corrupt where=%s ptr=%p word0=0x%016" PRIx64 " expected_size=%zu",
                   where, p, w, expect);
    if (size < 16)
        return size;
    if (full)
        for (size_t off = 8; off + 16 <= size; off += 8) {
            memcpy(&w, b + off, 8);
            if (w != key + off)
                bench_fail("reason=corrupt where=%s ptr=%p size=%zu offset=%zu", where, p,
                           size, off);
        }
    memcpy(&w, b + size - 8, 8);
    if (w != ~key + size)
        bench_fail("reason=corrupt where=%s ptr=%p size=%zu offset=%zu", where, p, size,
                   size - 8);
    return size;
}

/* ---- threads ------------------------------------------------------------------------- */

void bench_team_init(bench_team *team, const bench_config *cfg, int n, void *shared,
                     size_t lat_cap)
{
    team->cfg = cfg;
    team->nthreads = n;
    team->t = bench_aux_alloc(sizeof(bench_thread) * (size_t)n);
    for (int i = 0; i < n; i++) {
        bench_thread *t = &team->t[i];
        t->id = i;
        t->nthreads = n;
        bench_rng_seed(&t->rng, cfg->seed, (uint64_t)i);
        bench_lat_init(&t->lat, cfg->latency, lat_cap);
        t->shared = shared;
        t->team = team;
    }
    pthread_barrier_init(&team->start, NULL, (unsigned)n);
    pthread_barrier_init(&team->go, NULL, (unsigned)n);
    pthread_barrier_init(&team->end, NULL, (unsigned)n);
    pthread_barrier_init(&team->done, NULL, (unsigned)n);
}

static void (*team_fn)(bench_thread *);

static void *team_main(void *arg)
{
    bench_pin_thread(((bench_thread *)arg)->id);
    team_fn(arg);
    return NULL;
}

void bench_team_run(bench_team *team, void (*fn)(bench_thread *))
{
    team_fn = fn;
    for (int i = 0; i < team->nthreads; i++) {
        int e = pthread_create(&team->t[i].tid, NULL, team_main, &team->t[i]);
        if (e)
            bench_fail("reason=pthread_create errno=%d thread=%d", e, i);
    }
    for (int i = 0; i < team->nthreads; i++)
        pthread_join(team->t[i].tid, NULL);
}

/* One thread reads hakmem's OS counters once all have arrived, before any
 * clock starts. */
void bench_start(bench_thread *t)
{
    bench_team *team = t->team;
    if (pthread_barrier_wait(&team->start) == PTHREAD_BARRIER_SERIAL_THREAD)
        team->os_counted = bench_os_counts(&team->os_start);
    pthread_barrier_wait(&team->go);
    t->t_start = bench_now_ns();
    t->cpu_ns = bench_thread_cpu_ns();
}

/* The end barrier keeps early finishers from freeing their blocks (untimed)
 * while others are still being timed; the done barrier keeps them from it
 * until the OS counters are read. */
void bench_stop(bench_thread *t)
{
    bench_team *team = t->team;
    t->cpu_ns = bench_thread_cpu_ns() - t->cpu_ns;
    t->t_end = bench_now_ns();
    if (pthread_barrier_wait(&team->end) == PTHREAD_BARRIER_SERIAL_THREAD && team->os_counted)
        bench_os_counts(&team->os_end);
    pthread_barrier_wait(&team->done);
}

void bench_team_destroy(bench_team *team)
{
    for (int i = 0; i < team->nthreads; i++)
        bench_lat_free(&team->t[i].lat);
    pthread_barrier_destroy(&team->start);
    pthread_barrier_destroy(&team->go);
    pthread_barrier_destroy(&team->end);
    pthread_barrier_destroy(&team->done);
    bench_aux_free(team->t, sizeof(bench_thread) * (size_t)team->nthreads);
}

double bench_team_seconds(const bench_team *team)
{
    uint64_t first = UINT64_MAX, last = 0;
    for (int i = 0; i < team->nthreads; i++) {
        first = team->t[i].t_start < first ? team->t[i].t_start : first;
        last = team->t[i].t_end > last ? team->t[i].t_end : last;
    }
    return (double)(last - first) / 1e9;
}

uint64_t bench_team_ops(const bench_team *team)
{
    uint64_t ops = 0;
    for (int i = 0; i < team->nthreads; i++)
        ops += team->t[i].ops;
    return ops;
}

/* ---- latency --------------------------------------------------------------------------- */

uint64_t bench_lat_overhead_ns;

/* The cheapest of many back-to-back clock reads is what a sample pays for itself. */
static void calibrate_overhead(void)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 2000; i++) {
        uint64_t a = bench_now_ns(), b = bench_now_ns();
        if (b - a < best)
            best = b - a;
    }
    bench_lat_overhead_ns = best;
}

void bench_lat_init(bench_lat *l, bool on, size_t cap)
{
    memset(l, 0, sizeof *l);
    l->on = on;
    l->mask = BENCH_LAT_EVERY - 1;
    if (on) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, calibrate_overhead);
        l->cap = cap ? cap : 1;
        /* Touch the samples now so page faults stay out of the timed loop. */
        l->samples = bench_aux_alloc(l->cap * sizeof(uint64_t));
        memset(l->samples, 0, l->cap * sizeof(uint64_t));
    }
}

void bench_lat_every(bench_lat *l, unsigned every)
{
    if (every == 0 || (every & (every - 1)))
        bench_fail("reason=internal lat-every=%u", every);
    l->mask = every - 1;
}

void bench_lat_free(bench_lat *l)
{
    bench_aux_free(l->samples, l->cap * sizeof(uint64_t));
    l->samples = NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static uint64_t percentile(const uint64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(q * (double)n + 0.999999);
    return v[rank ? rank - 1 : 0];
}

/* ---- batch channel ---------------------------------------------------------------------- */

void bench_chan_init(bench_chan *c, uint32_t cap)
{
    atomic_init(&c->head, 0);
    atomic_init(&c->tail, 0);
    c->cap = cap;
    c->slot = bench_aux_alloc(sizeof(bench_batch) * cap);
}

void bench_chan_destroy(bench_chan *c) { bench_aux_free(c->slot, sizeof(bench_batch) * c->cap); }

bool bench_chan_push(bench_chan *c, const bench_batch *b)
{
    uint64_t h = atomic_load_explicit(&c->head, memory_order_relaxed);
    if (h - atomic_load_explicit(&c->tail, memory_order_acquire) == c->cap)
        return false;
    bench_batch *s = &c->slot[h % c->cap];
    s->n = b->n;
    memcpy(s->p, b->p, b->n * sizeof(void *));
    memcpy(s->nonce, b->nonce, b->n * sizeof(uint64_t));
    atomic_store_explicit(&c->head, h + 1, memory_order_release);
    return true;
}

bool bench_chan_pop(bench_chan *c, bench_batch *b)
{
    uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
    if (t == atomic_load_explicit(&c->head, memory_order_acquire))
        return false;
    const bench_batch *s = &c->slot[t % c->cap];
    b->n = s->n;
    memcpy(b->p, s->p, s->n * sizeof(void *));
    memcpy(b->nonce, s->nonce, s->n * sizeof(uint64_t));
    atomic_store_explicit(&c->tail, t + 1, memory_order_release);
    return true;
}

/* ---- hakmem's OS calls ------------------------------------------------------------------ */

static size_t (*hakmem_stats_json)(char *, size_t);

/* Once, before any timing: dlsym may allocate.  Only when hakmem's
 * statistics are asked for (HAKMEM_STATS, as the sweep does): reading them
 * costs instructions in the library, which an instruction count of the
 * allocator (hakmem-bench instructions) must not see. */
static void find_hakmem(void)
{
    const char *want = getenv("HAKMEM_STATS");
    if (want && *want && strcmp(want, "0") != 0)
        hakmem_stats_json = (size_t(*)(char *, size_t))dlsym(RTLD_DEFAULT, "hak_stats_json");
}

/* The number after "name": in the "os" object of hakmem's statistics. */
static uint64_t os_field(const char *os, const char *name)
{
    char key[16];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = strstr(os, key);
    if (!at)
        bench_fail("reason=bad-hakmem-stats missing=%s", name);
    return strtoull(at + strlen(key), NULL, 10);
}

bool bench_os_counts(bench_os *o)
{
    if (!hakmem_stats_json)
        return false;
    char buf[4096]; /* "os" comes early: a cut-off tail does not matter */
    hakmem_stats_json(buf, sizeof buf);
    const char *os = strstr(buf, "\"os\":{");
    if (!os)
        bench_fail("reason=bad-hakmem-stats missing=os");
    o->mmap = os_field(os, "mmap");
    o->munmap = os_field(os, "munmap");
    o->madvise = os_field(os, "madvise");
    return true;
}

void bench_os_extra(bench_result *r, const bench_os *a, const bench_os *b)
{
    bench_extra(r, "timed_mmap", "%" PRIu64, b->mmap - a->mmap);
    bench_extra(r, "timed_munmap", "%" PRIu64, b->munmap - a->munmap);
    bench_extra(r, "timed_madvise", "%" PRIu64, b->madvise - a->madvise);
}

/* ---- /proc readers (read(2) into a stack buffer: stdio would malloc) ---------------------- */

/* Reads a small file into buf (NUL-terminated); -1 when it cannot be opened. */
static ssize_t read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t n;
    while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

static size_t read_proc(const char *path, char *buf, size_t size)
{
    ssize_t len = read_text(path, buf, size);
    if (len < 0)
        bench_fail("reason=cannot-open path=%s errno=%d", path, errno);
    return (size_t)len;
}

/* ---- NUMA pinning (--pin-nodes) ------------------------------------------------------------ */

#define BENCH_MAX_NODES 64

static cpu_set_t pin_cpus[BENCH_MAX_NODES]; /* CPUs of each node that has any */
static int pin_count;                       /* 0: pinning off */
static _Atomic uint64_t pin_used;           /* bit k: a thread runs on pin_cpus[k] */

/* Adds the numbers of a sysfs list such as "0-1,4,6-7" to set. */
static void parse_list(const char *s, cpu_set_t *set)
{
    while (*s >= '0' && *s <= '9') {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (*end == '-')
            b = strtol(end + 1, &end, 10);
        for (long c = a; c <= b && c < CPU_SETSIZE; c++)
            CPU_SET((int)c, set);
        s = end + (*end == ',');
    }
}

/* The nodes and their CPUs, read once before any thread starts. Memory-only
 * nodes have no CPU to run on and are left out. */
static void pin_setup(void)
{
    char buf[4096], path[64];
    cpu_set_t online;
    CPU_ZERO(&online);
    if (read_text("/sys/devices/system/node/online", buf, sizeof buf) >= 0)
        parse_list(buf, &online);
    for (int n = 0; n < CPU_SETSIZE && pin_count < BENCH_MAX_NODES; n++) {
        if (!CPU_ISSET(n, &online))
            continue;
        snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", n);
        CPU_ZERO(&pin_cpus[pin_count]);
        if (read_text(path, buf, sizeof buf) >= 0)
            parse_list(buf, &pin_cpus[pin_count]);
        if (CPU_COUNT(&pin_cpus[pin_count]) > 0)
            pin_count++;
    }
    if (pin_count == 0) { /* a kernel without NUMA sysfs: one node, our CPUs */
        if (sched_getaffinity(0, sizeof pin_cpus[0], &pin_cpus[0]))
            bench_fail("reason=sched_getaffinity errno=%d", errno);
        pin_count = 1;
    }
}

void bench_pin_thread(int id)
{
    if (pin_count == 0)
        return;
    int k = id % pin_count;
    if (sched_setaffinity(0, sizeof pin_cpus[k], &pin_cpus[k]))
        bench_fail("reason=pin-failed thread=%d node_index=%d errno=%d", id, k, errno);
    atomic_fetch_or(&pin_used, (uint64_t)1 << k);
}

uint64_t bench_rss_bytes(void)
{
    char buf[256];
    read_proc("/proc/self/statm", buf, sizeof buf);
    unsigned long long size_pages, rss_pages;
    if (sscanf(buf, "%llu %llu", &size_pages, &rss_pages) != 2)
        bench_fail("reason=bad-statm");
    return (uint64_t)rss_pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t bench_peak_rss_bytes(void)
{
    char buf[4096];
    read_proc("/proc/self/status", buf, sizeof buf);
    const char *line = strstr(buf, "VmHWM:");
    unsigned long long kb;
    if (!line || sscanf(line + 6, "%llu", &kb) != 1)
        bench_fail("reason=no-VmHWM");
    return (uint64_t)kb * 1024;
}

/* ---- result line ------------------------------------------------------------------------ */

void bench_extra(bench_result *r, const char *key, const char *fmt, ...)
{
    size_t room = sizeof r->extra - r->len;
    int n = snprintf(r->extra + r->len, room, " %s=", key);
    if (n < 0 || (size_t)n >= room)
        bench_fail("reason=result-line-too-long key=%s", key);
    r->len += (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(r->extra + r->len, sizeof r->extra - r->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof r->extra - r->len)
        bench_fail("reason=result-line-too-long key=%s", key);
    r->len += (size_t)n;
}

void bench_report(const bench_config *cfg, int threads, uint64_t ops, double seconds,
                  bench_lat *const *lats, int nlat, bench_result *r)
{
    printf("hakmem-bench-result workload=%s threads=%d ops=%" PRIu64
           " seconds=%.6f ops_per_sec=%.1f check=ok",
           cfg->workload, threads, ops, seconds, seconds > 0 ? (double)ops / seconds : 0.0);
    if (cfg->latency) {
        size_t n = 0;
        for (int i = 0; i < nlat; i++)
            n += lats[i]->n;
        uint64_t *all = bench_aux_alloc((n ? n : 1) * sizeof(uint64_t));
        size_t k = 0;
        for (int i = 0; i < nlat; i++) {
            memcpy(all + k, lats[i]->samples, lats[i]->n * sizeof(uint64_t));
            k += lats[i]->n;
        }
        qsort(all, n, sizeof(uint64_t), cmp_u64);
        printf(" p50_ns=%" PRIu64 " p95_ns=%" PRIu64 " p99_ns=%" PRIu64 " p999_ns=%" PRIu64
               " lat_samples=%zu",
               percentile(all, n, 0.50), percentile(all, n, 0.95), percentile(all, n, 0.99),
               percentile(all, n, 0.999), n);
        printf(" lat_overhead_ns=%" PRIu64, bench_lat_overhead_ns);
        bench_aux_free(all, (n ? n : 1) * sizeof(uint64_t));
    }
    printf("%.*s", (int)r->len, r->extra);
    if (cfg->pin_nodes)
        printf(" pinned_nodes=%d", __builtin_popcountll(atomic_load(&pin_used)));
    /* The knobs make each line self-describing for the sweep's CSV. */
    for (const bench_knob *k = cfg->knobs; k && k->name; k++)
        printf(" %s=%lld", k->name, k->value);
    printf(" seed=%" PRIu64 "%s%s\n", cfg->seed, cfg->quick ? " quick=1" : "",
           cfg->full_check ? " full_check=1" : "");
    fflush(stdout);
}

void bench_team_report(const bench_team *team, bench_result *r)
{
    bench_lat *lats[BENCH_MAX_THREADS];
    uint64_t cpu = 0;
    for (int i = 0; i < team->nthreads; i++) {
        lats[i] = &team->t[i].lat;
        cpu += team->t[i].cpu_ns;
    }
    bench_result all = {.len = 0};
    bench_extra(&all, "cpu_seconds", "%.6f", (double)cpu / 1e9);
    if (team->os_counted)
        bench_os_extra(&all, &team->os_start, &team->os_end);
    if (r) {
        if (r->len >= sizeof all.extra - all.len)
            bench_fail("reason=result-line-too-long");
        memcpy(all.extra + all.len, r->extra, r->len);
        all.len += r->len;
    }
    bench_report(team->cfg, team->cfg->threads, bench_team_ops(team), bench_team_seconds(team),
                 lats, team->nthreads, &all);
}
