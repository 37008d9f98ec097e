/* larson: server simulation after Larson & Krishnan (ISMM'98), steady-state
 * variant. The original runs rounds in which new threads inherit the slot
 * arrays of the threads before them, so blocks die in threads other than the
 * one that made them. Here all threads share one array of slots instead
 * (`slots` per thread) and replace random slots anywhere in it: the new block
 * goes in with an atomic exchange, which hands the old block to this thread
 * alone, so each block is freed exactly once and, with T threads, a fraction
 * (T-1)/T of the frees are remote. No thread start-up or exit is measured; the
 * churn workload covers that. One operation = one malloc + one free. */
#include "bench.h"

static bench_knob knobs[] = {
    BENCH_KNOB("iters", 15000000, 400000, 1, "slot replacements (malloc + free), total over threads"),
    BENCH_KNOB("slots", 1000, 1000, 1, "shared slots per thread"),
    BENCH_KNOB("min_size", 16, 16, 8, "smallest block size"),
    BENCH_KNOB("max_size", 512, 512, 8, "largest block size"),
    BENCH_KNOB("lines", 0, 0, 0, "1: count the block lines last touched by another thread (slower)"),
    BENCH_KNOB("ages", 0, 0, 0, "1: how many operations before each block malloc returns was freed (slower)"),
    BENCH_KNOB_END,
};

static bench_config cfg = {
    .workload = "larson",
    .summary = "Larson & Krishnan server simulation, steady state: threads replace random\n"
               "slots of one shared array, so most frees are of blocks another thread made;\n"
               "one operation = one malloc + one free.",
    .knobs = knobs,
};

/* --ages 1: when each block was freed, in a hashed table keyed by address
 * (racy on purpose: a statistic), and the mallocs by how many operations
 * before that was: under 16, 64, 256, 1024, more, or not seen freed.  An
 * allocator that hands out the block freed last keeps most under 16; the
 * younger the block, the likelier its lines are still in this core's
 * cache. */
#define AGE_BUCKETS 6
#define AGE_SLOTS (1u << 20)
struct freed {
    uintptr_t addr;
    uint64_t when;
};

static unsigned age_bucket(uint64_t d)
{
    unsigned b = 0;
    for (uint64_t lim = 16; b < AGE_BUCKETS - 2 && d >= lim; lim *= 4)
        b++;
    return b;
}

static struct freed *freed_slot(struct freed *t, const void *p)
{
    return &t[(uint32_t)(((uintptr_t)p >> 4) * 2654435761u) & (AGE_SLOTS - 1)];
}

/* A slot holds a block's address with the nonce of its contents in the top
 * 16 bits (user addresses lie below 2^48), so that one atomic exchange hands
 * over both. A thread's id takes the low bits of its nonces (as many as T
 * threads need) and a counter the rest: two threads' nonces always differ,
 * and one thread's repeat only after 2^16 / T or more of its allocations. */
#define NONCE_SHIFT 48

static uintptr_t pack(void *p, uint64_t nonce)
{
    if ((uintptr_t)p >> NONCE_SHIFT)
        bench_fail("reason=pointer-above-2^48 ptr=%p", p);
    return (uintptr_t)p | (uintptr_t)nonce << NONCE_SHIFT;
}

static void *unpack(uintptr_t v, uint64_t *nonce)
{
    *nonce = v >> NONCE_SHIFT;
    return (void *)(v & (((uintptr_t)1 << NONCE_SHIFT) - 1));
}

static uint64_t next_nonce(uint64_t *count, unsigned id_bits, int id)
{
    return ((*count)++ << id_bits | (uint64_t)id) & 0xffff;
}

typedef struct shared {
    _Atomic(uintptr_t) *slot;
    size_t nslots, lo, hi;
    bool lines, ages;
    _Atomic uint64_t fill_foreign, fill_lines, check_foreign, check_lines;
    _Atomic uint64_t now;               /* --ages 1: operations so far, all threads */
    struct freed *freed;
    _Atomic uint64_t age[AGE_BUCKETS];  /* mallocs by age, and (last) of blocks not seen freed */
} shared;

