/* Where hakmem's memory really lands, on a multi-node kernel (run inside the
 * VMs of tests/vm/run-vm.sh; on a one-node machine most checks are trivial).
 *
 *   numa_vm_placement --nodes N     expect N nodes, run every check, exit 0 if all pass
 *   numa_vm_placement --check NAME  one check (the driver re-executes itself with
 *                                   HAKMEM_NUMA set: options are read once)
 *
 * Allocates with hak_malloc (hakmem's malloc under its own name, exported in
 * sanitizer builds too).  Threads are pinned to the CPUs of one node each
 * (from /sys/devices/system/node/nodeK/cpulist) and the node of every
 * sampled page is asked from the kernel with move_pages(2). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "hakmem.h"
#include "testutil.h"
#include "hk_numa.h"

#define MAX_NODES 8
#define MAX_BLOCKS 65536
#define LARGE 8                 /* blocks above the biggest size class, per worker */
#define LARGE_SIZE (256 * 1024)
#define MiB (1024 * 1024)

static unsigned nodes;                 /* as the kernel reports them */
static cpu_set_t node_cpus[MAX_NODES];
static size_t bsize;                   /* block size used for placement samples */
static long page;
static int failed;

static void result(int ok, const char *check, const char *fmt, ...)
{
    va_list ap;

    printf("%s %s: ", ok ? "PASS" : "FAIL", check);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    failed |= !ok;
}

/* ---- the kernel's view ------------------------------------------------- */

static int read_cpulist(unsigned node, cpu_set_t *set)
{
    char path[64], line[256], *p = line;
    FILE *f;

    snprintf(path, sizeof path, "/sys/devices/system/node/node%u/cpulist", node);
    if (!(f = fopen(path, "r")))
        return -1;
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    CPU_ZERO(set);
    while (*p >= '0' && *p <= '9') {  /* "0-1,4,6-7" */
        long a = strtol(p, &p, 10), b = a;
        if (*p == '-')
            b = strtol(p + 1, &p, 10);
        for (long c = a; c <= b && c < CPU_SETSIZE; c++)
            CPU_SET(c, set);
        if (*p == ',')
            p++;
    }
    return 0;
}

static void read_nodes(void)
{
    for (nodes = 0; nodes < MAX_NODES && read_cpulist(nodes, &node_cpus[nodes]) == 0; nodes++)
        ;
    if (nodes == 0) {  /* a kernel without NUMA sysfs: one node, every CPU */
        nodes = 1;
        sched_getaffinity(0, sizeof node_cpus[0], &node_cpus[0]);
    }
}

/* The node of each page (negative errno when not resident). */
static void where(void **pages, size_t n, int *status)
{
    if (syscall(SYS_move_pages, 0, (unsigned long)n, pages, NULL, status, 0))
        for (size_t i = 0; i < n; i++)
            status[i] = -errno;
}

/* ---- hakmem's view: a field of one node in hak_stats_json's "nodes" ---- */

static char json[1 << 16];

static long long node_stat(unsigned node, const char *field)
{
    char key[64], *obj, *end, *f;

    hak_stats_json(json, sizeof json);
    snprintf(key, sizeof key, "{\"node\":%u,", node);
    if (!(obj = strstr(json, "\"nodes\":[")) || !(obj = strstr(obj, key)))
        return -2;
    end = strchr(obj, '}');
    snprintf(key, sizeof key, "\"%s\":", field);
    f = strstr(obj, key);
    return f && f < end ? strtoll(f + strlen(key), NULL, 10) : -2;
}

/* ---- workers: one per node, pinned, allocating blocks ------------------ */

struct worker {
    unsigned node;
    size_t bytes;
    size_t n;
    void *block[MAX_BLOCKS];
    void *page[MAX_BLOCKS];
    int status[MAX_BLOCKS];
    void *large[LARGE];
    void *lpage[LARGE];
    int lstatus[LARGE];
};
static struct worker workers[MAX_NODES];
static pthread_barrier_t barrier;
static int rotate;  /* touch the next node's blocks instead of one's own */

