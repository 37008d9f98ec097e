/* fragment: how much memory an allocator holds on to when lifetimes mix.
 * Each phase grows (every thread allocates its share of `blocks`, mostly small
 * with some medium ones, every byte written so RSS reflects them) and then
 * releases: short-lived blocks die in the phase that made them, long-lived ones
 * one to three phases later, and a small set of small blocks of the first
 * phase (keep_permille) lives to the end, as a program's start-up state does.
 * (Kept blocks spread over every phase would pin every slab of every
 * allocator, and no allocator could show memory going back.) After each
 * release the resident set is compared with the bytes still live; after the
 * last phase everything but the permanent set is freed and measured once more.
 *
 * Reported: live_bytes and rss_bytes at the end, base_rss_bytes (RSS before the
 * first phase: binary, libraries, harness arrays), peak_rss_bytes (VmHWM or the
 * largest RSS sampled after a growth phase), peak_live_bytes, rss_over_live =
 * (rss - base) / live at the end, settled_rss_bytes and settled_rss_over_live after
 * settle_ms of light churn (allocators that return memory with a delay, on
 * activity, show it there) and worst_rss_over_live over all release
 * points. One operation = one malloc (each block is freed once). */
#include "bench.h"

#include <inttypes.h>

static bench_knob knobs[] = {
    BENCH_KNOB("phases", 8, 3, 1, "grow/release phases"),
    BENCH_KNOB("blocks", 200000, 12000, 1, "blocks allocated per phase, total over threads"),
    BENCH_KNOB("medium_pct", 5, 5, 0, "percent of blocks that are medium sized"),
    BENCH_KNOB("small_max", 256, 256, 16, "small blocks: 16..small_max bytes"),
    BENCH_KNOB("medium_max", 32768, 32768, 16, "medium blocks: small_max+1..medium_max bytes"),
    BENCH_KNOB("long_permille", 100, 100, 0, "per mille of blocks living 1-3 more phases"),
    BENCH_KNOB("keep_permille", 10, 10, 0, "per mille of the first phase's blocks (small) living to the end"),
    BENCH_KNOB("settle_ms", 1000, 400, 0, "light churn after the last release, then RSS again"),
    BENCH_KNOB_END,
};

static bench_config cfg = {
    .workload = "fragment",
    .summary = "Grow/release phases with mixed lifetimes; reports the resident set against the\n"
               "live bytes after the releases (rss_over_live, peak_rss_bytes, ...).\n"
               "One operation = one malloc.",
    .knobs = knobs,
};

#define FOREVER UINT32_MAX

typedef struct entry {
    void *p;
    uint32_t size;
    uint32_t death; /* phase whose release frees it, FOREVER = permanent */
    uint64_t nonce; /* of the block's contents (bench_block_fill) */
} entry;

typedef struct shared {
    pthread_barrier_t phase;
    uint32_t phases;
    size_t small_max, medium_max;
    unsigned medium_pct, long_pm, keep_pm;
    uint64_t live[BENCH_MAX_THREADS]; /* each thread's live bytes at a barrier */
    uint64_t base_rss, peak_live, peak_rss, final_live, final_rss, settled_rss;
    uint64_t settle_ns;
    double worst_ratio;
} shared;

static uint64_t total_live(const shared *sh, int n)
{
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += sh->live[i];
    return sum;
}

enum point { GROWN, RELEASED, FINAL, SETTLED };

/* Thread 0 records the RSS and the live bytes while the others wait between
 * two barriers: after growth (the peaks), after each release and at the end. */
static void measure(bench_thread *t, shared *sh, enum point at)
{
    pthread_barrier_wait(&sh->phase);
    if (t->id == 0) {
        uint64_t live = total_live(sh, t->nthreads), rss = bench_rss_bytes();
        if (at == GROWN) {
            sh->peak_live = live > sh->peak_live ? live : sh->peak_live;
            sh->peak_rss = rss > sh->peak_rss ? rss : sh->peak_rss;
        } else {
            uint64_t over = rss > sh->base_rss ? rss - sh->base_rss : 0;
            double ratio = live ? (double)over / (double)live : 0;
            sh->worst_ratio = ratio > sh->worst_ratio ? ratio : sh->worst_ratio;
        }
        if (at == FINAL) {
            sh->final_live = live;
            sh->final_rss = rss;
        }
        if (at == SETTLED)
            sh->settled_rss = rss;
    }
    pthread_barrier_wait(&sh->phase);
}

/* Frees the entries that die by phase `upto` and compacts the list. */
static size_t release(entry *e, size_t n, uint32_t upto, uint64_t *live)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].death <= upto) {
            bench_block_check("fragment", e[i].p, e[i].size, 0, 0, cfg.seed, e[i].nonce, cfg.full_check);
            free(e[i].p);
            *live -= e[i].size;
        } else {
            e[kept++] = e[i];
        }
    }
    return kept;
}