/* --lines 1: which thread touched each cache line of a block last (a hashed
 * shadow, racy on purpose: a statistic).  A line another thread touched last
 * is a transfer between cores: on a fill, the allocator handed out memory
 * another core holds (an allocator that reuses a thread's own frees keeps
 * this near 0); on a check, the block was made elsewhere (with T threads,
 * about (T-1)/T whatever the allocator). */
#define SHADOW_LINES (1u << 24)
static uint8_t shadow[SHADOW_LINES];

static unsigned touch_line(uintptr_t line, unsigned me)
{
    uint8_t *s = &shadow[(uint32_t)(line * 2654435761u) % SHADOW_LINES];
    unsigned foreign = *s != 0 && *s != me;
    *s = (uint8_t)me;
    return foreign;
}

/* The lines of a block the fill and the check touch (its first and last
 * words): adds them to *lines, returns how many were foreign. */
static unsigned touch_ends(const void *p, size_t size, unsigned me, uint64_t *lines)
{
    uintptr_t first = (uintptr_t)p >> 6, last = ((uintptr_t)p + size - 1) >> 6;
    *lines += 1 + (last != first);
    return touch_line(first, me) + (last != first ? touch_line(last, me) : 0);
}

static void worker(bench_thread *t)
{
    shared *sh = t->shared;
    size_t per = sh->nslots / (size_t)t->nthreads, first = per * (size_t)t->id;
    uint64_t iters = (uint64_t)bench_knob_value(&cfg, "iters");
    uint64_t mine = iters / (uint64_t)t->nthreads + ((uint64_t)t->id < iters % (uint64_t)t->nthreads);
    bool full = cfg.full_check;
    uint64_t seed = cfg.seed;
    unsigned me = (unsigned)(t->id % 255) + 1;  /* shadow value; 0 = never touched */
    uint64_t fill_foreign = 0, fill_lines = 0, check_foreign = 0, check_lines = 0;
    unsigned id_bits = t->nthreads > 1 ? 64 - (unsigned)__builtin_clzll((uint64_t)t->nthreads - 1) : 0;
    uint64_t count = 0, nonce, old_nonce;

    for (size_t i = first; i < first + per; i++) {
        size_t size = bench_rng_range(&t->rng, sh->lo, sh->hi);
        void *p = bench_malloc(size);
        nonce = next_nonce(&count, id_bits, t->id);
        bench_block_fill(p, size, seed, nonce, full);
        if (sh->lines) {  /* the shadow knows who made the first blocks too (not counted) */
            uint64_t lines = 0;
            touch_ends(p, size, me, &lines);
        }
        atomic_store_explicit(&sh->slot[i], pack(p, nonce), memory_order_release);
    }

    bench_start(t);
    for (uint64_t n = 0; n < mine; n++) {
        size_t i = (size_t)bench_rng_below(&t->rng, sh->nslots);
        size_t size = bench_rng_range(&t->rng, sh->lo, sh->hi);
        uint64_t t0 = bench_lat_begin(&t->lat);
        void *p = bench_malloc(size);
        if (sh->ages) {
            uint64_t now = atomic_fetch_add_explicit(&sh->now, 1, memory_order_relaxed);
            struct freed *f = freed_slot(sh->freed, p);
            atomic_fetch_add_explicit(&sh->age[f->addr == (uintptr_t)p ? age_bucket(now - f->when) : AGE_BUCKETS - 1],
                                      1, memory_order_relaxed);
        }
        nonce = next_nonce(&count, id_bits, t->id);
        bench_block_fill(p, size, seed, nonce, full);
        void *old = unpack(atomic_exchange_explicit(&sh->slot[i], pack(p, nonce), memory_order_acq_rel),
                           &old_nonce);
        size_t old_size = bench_block_check("larson-replace", old, 0, sh->lo, sh->hi, seed, old_nonce, full);
        if (sh->lines) {
            fill_foreign += touch_ends(p, size, me, &fill_lines);
            check_foreign += touch_ends(old, old_size, me, &check_lines);
        }
        if (sh->ages) {
            struct freed *f = freed_slot(sh->freed, old);
            f->addr = (uintptr_t)old;
            f->when = atomic_load_explicit(&sh->now, memory_order_relaxed);
        }
        free(old);
        bench_lat_end(&t->lat, t0);
    }
    t->ops = mine;
    bench_stop(t);
    sh->fill_foreign += fill_foreign;
    sh->fill_lines += fill_lines;
    sh->check_foreign += check_foreign;
    sh->check_lines += check_lines;

    /* After the end barrier nobody exchanges any more: free this thread's range. */
    for (size_t i = first; i < first + per; i++) {
        void *p = unpack(atomic_load_explicit(&sh->slot[i], memory_order_acquire), &nonce);
        bench_block_check("larson-final", p, 0, sh->lo, sh->hi, seed, nonce, full);
        free(p);
    }
}