static void touch(struct worker *w)
{
    for (size_t i = 0; i < w->n; i++)
        memset(w->block[i], 0xa5, bsize);
    for (int i = 0; i < LARGE; i++)
        if (w->large[i])
            memset(w->large[i], 0x5a, LARGE_SIZE);
}

static void *last_page(void *block, size_t size)
{
    return (void *)(((uintptr_t)block + size - 1) & ~(uintptr_t)(page - 1));
}

static void *work(void *arg)
{
    struct worker *w = arg;

    for (w->n = 0; w->n < MAX_BLOCKS && w->n * bsize < w->bytes; w->n++)
        if (!(w->block[w->n] = hak_malloc(bsize)))
            break;
    for (int i = 0; i < LARGE; i++)
        w->large[i] = hak_malloc(LARGE_SIZE);
    pthread_barrier_wait(&barrier);
    /* Touching another node's blocks from here tells binding from first
     * touch: a page the allocator has not written yet lands where its
     * mapping is bound, not where this thread runs. */
    touch(rotate ? &workers[(w->node + 1) % nodes] : w);
    return NULL;
}

static void start(pthread_t *t, unsigned node, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;

    /* Pinned from birth: the heap's home node is decided at its first malloc. */
    pthread_attr_init(&attr);
    pthread_attr_setaffinity_np(&attr, sizeof node_cpus[node], &node_cpus[node]);
    if (pthread_create(t, &attr, fn, arg)) {
        perror("pthread_create");
        exit(2);
    }
    pthread_attr_destroy(&attr);
}

/* Allocates bytes per node, then samples the page of each block that the
 * allocator is least likely to have written (its last). */
static void run_workers(size_t bytes)
{
    pthread_t t[MAX_NODES];

    pthread_barrier_init(&barrier, NULL, nodes);
    for (unsigned i = 0; i < nodes; i++) {
        workers[i].node = i;
        workers[i].bytes = bytes;
        start(&t[i], i, work, &workers[i]);
    }
    for (unsigned i = 0; i < nodes; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (unsigned i = 0; i < nodes; i++) {
        struct worker *w = &workers[i];
        for (size_t b = 0; b < w->n; b++)
            w->page[b] = last_page(w->block[b], bsize);
        where(w->page, w->n, w->status);
        for (int b = 0; b < LARGE; b++)
            w->lpage[b] = last_page(w->large[b], LARGE_SIZE);  /* NULL: -EFAULT, counted as missing */
        where(w->lpage, LARGE, w->lstatus);
    }
}

/* Resident pages among n statuses, and how many sit on each node. */
static size_t census(const int *status, size_t n, size_t *on)
{
    size_t resident = 0;

    memset(on, 0, MAX_NODES * sizeof *on);
    for (size_t b = 0; b < n; b++)
        if (status[b] >= 0 && (unsigned)status[b] < MAX_NODES) {
            resident++;
            on[status[b]]++;
        }
    return resident;
}

/* ---- checks -------------------------------------------------------------- */

static void pin(unsigned node)
{
    if (sched_setaffinity(0, sizeof node_cpus[node], &node_cpus[node])) {
        perror("sched_setaffinity");
        exit(2);
    }
}

/* The NUMA layer alone against the kernel: tables, binding, page query. */
static void check_layer(void)
{
    enum { PAGES = 64 };
    unsigned last = nodes - 1;
    size_t len = PAGES * (size_t)page, resident, on_node, on_last = 0;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *pages[PAGES];
    int status[PAGES], ok = 1;
    cpu_set_t all;

    hk_numa_init(getenv("HAKMEM_TOPOLOGY"));  /* idempotent: the core did it */
    result(hk_numa_node_count() == nodes, "layer-nodes", "hwloc %u, kernel %u",
           hk_numa_node_count(), nodes);
    for (unsigned n = 0; n < nodes; n++)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &node_cpus[n]) && hk_numa_node_of_cpu(c) != n) {
                printf("  cpu %d: node %u, the kernel says %u\n", c, hk_numa_node_of_cpu(c), n);
                ok = 0;
            }
    result(ok, "layer-cpus", "CPU->node table against sysfs");
    ok = 1;
    for (unsigned a = 0; a < nodes; a++)
        for (unsigned b = 0; b < nodes; b++)
            ok &= a == b ? hk_numa_distance(a, b) == 10 : hk_numa_distance(a, b) > 10;
    result(ok, "layer-distance", "10 local, more remote (0 to %u: %u)", last, hk_numa_distance(0, last));
    hk_numa_stats_json(json, sizeof json);
    result(strstr(json, "\"synthetic\":false") != NULL, "layer-real-topology", "%.100s...", json);

    /* A mapping bound to the last node, first touched from node 0. */
    sched_getaffinity(0, sizeof all, &all);
    pin(0);
    ok = p != MAP_FAILED && hk_numa_bind(p, len, last) == 0;
    result(ok, "layer-bind", "hk_numa_bind(%zu KiB, node %u) = 0", len >> 10, last);
    if (!ok)
        return;
    result(hk_numa_current_node() == 0, "layer-current-node", "pinned to node 0: %u", hk_numa_current_node());
    memset(p, 1, len);
    for (int i = 0; i < PAGES; i++)
        pages[i] = p + (size_t)i * page;
    where(pages, PAGES, status);
    for (int i = 0; i < PAGES; i++)
        on_last += status[i] == (int)hk_numa_node_os_index(last);
    result(on_last == PAGES, "layer-placement", "%zu of %d pages on node %u (status[0] %d)",
           on_last, PAGES, last, status[0]);
    hk_numa_query_pages(pages, PAGES, last, &resident, &on_node);
    result(resident == PAGES && on_node == on_last, "layer-query", "hk_numa_query_pages: %zu resident, %zu on node %u",
           resident, on_node, last);
    pin(last);
    result(hk_numa_current_node() == last, "layer-current-node", "pinned to node %u: %u", last, hk_numa_current_node());
    sched_setaffinity(0, sizeof all, &all);
    munmap(p, len);
}