static void worker(bench_thread *t)
{
    shared *sh = t->shared;
    uint64_t blocks = (uint64_t)bench_knob_value(&cfg, "blocks");
    uint64_t mine = blocks / (uint64_t)t->nthreads + ((uint64_t)t->id < blocks % (uint64_t)t->nthreads);
    /* Survivors: long-lived from the last three phases plus all permanent ones. */
    size_t cap = mine + 3 * (mine * sh->long_pm / 1000 + 1) + sh->phases * (mine * sh->keep_pm / 1000 + 1);
    entry *e = bench_aux_alloc(cap * sizeof(entry));
    memset(e, 0, cap * sizeof(entry)); /* resident before base_rss is taken */
    size_t n = 0;
    uint64_t live = 0, ops = 0, nonce = bench_nonce_first((uint64_t)t->id);

    bench_start(t);
    if (t->id == 0)
        sh->base_rss = bench_rss_bytes();
    pthread_barrier_wait(&sh->phase);
    for (uint32_t p = 0; p < sh->phases; p++) {
        for (uint64_t j = 0; j < mine; j++) {
            uint32_t slot = (uint32_t)(j % 1000), death = p;
            bool medium = bench_rng_below(&t->rng, 100) < sh->medium_pct;
            if (slot < sh->keep_pm && p == 0) {
                death = FOREVER;
                medium = false;
            } else if (slot < sh->keep_pm + sh->long_pm) {
                death = p + 1 + (uint32_t)bench_rng_below(&t->rng, 3);
            }
            size_t size = medium ? bench_rng_range(&t->rng, sh->small_max + 1, sh->medium_max)
                                 : bench_rng_range(&t->rng, 16, sh->small_max);
            if (n == cap)
                bench_fail("reason=internal entry-list-full cap=%zu", cap);
            uint64_t t0 = bench_lat_begin(&t->lat);
            void *b = bench_malloc(size);
            bench_lat_end(&t->lat, t0);
            memset(b, 0xa5, size); /* resident like real data */
            bench_block_fill(b, size, cfg.seed, nonce, cfg.full_check);
            e[n++] = (entry){b, (uint32_t)size, death, nonce++};
            live += size;
        }
        ops += mine;
        sh->live[t->id] = live;
        measure(t, sh, GROWN);
        n = release(e, n, p, &live);
        sh->live[t->id] = live;
        measure(t, sh, RELEASED);
    }
    n = release(e, n, FOREVER - 1, &live); /* all but the permanent set */
    sh->live[t->id] = live;
    measure(t, sh, FINAL);
    t->ops = ops;
    bench_stop(t);

    /* Settle: a trickle of small short-lived blocks, as a program that goes
     * on running would make, before the last measurement. */
    void *ring[64] = { 0 };
    uint64_t end = bench_now_ns() + sh->settle_ns;
    for (uint64_t k = 0; sh->settle_ns && (k & 255 || bench_now_ns() < end); k++) {
        void **slot = &ring[k % 64];
        if (*slot)
            free(*slot);
        size_t size = bench_rng_range(&t->rng, 16, sh->small_max);
        *slot = bench_malloc(size);
        memset(*slot, 0x5a, size);
    }
    for (int k = 0; k < 64; k++)
        free(ring[k]);
    measure(t, sh, SETTLED);

    release(e, n, FOREVER, &live);
    bench_aux_free(e, cap * sizeof(entry));
}

int main(int argc, char **argv)
{
    bench_parse(&cfg, argc, argv);
    shared *sh = bench_aux_alloc(sizeof *sh);
    sh->phases = (uint32_t)bench_knob_value(&cfg, "phases");
    sh->small_max = (size_t)bench_knob_value(&cfg, "small_max");
    sh->medium_max = (size_t)bench_knob_value(&cfg, "medium_max");
    sh->medium_pct = (unsigned)bench_knob_value(&cfg, "medium_pct");
    sh->long_pm = (unsigned)bench_knob_value(&cfg, "long_permille");
    sh->keep_pm = (unsigned)bench_knob_value(&cfg, "keep_permille");
    sh->settle_ns = (uint64_t)bench_knob_value(&cfg, "settle_ms") * 1000000u;
    if (sh->medium_max <= sh->small_max || sh->medium_max > UINT32_MAX)
        bench_usage_error("need small_max < medium_max < 4 GiB");
    if (sh->medium_pct > 100 || sh->long_pm + sh->keep_pm > 1000)
        bench_usage_error("need medium_pct <= 100 and long_permille + keep_permille <= 1000");
    pthread_barrier_init(&sh->phase, NULL, (unsigned)cfg.threads);

    uint64_t per = (uint64_t)bench_knob_value(&cfg, "blocks") / (uint64_t)cfg.threads + 1;
    bench_team team;
    bench_team_init(&team, &cfg, cfg.threads, sh, per * sh->phases / BENCH_LAT_EVERY + 16);
    bench_team_run(&team, worker);

    bench_result r = {.len = 0};
    bench_extra(&r, "live_bytes", "%" PRIu64, sh->final_live);
    bench_extra(&r, "rss_bytes", "%" PRIu64, sh->final_rss);
    bench_extra(&r, "base_rss_bytes", "%" PRIu64, sh->base_rss);
    /* VmHWM lags: the kernel folds the current RSS into it only at some events. */
    uint64_t hwm = bench_peak_rss_bytes();
    bench_extra(&r, "peak_rss_bytes", "%" PRIu64, hwm > sh->peak_rss ? hwm : sh->peak_rss);
    bench_extra(&r, "peak_live_bytes", "%" PRIu64, sh->peak_live);
    bench_extra(&r, "rss_over_live", "%.3f",
                sh->final_live ? (double)(sh->final_rss > sh->base_rss ? sh->final_rss - sh->base_rss : 0) /
                                     (double)sh->final_live
                               : 0.0);
    bench_extra(&r, "worst_rss_over_live", "%.3f", sh->worst_ratio);
    bench_extra(&r, "settled_rss_bytes", "%" PRIu64, sh->settled_rss);
    bench_extra(&r, "settled_rss_over_live", "%.3f",
                sh->final_live ? (double)(sh->settled_rss > sh->base_rss ? sh->settled_rss - sh->base_rss : 0) /
                                     (double)sh->final_live
                               : 0.0);
    bench_team_report(&team, &r);
    bench_team_destroy(&team);
    pthread_barrier_destroy(&sh->phase);
    bench_aux_free(sh, sizeof *sh);
    return 0;
}