int main(int argc, char **argv)
{
    bench_parse(&cfg, argc, argv);
    shared sh = {
        .nslots = (size_t)bench_knob_value(&cfg, "slots") * (size_t)cfg.threads,
        .lo = (size_t)bench_knob_value(&cfg, "min_size"),
        .hi = (size_t)bench_knob_value(&cfg, "max_size"),
    };
    if (sh.lo > sh.hi)
        bench_usage_error("min_size must not exceed max_size");
    sh.slot = bench_aux_alloc(sh.nslots * sizeof *sh.slot);

    uint64_t per = (uint64_t)bench_knob_value(&cfg, "iters") / (uint64_t)cfg.threads + 1;
    bench_team team;
    bench_team_init(&team, &cfg, cfg.threads, &sh, per / BENCH_LAT_EVERY + 16);
    if (bench_knob_value(&cfg, "lines") > 1)
        bench_usage_error("lines must be 0 or 1");
    sh.lines = bench_knob_value(&cfg, "lines") == 1;
    if (bench_knob_value(&cfg, "ages") > 1)
        bench_usage_error("ages must be 0 or 1");
    sh.ages = bench_knob_value(&cfg, "ages") == 1;
    if (sh.ages)
        sh.freed = bench_aux_alloc(AGE_SLOTS * sizeof *sh.freed);
    bench_team_run(&team, worker);
    bench_result r = {.len = 0};
    if (sh.ages) {
        /* Cumulative shares of the mallocs: freed under 16, 64, 256 and
         * 1024 operations before. */
        static const char *const name[] = {"reuse_lt16", "reuse_lt64", "reuse_lt256", "reuse_lt1k"};
        uint64_t all = 0, below = 0;
        for (unsigned b = 0; b < AGE_BUCKETS; b++)
            all += sh.age[b];
        for (unsigned b = 0; b < 4; b++) {
            below += sh.age[b];
            bench_extra(&r, name[b], "%.4f", (double)below / (double)(all ? all : 1));
        }
        bench_aux_free(sh.freed, AGE_SLOTS * sizeof *sh.freed);
    }
    if (sh.lines) {
        bench_extra(&r, "fill_foreign", "%.4f", (double)sh.fill_foreign / (double)(sh.fill_lines ? sh.fill_lines : 1));
        bench_extra(&r, "check_foreign", "%.4f", (double)sh.check_foreign / (double)(sh.check_lines ? sh.check_lines : 1));
    }
    bench_team_report(&team, &r);
    bench_team_destroy(&team);
    bench_aux_free(sh.slot, sh.nslots * sizeof *sh.slot);
    return 0;
}