/* Each node's thread allocates 8 MiB; the next node's thread touches them. */
static void check_local(void)
{
    size_t on[MAX_NODES];

    rotate = 1;
    run_workers(8 * MiB);
    for (unsigned i = 0; i < nodes; i++) {
        struct worker *w = &workers[i];
        size_t resident = census(w->status, w->n, on), r2, on2;

        result(resident > 0 && on[i] * 100 >= resident * 99, "local",
               "node %u: %zu of %zu sampled pages local (%zu blocks of %zu B)",
               i, on[i], resident, w->n, bsize);
        hk_numa_query_pages(w->page, w->n, i, &r2, &on2);
        result(r2 == resident && on2 == on[i], "local-query", "hk_numa_query_pages agrees: %zu, %zu", r2, on2);
        resident = census(w->lstatus, LARGE, on);
        result(resident == LARGE && on[i] == LARGE, "local-large", "node %u: %zu of %d blocks of %d KiB local",
               i, on[i], LARGE, LARGE_SIZE >> 10);
    }
}

/* node:K: every thread's blocks on K. */
static void check_node(unsigned k)
{
    size_t on[MAX_NODES];
    char name[16];

    snprintf(name, sizeof name, "node:%u", k);
    rotate = 1;
    run_workers(8 * MiB);
    for (unsigned i = 0; i < nodes; i++) {
        struct worker *w = &workers[i];
        size_t resident = census(w->status, w->n, on);

        result(resident > 0 && on[k] == resident, name, "thread on node %u: %zu of %zu sampled pages on node %u",
               i, on[k], resident, k);
        resident = census(w->lstatus, LARGE, on);
        result(resident == LARGE && on[k] == LARGE, name, "thread on node %u: %zu of %d blocks of %d KiB on node %u",
               i, on[k], LARGE, LARGE_SIZE >> 10, k);
    }
}

/* One thread on node 0 allocates 96 MiB: SuperSlabs (2 MiB) come from the
 * nodes in turn, so its pages spread evenly although it never moves. */
