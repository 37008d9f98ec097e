/* burst: does memory go back to the OS after a burst, when the program
 * slows down?  The main thread allocates --mb MiB of blocks of random sizes
 * and writes their ends; the blocks are then checked and freed, by another
 * thread (--freer remote: they go back to the allocating thread's heap) or
 * by the main thread (--freer local).  For --seconds after that the main
 * thread allocates and frees one block --rate times a second (0: none at
 * all, an idle program) and samples the process's resident set every
 * --every-ms ms.  Not a harness workload: its result is a time series.
 *
 * Output, one line each:
 *   burst-rss t_ms=T rss_kb=R        T from the end of the frees
 *   burst-result freer=F rate=R mb=M baseline_kb=B filled_kb=P freed_kb=A
 *                end_kb=E allocs=N check=ok
 * baseline: before the first block; filled: after the last; freed: when the
 * frees are done.  The pointer array is mapped, not allocated, and unmapped
 * before the samples, so only the allocator's memory differs between runs.
 * Nothing in the slow phase allocates but its own blocks: with --rate 0
 * the program calls no allocator function until it exits.  Blocks carry the
 * harness's pattern (bench.h); its options are parsed here, as --freer
 * takes a word where the harness's knobs take numbers.
 * Exit 3 when a block's contents changed (the harness's check), 1 when
 * memory runs out, 2 on a usage error. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

static struct {
    long mb, min_size, max_size, rate, seconds, every_ms;
    int remote;
} opt = { 256, 16, 512, 0, 10, 100, 1 };

static void **blocks;
static size_t *sizes;
static size_t count;
static bench_rng rng;

static void usage(const char *why)
{
    fprintf(stderr, "burst: %s\n"
            "usage: burst [--mb N] [--min-size N] [--max-size N] [--freer remote|local] [--rate N] "
            "[--seconds N] [--every-ms N]\n", why);
    exit(2);
}

static long number(const char *name, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || *v == '\0' || *end != '\0' || n < lo || n > hi) {
        static char msg[160];
        snprintf(msg, sizeof msg, "--%s %s: expected an integer from %ld to %ld", name, v, lo, hi);
        usage(msg);
    }
    return n;
}

static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("burst: memory return after a burst of allocations, freed by another thread or "
                   "the owner,\nwhile the program allocates at a slow rate (see bench/burst.c).\n");
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0 || i + 1 >= argc)
            usage("options take a value: --name VALUE");
        const char *v = argv[++i];
        if (strcmp(a, "--mb") == 0)
            opt.mb = number("mb", v, 1, 65536);
        else if (strcmp(a, "--min-size") == 0)
            opt.min_size = number("min-size", v, 16, 1 << 20);
        else if (strcmp(a, "--max-size") == 0)
            opt.max_size = number("max-size", v, 16, 1 << 20);
        else if (strcmp(a, "--rate") == 0)
            opt.rate = number("rate", v, 0, 1000000);
        else if (strcmp(a, "--seconds") == 0)
            opt.seconds = number("seconds", v, 0, 86400);
        else if (strcmp(a, "--every-ms") == 0)
            opt.every_ms = number("every-ms", v, 1, 60000);
        else if (strcmp(a, "--freer") == 0) {
            if (strcmp(v, "remote") != 0 && strcmp(v, "local") != 0)
                usage("--freer: remote or local");
            opt.remote = strcmp(v, "remote") == 0;
        } else {
            static char msg[160];
            snprintf(msg, sizeof msg, "unknown option %s", a);
            usage(msg);
        }
    }
    if (opt.min_size > opt.max_size)
        usage("--min-size must not exceed --max-size");
}

static size_t some_size(void)
{
    return bench_rng_range(&rng, (size_t)opt.min_size, (size_t)opt.max_size);
}

static void free_all(void)
{
    for (size_t i = 0; i < count; i++) {
        bench_block_check("burst-free", blocks[i], sizes[i], 0, 0, 0, i, false); /* nonce: the index */
        free(blocks[i]);
    }
}

static void *freer(void *arg)
{
    (void)arg;
    free_all();
    return NULL;
}

/* With open and read, not stdio: fopen allocates its FILE, and ten of
 * those a second made an idle program's allocator tick (rate 0 was not
 * idle). */
static long rss_kb(void)
{
    char buf[128];
    long resident = -1;
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            char *sp = strchr(buf, ' ');
            if (sp != NULL)
                resident = strtol(sp + 1, NULL, 10);
        }
    }
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* One sample line, written without stdio's buffer (see rss_kb). */
static void sample_line(uint64_t t_ms, long rss)
{
    char line[96];
    int n = snprintf(line, sizeof line, "burst-rss t_ms=%llu rss_kb=%ld\n", (unsigned long long)t_ms, rss);
    if (n > 0 && write(STDOUT_FILENO, line, (size_t)n) != n)
        exit(1);
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = { (time_t)(t / 1000000000u), (long)(t % 1000000000u) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    bench_rng_seed(&rng, 1, 0);
    size_t bytes = (size_t)opt.mb << 20, cap = bytes / (size_t)opt.min_size + 1;
    blocks = mmap(NULL, cap * sizeof *blocks, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sizes = mmap(NULL, cap * sizeof *sizes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (blocks == MAP_FAILED || sizes == MAP_FAILED) {
        perror("burst: mmap");
        return 1;
    }
    long baseline = rss_kb();
    for (size_t total = 0; total < bytes; count++) {
        sizes[count] = some_size();
        blocks[count] = malloc(sizes[count]);
        if (blocks[count] == NULL) {
            fprintf(stderr, "burst: malloc(%zu) failed after %zu blocks\n", sizes[count], count);
            return 1;
        }
        bench_block_fill(blocks[count], sizes[count], 0, count, false);
        total += sizes[count];
    }
    long filled = rss_kb();
    if (opt.remote) {
        pthread_t t;
        if (pthread_create(&t, NULL, freer, NULL) != 0 || pthread_join(t, NULL) != 0) {
            fprintf(stderr, "burst: cannot run the freeing thread\n");
            return 1;
        }
    } else {
        free_all();
    }
    munmap(blocks, cap * sizeof *blocks);
    munmap(sizes, cap * sizeof *sizes);
    long freed = rss_kb();
    uint64_t start = bench_now_ns(), end = start + (uint64_t)opt.seconds * 1000000000u;
    uint64_t every = (uint64_t)opt.every_ms * 1000000u;
    uint64_t gap = opt.rate > 0 ? 1000000000u / (uint64_t)opt.rate : UINT64_MAX;
    uint64_t next_sample = start, next_alloc = opt.rate > 0 ? start + gap : UINT64_MAX;
    long allocs = 0, last = freed;
    while (next_sample <= end) {
        if (next_alloc <= next_sample) {
            sleep_until(next_alloc);
            size_t n = some_size();
            char *p = malloc(n);
            if (p == NULL) {
                fprintf(stderr, "burst: malloc(%zu) failed during the slow phase\n", n);
                return 1;
            }
            p[0] = p[n - 1] = 1;
            free(p);
            allocs++;
            next_alloc += gap;
            continue;
        }
        sleep_until(next_sample);
        last = rss_kb();
        sample_line((next_sample - start) / 1000000u, last);
        next_sample += every;
    }
    printf("burst-result freer=%s rate=%ld mb=%ld baseline_kb=%ld filled_kb=%ld freed_kb=%ld end_kb=%ld "
           "allocs=%ld check=ok\n", opt.remote ? "remote" : "local", opt.rate, opt.mb, baseline, filled, freed,
           last, allocs);
    return 0;
}
