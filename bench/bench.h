/* Shared harness of the benchmark workloads (bench/<workload>.c).
 *
 * Every workload is a separate program that uses only the plain malloc family,
 * so one binary measures any allocator through LD_PRELOAD. Each program prints
 * exactly one line on stdout:
 *
 *   hakmem-bench-result workload=<name> threads=<n> ops=<n> seconds=<wall>
 *       ops_per_sec=<x> check=ok [p50_ns= p95_ns= p99_ns= p999_ns=] [key=value...]
 *
 * When the allocator in the process is hakmem (it exports hak_stats_json)
 * and HAKMEM_STATS is set (not 0), as the sweep sets it for hakmem's runs,
 * the line also has timed_mmap=, timed_munmap= and timed_madvise=: hakmem's
 * OS calls within the timed interval alone, taken outside the timing, so
 * that start-up and exit do not count against the steady state.
 *
 * and on detected corruption "hakmem-bench-error workload=<name> reason=..." on
 * stderr with exit status 3 (usage errors: exit 2).
 *
 * Work-size knobs are totals split across the threads (strong scaling), so a
 * run takes about the same wall time at any thread count on an idle machine.
 * The harness keeps its own bookkeeping (slot arrays, latency samples, queues)
 * in mmap'd memory so that the allocator under test only sees the workload.
 */
#ifndef HAKMEM_BENCH_H
#define HAKMEM_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_THREADS 1024
#define BENCH_LAT_EVERY 64 /* latency: time one operation out of 64 */
#define BENCH_CACHELINE 64

/* ---- options ------------------------------------------------------------ */

/* A numeric workload knob: --name N, --name=N or name=N. */
typedef struct bench_knob {
    const char *name;
    long long def;   /* default */
    long long quick; /* default under --quick */
    long long min;   /* smallest accepted value */
    const char *help;
    long long value; /* result of parsing */
    bool set;        /* given on the command line */
} bench_knob;

#define BENCH_KNOB(n, d, q, m, h) {.name = (n), .def = (d), .quick = (q), .min = (m), .help = (h)}
#define BENCH_KNOB_END {.name = NULL}

typedef struct bench_config {
    const char *workload; /* name printed in the result line */
    const char *summary;  /* one paragraph for --help */
    bench_knob *knobs;    /* workload knobs, terminated by a NULL name */
    int threads;          /* --threads (default 1) */
    bool quick;           /* --quick: tiny run for tests */
    bool latency;         /* --latency: sample per-operation latency */
    bool full_check;      /* --full-check: fill and verify whole blocks */
    bool pin_nodes;       /* --pin-nodes: thread i runs on the CPUs of NUMA node i % nodes */
    uint64_t seed;        /* --seed */
} bench_config;

/* Parses argv into cfg (exits 0 after --help, 2 on a usage error). */
void bench_parse(bench_config *cfg, int argc, char **argv);
/* Prints "<workload>: <message> (try --help)" on stderr and exits 2. */
_Noreturn void bench_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Value of knob `name` (must exist). */
long long bench_knob_value(const bench_config *cfg, const char *name);

/* ---- failure ------------------------------------------------------------ */

/* Prints "hakmem-bench-error workload=<name> <fmt...>" on stderr, exits 3. */
_Noreturn void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Keeps the compiler from eliding a malloc/free pair whose block is unused. */
static inline void bench_escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static inline void *bench_malloc(size_t size)
{
    void *p = malloc(size);
    if (__builtin_expect(p == NULL, 0))
        bench_fail("reason=malloc-null size=%zu", size);
    bench_escape(p);
    return p;
}

/* Harness memory straight from mmap (zeroed), invisible to the allocator. */
void *bench_aux_alloc(size_t size);
void bench_aux_free(void *p, size_t size);

/* ---- time ----------------------------------------------------------------- */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bench_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- random numbers (splitmix64: one add and a mix per number) ---------- */

typedef struct bench_rng {
    uint64_t s;
} bench_rng;

static inline uint64_t bench_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void bench_rng_seed(bench_rng *r, uint64_t seed, uint64_t stream)
{
    r->s = bench_mix(seed ^ bench_mix(stream + 0x9e3779b97f4a7c15ull));
}