static void check_interleave(void)
{
    pthread_t t;
    size_t on[MAX_NODES], resident;
    long long before[MAX_NODES], ss[MAX_NODES], total = 0;
    double even;
    int ok = 1;

    /* Count only this thread's SuperSlabs: the ones made before init (node 0,
     * unbound) would tilt a small total. */
    for (unsigned i = 0; i < nodes; i++)
        before[i] = node_stat(i, "superslabs");
    workers[0].node = 0;
    workers[0].bytes = 96 * MiB;
    rotate = 0;
    pthread_barrier_init(&barrier, NULL, 1);
    start(&t, 0, work, &workers[0]);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&barrier);
    for (size_t b = 0; b < workers[0].n; b++)
        workers[0].page[b] = last_page(workers[0].block[b], bsize);
    where(workers[0].page, workers[0].n, workers[0].status);
    resident = census(workers[0].status, workers[0].n, on);
    for (unsigned i = 0; i < nodes; i++) {
        double share = resident ? (double)on[i] / resident : 0;
        int fair = share >= 1.0 / nodes - 0.05 && share <= 1.0 / nodes + 0.05;
        result(fair, "interleave-pages", "node %u: %zu of %zu sampled pages (%.1f%%, even %.1f%%)",
               i, on[i], resident, 100 * share, 100.0 / nodes);
    }
    for (unsigned i = 0; i < nodes; i++)
        total += ss[i] = node_stat(i, "superslabs") - before[i];
    even = (double)total / nodes;
    for (unsigned i = 0; i < nodes; i++) {
        double slack = even / 20 > 1 ? even / 20 : 1;  /* 5% of even, at least one */
        ok &= ss[i] >= even - slack && ss[i] <= even + slack;
        printf("  node %u: %lld new superslabs\n", i, ss[i]);
    }
    result(total >= 40 && ok, "interleave-superslabs", "%lld new SuperSlabs over %u nodes, each within 5%% of %.1f",
           total, nodes, even);
}

/* A thread on node 0 allocates, moves to node 1, allocates again (new blocks
 * on node 1: one re-home) and frees its node-0 blocks there (each one a
 * cross-node free of node 0). */
enum { OLD = 1000 };
static struct {
    void *old[OLD];
    long long cross[2], rehomes[2];
    int cpu, go;
} mv;

static void *rehome(void *arg)
{
    struct worker *w = arg;

    /* Acquire: pairs with the main thread's release once it has freed the
     * thread attributes, so no free but ours falls in the measured window. */
    while (!__atomic_load_n(&mv.go, __ATOMIC_ACQUIRE))
        sched_yield();
    for (int i = 0; i < OLD; i++)
        memset(mv.old[i] = hak_malloc(256), 1, 256);
    mv.cross[0] = node_stat(0, "cross_node_frees");
    mv.rehomes[0] = node_stat(1, "rehomes");
    pin(1);
    mv.cpu = sched_getcpu();
    for (w->n = 0; w->n < MAX_BLOCKS && w->n * bsize < w->bytes; w->n++)
        memset(w->block[w->n] = hak_malloc(bsize), 1, bsize);
    for (int i = 0; i < OLD; i++)
        hak_free(mv.old[i]);
    mv.cross[1] = node_stat(0, "cross_node_frees");
    mv.rehomes[1] = node_stat(1, "rehomes");
    return NULL;
}

