/* soak: a fixed working set churned for a long time, sampled every interval.
 *
 * Threads replace random slots of their own working set (sizes 16..max) and
 * hand every 8th block to the next thread's inbox slot, so remote frees are
 * part of the mix.  Every interval the main thread records throughput and RSS;
 * at the end the drift between the first and the last quarter of the samples
 * (after a warm-up of one quarter) is reported: a steady allocator keeps both
 * flat.  One line per sample on stderr, the result line on stdout:
 *   hakmem-bench-result workload=soak ... rss_drift_pct=X tput_drift_pct=Y
 * Exit 0; 3 on a corrupted block; with --check, 4 when a drift exceeds
 * --max-rss-drift (2%) or --max-tput-drift (5%). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

struct opts {
    int threads, seconds, interval_ms, ws, max_size, check;
    double max_rss_drift, max_tput_drift;
};

static struct opts o = { 2, 600, 1000, 20000, 2048, 0, 2.0, 5.0 };
static atomic_ulong ops;
static atomic_int stop;
static _Atomic(void *) *handoff; /* one slot per thread */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Blocks carry their size and a tag derived from it at both ends. */
static void *make(size_t size)
{
    unsigned char *p = malloc(size);
    if (p == NULL) {
        fprintf(stderr, "soak: out of memory\n");
        exit(3);
    }
    memcpy(p, &size, sizeof size);
    p[size - 1] = (unsigned char)(size * 31u);
    return p;
}

static void check_and_free(void *q)
{
    unsigned char *p = q;
    size_t size;
    memcpy(&size, p, sizeof size);
    if (size < 16 || size > (size_t)o.max_size || p[size - 1] != (unsigned char)(size * 31u)) {
        fprintf(stderr, "hakmem-bench-error workload=soak reason=corrupt ptr=%p\n", q);
        exit(3);
    }
    free(p);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    void **ws = calloc((size_t)o.ws, sizeof *ws);
    unsigned long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int k = 0; k < 1024; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t i = (size_t)(x % (uint64_t)o.ws);
            size_t size = 16 + (size_t)((x >> 32) % (uint64_t)(o.max_size - 15));
            if (ws[i] != NULL) {
                if ((x & 7) == 0) {
                    /* Hand it to the next thread (taking back one it did not
                     * collect yet), and free what the previous thread left
                     * for us: a remote free. */
                    void *old = atomic_exchange(&handoff[(id + 1) % o.threads], ws[i]);
                    if (old != NULL)
                        check_and_free(old);
                    void *mine = atomic_exchange(&handoff[id], NULL);
                    if (mine != NULL)
                        check_and_free(mine);
                } else {
                    check_and_free(ws[i]);
                }
            }
            ws[i] = make(size);
        }
        n += 1024;
        atomic_fetch_add_explicit(&ops, 1024, memory_order_relaxed);
    }
    for (int i = 0; i < o.ws; i++)
        if (ws[i] != NULL)
            check_and_free(ws[i]);
    free(ws);
    (void)n;
    return NULL;
}

static double mean(const double *v, int a, int b)
{
    double s = 0;
    for (int i = a; i < b; i++)
        s += v[i];
    return b > a ? s / (b - a) : 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--threads")) o.threads = atoi(v), i++;
        else if (!strcmp(a, "--seconds")) o.seconds = atoi(v), i++;
        else if (!strcmp(a, "--interval-ms")) o.interval_ms = atoi(v), i++;
        else if (!strcmp(a, "--ws")) o.ws = atoi(v), i++;
        else if (!strcmp(a, "--max-size")) o.max_size = atoi(v), i++;
        else if (!strcmp(a, "--max-rss-drift")) o.max_rss_drift = atof(v), i++;
        else if (!strcmp(a, "--max-tput-drift")) o.max_tput_drift = atof(v), i++;
        else if (!strcmp(a, "--check")) o.check = 1;
        else {
            fprintf(stderr, "usage: soak [--threads N] [--seconds S] [--interval-ms MS] [--ws N] "
                            "[--max-size B] [--check] [--max-rss-drift PCT] [--max-tput-drift PCT]\n");
            return strcmp(a, "--help") ? 2 : 0;
        }
    }
    if (o.threads < 1 || o.seconds < 4 || o.interval_ms < 10 || o.ws < 1 || o.max_size < 32) {
        fprintf(stderr, "soak: bad arguments\n");
        return 2;
    }
    int samples = (int)((long)o.seconds * 1000 / o.interval_ms);
    double *tput = calloc((size_t)samples, sizeof *tput), *rss = calloc((size_t)samples, sizeof *rss);
    handoff = calloc((size_t)o.threads, sizeof *handoff);
    pthread_t *t = calloc((size_t)o.threads, sizeof *t);
    for (int i = 0; i < o.threads; i++)
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    double start = now_s(), last = start;
    unsigned long last_ops = 0;
    for (int s = 0; s < samples; s++) {
        struct timespec d = { o.interval_ms / 1000, (long)(o.interval_ms % 1000) * 1000000L };
        nanosleep(&d, NULL);
        double tnow = now_s();
        unsigned long n = atomic_load(&ops);
        tput[s] = (double)(n - last_ops) / (tnow - last);
        rss[s] = (double)(bench_rss_bytes() / 1024);
        fprintf(stderr, "soak: t=%.0fs ops/s=%.0f rss_kib=%.0f\n", tnow - start, tput[s], rss[s]);
        last = tnow;
        last_ops = n;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < o.threads; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < o.threads; i++) {
        void *p = atomic_exchange(&handoff[i], NULL);
        if (p != NULL)
            check_and_free(p);
    }
    /* Quarters: [warm-up][first][...][last]. */
    int q = samples / 4;
    double r0 = mean(rss, q, 2 * q), r1 = mean(rss, samples - q, samples);
    double t0 = mean(tput, q, 2 * q), t1 = mean(tput, samples - q, samples);
    double rd = r0 > 0 ? (r1 - r0) / r0 * 100 : 0, td = t0 > 0 ? (t1 - t0) / t0 * 100 : 0;
    double secs = now_s() - start;
    printf("hakmem-bench-result workload=soak threads=%d ops=%lu seconds=%.6f ops_per_sec=%.1f check=ok "
           "samples=%d rss_kib_first=%.0f rss_kib_last=%.0f rss_drift_pct=%.2f tput_first=%.0f tput_last=%.0f "
           "tput_drift_pct=%.2f\n",
           o.threads, atomic_load(&ops), secs, (double)atomic_load(&ops) / secs, samples, r0, r1, rd, t0, t1, td);
    free(tput);
    free(rss);
    free(t);
    free((void *)handoff);
    if (o.check && (rd > o.max_rss_drift || rd < -o.max_rss_drift || td < -o.max_tput_drift))
        return 4;
    return 0;
}