static inline uint64_t bench_rng_next(bench_rng *r)
{
    r->s += 0x9e3779b97f4a7c15ull;
    return bench_mix(r->s);
}

/* Uniform in [0, n), n <= 2^32 (multiply-shift, no division). */
static inline uint64_t bench_rng_below(bench_rng *r, uint64_t n)
{
    return ((bench_rng_next(r) >> 32) * n) >> 32;
}

/* Uniform in [lo, hi]. */
static inline size_t bench_rng_range(bench_rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)bench_rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* ---- block contents ----------------------------------------------------------
 * A block of size >= 8 carries a pattern derived from its address, its size,
 * the run's seed and the allocation's nonce: word 0 = key ^ size, the last 8
 * bytes = ~key + size (size >= 16). --full-check also fills every word
 * between. The workload keeps each block's nonce beside its pointer, so a
 * block that moved, was scribbled on by the allocator's own metadata, or was
 * handed to a second owner while still live (whose fill writes another
 * nonce's pattern at the same address) fails the first owner's check. */

/* Nonces: stream s (a thread, a spawn) counts up from bench_nonce_first(s);
 * distinct over 2^24 streams of 2^40 allocations each. */
static inline uint64_t bench_nonce_first(uint64_t stream) { return stream << 40; }

static inline uint64_t bench_block_key(const void *p, uint64_t seed, uint64_t nonce)
{
    return bench_mix((uint64_t)(uintptr_t)p ^ seed ^ nonce);
}

static inline void bench_block_fill(void *p, size_t size, uint64_t seed, uint64_t nonce, bool full)
{
    unsigned char *b = p;
    uint64_t key = bench_block_key(p, seed, nonce), w = key ^ size;
    memcpy(b, &w, 8);
    if (size < 16)
        return;
    if (full)
        for (size_t off = 8; off + 16 <= size; off += 8) {
            w = key + off;
            memcpy(b + off, &w, 8);
        }
    w = ~key + size;
    memcpy(b + size - 8, &w, 8);
}

/* Checks a block filled by bench_block_fill with the same nonce. expect == 0:
 * the size is read from the block and must lie in [lo, hi]. Returns the size;
 * fails the run (exit 3, reason=corrupt) on a mismatch, naming `where`. */
size_t bench_block_check(const char *where, const void *p, size_t expect, size_t lo,
                         size_t hi, uint64_t seed, uint64_t nonce, bool full);

/* ---- threads ---------------------------------------------------------------- */

typedef struct bench_lat {
    uint64_t *samples; /* preallocated, mmap'd */
    size_t n, cap;
    unsigned tick, mask; /* sample when (++tick & mask) == 0 */
    bool on;
} bench_lat;

typedef struct bench_thread {
    _Alignas(BENCH_CACHELINE) int id; /* 0..nthreads-1 */
    int nthreads;
    bench_rng rng;  /* private stream seeded from (seed, id) */
    bench_lat lat;
    uint64_t ops;   /* operations done, set by the worker */
    uint64_t cpu_ns; /* thread CPU time between start and end barriers */
    uint64_t t_start, t_end; /* wall clock when leaving the start barrier, reaching the end one */
    void *shared;   /* the workload's shared state */
    struct bench_team *team;
    pthread_t tid;
} bench_thread;

/* hakmem's OS calls so far (bench_os_counts). */
typedef struct bench_os {
    uint64_t mmap, munmap, madvise;
} bench_os;

typedef struct bench_team {
    const bench_config *cfg;
    bench_thread *t; /* nthreads entries */
    int nthreads;
    /* go, done: the threads wait there while one of them reads the OS
     * counters, after the start barrier and after the end one. */
    pthread_barrier_t start, go, end, done;
    bool os_counted; /* hakmem's counters were read at start and end */
    bench_os os_start, os_end;
} bench_team;

/* Sets up n thread records (latency arrays of lat_cap samples when --latency). */
void bench_team_init(bench_team *team, const bench_config *cfg, int n, void *shared,
                     size_t lat_cap);
/* Runs fn on every thread and waits for them; fn must call bench_start() once
 * its setup is done and bench_stop() when its timed part ends. The wall time
 * runs from the first thread's start to the last thread's stop, stamped by the
 * workers themselves: a main thread waking from a barrier on an oversubscribed
 * machine would stamp late. */
void bench_team_run(bench_team *team, void (*fn)(bench_thread *));
void bench_team_destroy(bench_team *team);
double bench_team_seconds(const bench_team *team);
uint64_t bench_team_ops(const bench_team *team);

void bench_start(bench_thread *t);
void bench_stop(bench_thread *t);

/* Under --pin-nodes, binds the calling thread to the CPUs of NUMA node
 * id % nodes (nodes with CPUs, from /sys/devices/system/node); else nothing.
 * Team threads call it before the workload runs; a workload that starts its
 * own threads calls it first thing in them. The result line then says on how
 * many nodes threads were pinned (pinned_nodes=N). */
void bench_pin_thread(int id);

/* ---- latency sampling ----------------------------------------------------------- */

/* Samples one operation out of BENCH_LAT_EVERY; bench_lat_every changes that
 * to one out of `every` (a power of two) for workloads with few operations. */
void bench_lat_init(bench_lat *l, bool on, size_t cap);
void bench_lat_every(bench_lat *l, unsigned every);
void bench_lat_free(bench_lat *l);

/* Returns a start stamp for a sampled operation, else 0. */
static inline uint64_t bench_lat_begin(bench_lat *l)
{
    if (!l->on || (++l->tick & l->mask) != 0)
        return 0;
    return bench_now_ns();
}

extern uint64_t bench_lat_overhead_ns; /* cost of the two clock reads */

static inline void bench_lat_end(bench_lat *l, uint64_t t0)
{
    if (t0 && l->n < l->cap) {
        uint64_t d = bench_now_ns() - t0;
        l->samples[l->n++] = d > bench_lat_overhead_ns ? d - bench_lat_overhead_ns : 0;
    }
}

/* ---- result line ------------------------------------------------------------------ */

typedef struct bench_result {
    char extra[2048]; /* " key=value" fields */
    size_t len;
} bench_result;

void bench_extra(bench_result *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints the result line. Latency samples are merged from lats[0..nlat). */
void bench_report(const bench_config *cfg, int threads, uint64_t ops, double seconds,
                  bench_lat *const *lats, int nlat, bench_result *r);
/* bench_report for a team: ops, wall time, CPU time and latencies of its threads;
 * threads= is the requested count (--threads), which a team may exceed. */
void bench_team_report(const bench_team *team, bench_result *r);

/* ---- batch hand-off between threads --------------------------------------------------
 * A bounded single-producer/single-consumer ring of pointer batches; the
 * batching keeps the queue out of the measurement. Callers poll and yield. */

#define BENCH_BATCH 64

typedef struct bench_batch {
    uint32_t n;
    void *p[BENCH_BATCH];
    uint64_t nonce[BENCH_BATCH]; /* of p[i]'s contents (bench_block_fill) */
} bench_batch;

typedef struct bench_chan {
    _Alignas(BENCH_CACHELINE) _Atomic uint64_t head; /* written by the producer */
    _Alignas(BENCH_CACHELINE) _Atomic uint64_t tail; /* written by the consumer */
    _Alignas(BENCH_CACHELINE) uint32_t cap;
    bench_batch *slot;
} bench_chan;

void bench_chan_init(bench_chan *c, uint32_t cap);
void bench_chan_destroy(bench_chan *c);
bool bench_chan_push(bench_chan *c, const bench_batch *b);
bool bench_chan_pop(bench_chan *c, bench_batch *b);

/* ---- hakmem's OS calls ------------------------------------------------------------------ */

/* hakmem's counts of mmap, munmap and madvise calls so far (from
 * hak_stats_json, looked up by bench_parse); false when the process's
 * allocator is not hakmem. */
bool bench_os_counts(bench_os *o);
/* Adds timed_mmap=, timed_munmap= and timed_madvise=: the calls from a to b. */
void bench_os_extra(bench_result *r, const bench_os *a, const bench_os *b);

/* ---- process memory ---------------------------------------------------------------- */

/* Resident set now and its high-water mark, in bytes (from /proc, no malloc). */
uint64_t bench_rss_bytes(void);
uint64_t bench_peak_rss_bytes(void);

#endif