static void check_rehome(void)
{
    struct worker *w = &workers[1];
    size_t on[MAX_NODES], resident;
    pthread_t t;

    w->bytes = 8 * MiB;
    start(&t, 0, rehome, w);
    __atomic_store_n(&mv.go, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    result(CPU_ISSET(mv.cpu, &node_cpus[1]), "rehome-moved", "runs on CPU %d after the move", mv.cpu);
    for (size_t b = 0; b < w->n; b++)
        w->page[b] = last_page(w->block[b], bsize);
    where(w->page, w->n, w->status);
    resident = census(w->status, w->n, on);
    result(resident > 0 && on[1] * 100 >= resident * 95, "rehome-new-blocks",
           "%zu of %zu sampled pages of the new blocks on node 1", on[1], resident);
    if (mv.cross[0] < 0 || mv.rehomes[0] < 0) {
        printf("SKIP rehome-counters: this build does not count them (%lld, %lld)\n", mv.cross[0], mv.rehomes[0]);
        return;
    }
    result(mv.cross[1] - mv.cross[0] == OLD, "rehome-cross-node-frees", "node 0: +%lld, expected +%d",
           mv.cross[1] - mv.cross[0], OLD);
    result(mv.rehomes[1] - mv.rehomes[0] == 1, "rehome-count", "node 1: +%lld, expected +1",
           mv.rehomes[1] - mv.rehomes[0]);
}

/* ---- driver ------------------------------------------------------------- */

/* A check's time limit.  A TSan build's checks, emulated by qemu, took
 * longer than 90 s for the 4-node "local" check on a loaded host. */
#if defined(UNDER_TSAN)
#define CHECK_SECONDS 600
#else
#define CHECK_SECONDS 90
#endif

static int run_check(const char *argv0, const char *check, const char *policy)
{
    pid_t pid = fork();
    int st;

    if (pid == 0) {
        setenv("HAKMEM_NUMA", policy, 1);
        alarm(CHECK_SECONDS);  /* a hung check fails instead of eating the VM's time */
        execl("/proc/self/exe", argv0, "--check", check, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid) {
        perror("fork/waitpid");
        return 1;
    }
    if (WIFSIGNALED(st))
        printf("FAIL %s: killed by signal %d%s\n", check, WTERMSIG(st),
               WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
    return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int drive(const char *argv0, unsigned expect)
{
    char node[16];
    int bad = 0, runs = 0;

    if (expect && nodes != expect) {
        printf("FAIL nodes: the kernel shows %u NUMA nodes, expected %u\n", nodes, expect);
        return 1;
    }
    /* Transparent huge pages place a whole 2 MiB at its first touch (usually
     * the allocator writing a SuperSlab header), which would hide whether the
     * rest of the SuperSlab was bound.  Inherited across fork and exec. */
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    printf("numa_vm_placement: %u nodes, blocks of %zu B\n", nodes, bsize);
    fflush(stdout);
    bad += run_check(argv0, "layer", "local"), runs++;
    bad += run_check(argv0, "local", "local"), runs++;
    for (unsigned k = 0; k < nodes; k++) {
        snprintf(node, sizeof node, "node:%u", k);
        bad += run_check(argv0, node, node), runs++;
    }
    if (nodes > 1) {
        bad += run_check(argv0, "interleave", "interleave"), runs++;
        bad += run_check(argv0, "rehome", "local"), runs++;
    } else {
        printf("SKIP interleave, rehome: one node\n");
    }
    printf("numa_vm_placement: %d of %d checks failed\n", bad, runs);
    return bad != 0;
}

int main(int argc, char **argv)
{
    page = sysconf(_SC_PAGESIZE);
    /* The largest size class up to 16 KiB: several pages per block, so the
     * sampled last page is one the allocator itself did not write. */
    for (unsigned c = 0; c < hak_size_class_count(); c++)
        if (hak_size_class_size(c) <= 16384 && hak_size_class_size(c) > bsize)
            bsize = hak_size_class_size(c);
    if (bsize < (size_t)page)
        bsize = (size_t)page;
    read_nodes();
    if (argc == 3 && strcmp(argv[1], "--nodes") == 0)
        return drive(argv[0], (unsigned)atoi(argv[2]));
    if (argc != 3 || strcmp(argv[1], "--check") != 0) {
        fprintf(stderr, "usage: %s --nodes N | --check layer|local|node:K|interleave|rehome\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[2], "layer") == 0)
        check_layer();
    else if (strcmp(argv[2], "local") == 0)
        check_local();
    else if (strncmp(argv[2], "node:", 5) == 0)
        check_node((unsigned)atoi(argv[2] + 5));
    else if (strcmp(argv[2], "interleave") == 0)
        check_interleave();
    else if (strcmp(argv[2], "rehome") == 0)
        check_rehome();
    else {
        fprintf(stderr, "unknown check %s\n", argv[2]);
        return 2;
    }
    return failed;
}
