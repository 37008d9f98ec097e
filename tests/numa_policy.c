/* The NUMA layer without a multi-node machine: hwloc synthetic and XML
 * topologies (tests/numa_topos/) stand in for 2, 3 (asymmetric), 4 and 8
 * nodes.  Checks the topology tables, each policy's choice of node, policy
 * parsing and its error messages, the statistics' text, and the page query
 * on this machine.  Binding itself needs a real multi-node kernel: see
 * tests/vm/ (here it must be a no-op). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <criterion/criterion.h>

#include "hakmem.h"
#include "hk_numa.h"
#include "hk_heap.h"  /* hk_tls_heap: which heap a thread took */
#include "hk_buf.h"

#define TOPO(file) HK_TOPO_DIR "/" file

static void load(const char *topology)
{
    hk_numa_reset_for_tests();
    cr_assert_eq(hk_numa_init(topology), 0, "hk_numa_init(\"%s\") failed", topology);
}

/* Runs fn(arg) with fd 2 sent to a pipe; returns what was written. */
static char captured[4096];
static const char *capture_stderr(void (*fn)(const void *), const void *arg)
{
    int p[2], saved = dup(2);
    ssize_t n;

    cr_assert(pipe(p) == 0 && saved >= 0);
    dup2(p[1], 2);
    fn(arg);
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    n = read(p[0], captured, sizeof captured - 1);
    close(p[0]);
    captured[n > 0 ? n : 0] = '\0';
    return captured;
}

/* ---- topology ------------------------------------------------------------ */

Test(topology, before_init_one_node_no_binding)
{
    char page[64];

    hk_numa_reset_for_tests();
    cr_assert_eq(hk_numa_node_count(), 1);
    cr_assert_eq(hk_numa_current_node(), 0);
    cr_assert_eq(hk_numa_node_of_cpu(1), 0);
    cr_assert_eq(hk_numa_pick_node(5), 0);
    cr_assert_eq(hk_numa_distance(0, 0), 10);
    cr_assert_eq(hk_numa_bind(page, sizeof page, 0), 0, "binding before init must be a no-op");
}

Test(topology, two_nodes)
{
    load("pack:2 numa:1 core:2 pu:1");
    cr_assert_eq(hk_numa_node_count(), 2);
    for (int cpu = 0; cpu < 4; cpu++)
        cr_expect_eq(hk_numa_node_of_cpu(cpu), (unsigned)cpu / 2, "cpu %d", cpu);
    cr_expect_eq(hk_numa_node_of_cpu(-1), 0, "invalid CPUs map to node 0");
    cr_expect_eq(hk_numa_node_of_cpu(4), 0);
    cr_expect_eq(hk_numa_node_of_cpu(1 << 20), 0);
    cr_expect_eq(hk_numa_node_os_index(1), 1);
    cr_expect_eq(hk_numa_node_os_index(2), 0, "out of range -> 0");
    cr_expect_eq(hk_numa_distance(0, 0), 10);
    cr_expect_eq(hk_numa_distance(0, 1), 20, "no latency matrix: remote = 20");
    cr_expect_eq(hk_numa_distance(1, 2), 0, "out of range -> 0 (unknown)");
}

Test(topology, four_and_eight_nodes)
{
    load("numa:4 core:2 pu:1");
    cr_assert_eq(hk_numa_node_count(), 4);
    for (int cpu = 0; cpu < 8; cpu++)
        cr_expect_eq(hk_numa_node_of_cpu(cpu), (unsigned)cpu / 2, "4 nodes: cpu %d", cpu);

    load("pack:2 numa:4 core:1 pu:2");
    cr_assert_eq(hk_numa_node_count(), 8);
    for (int cpu = 0; cpu < 16; cpu++)
        cr_expect_eq(hk_numa_node_of_cpu(cpu), (unsigned)cpu / 2, "8 nodes: cpu %d", cpu);
    for (unsigned a = 0; a < 8; a++)
        for (unsigned b = 0; b < 8; b++)
            cr_expect_eq(hk_numa_distance(a, b), a == b ? 10u : 20u);
}

Test(topology, xml_from_lstopo)
{
    /* lstopo --input "numa:2 core:3 pu:1" --of xml */
    load(TOPO("sym-2x3.xml"));
    cr_assert_eq(hk_numa_node_count(), 2);
    for (int cpu = 0; cpu < 6; cpu++)
        cr_expect_eq(hk_numa_node_of_cpu(cpu), (unsigned)cpu / 3, "cpu %d", cpu);
}

Test(topology, asymmetric_xml)
{
    /* Nodes with kernel ids 0, 2, 5 owning CPUs {0-3}, {8}, {12,13}, and a
     * latency matrix that is not 10/20. */
    static const unsigned os[] = { 0, 2, 5 };
    static const unsigned dist[3][3] = { { 10, 21, 31 }, { 21, 10, 15 }, { 31, 15, 10 } };
    char json[2048];

    load(TOPO("asym-3node.xml"));
    cr_assert_eq(hk_numa_node_count(), 3);
    for (unsigned i = 0; i < 3; i++)
        cr_expect_eq(hk_numa_node_os_index(i), os[i], "node %u", i);
    for (int cpu = 0; cpu < 4; cpu++)
        cr_expect_eq(hk_numa_node_of_cpu(cpu), 0);
    cr_expect_eq(hk_numa_node_of_cpu(8), 1);
    cr_expect_eq(hk_numa_node_of_cpu(12), 2);
    cr_expect_eq(hk_numa_node_of_cpu(13), 2);
    cr_expect_eq(hk_numa_node_of_cpu(9), 0, "a CPU no node owns maps to node 0");
    for (unsigned a = 0; a < 3; a++)
        for (unsigned b = 0; b < 3; b++)
            cr_expect_eq(hk_numa_distance(a, b), dist[a][b], "distance %u-%u", a, b);
    hk_numa_stats_json(json, sizeof json);
    cr_expect(strstr(json, "{\"node\":0,\"os_index\":0,\"cpus\":4,\"distance\":[10,21,31],"), "%s", json);
    cr_expect(strstr(json, "{\"node\":1,\"os_index\":2,\"cpus\":1,\"distance\":[21,10,15],"), "%s", json);
    cr_expect(strstr(json, "{\"node\":2,\"os_index\":5,\"cpus\":2,\"distance\":[31,15,10],"), "%s", json);
}

Test(topology, nodes_sharing_cpus)
{
    /* Package 0 holds two nodes (say DRAM and high-bandwidth memory) over
     * CPUs 0-1: the CPUs belong to the first; package 1 is node 2. */
    load(TOPO("shared-cpuset-3node.xml"));
    cr_assert_eq(hk_numa_node_count(), 3);
    cr_expect_eq(hk_numa_node_of_cpu(0), 0);
    cr_expect_eq(hk_numa_node_of_cpu(1), 0);
    cr_expect_eq(hk_numa_node_of_cpu(2), 2);
    cr_expect_eq(hk_numa_node_of_cpu(3), 2);
    cr_expect_eq(hk_numa_node_os_index(1), 1);
}

static void init_garbage(const void *topology)
{
    hk_numa_reset_for_tests();
    cr_expect_eq(hk_numa_init(topology), -1, "a bad topology must be reported");
}

Test(topology, bad_description_falls_back_to_this_machine)
{
    const char *msg = capture_stderr(init_garbage, "numa:two");

    cr_expect(strstr(msg, "hakmem: HAKMEM_TOPOLOGY: not an XML file nor a valid synthetic topology: \"numa:two\""),
              "message: %s", msg);
    unsigned nodes = hk_numa_node_count();
    char json[4096];

    cr_expect_geq(nodes, 1);
    hk_numa_stats_json(json, sizeof json);
    cr_expect(strstr(json, "\"synthetic\":false"), "the fallback is this machine: %s", json);
    cr_expect_eq(hk_numa_init("numa:7"), 0, "init is done once: later calls change nothing");
    cr_expect_eq(hk_numa_node_count(), nodes);
}

Test(topology, bad_xml_file)
{
    char path[] = "/tmp/hk-numa-XXXXXX";
    int fd = mkstemp(path);
    const char *msg;

    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "<topology>", 10), 10);
    close(fd);
    msg = capture_stderr(init_garbage, path);
    unlink(path);
    cr_expect(strstr(msg, "hakmem: HAKMEM_TOPOLOGY: cannot load the hwloc XML file \""), "message: %s", msg);
}

Test(topology, init_is_idempotent)
{
    load("numa:4 core:1 pu:1");
    cr_expect_eq(hk_numa_init("numa:2 core:1 pu:1"), 0);
    cr_expect_eq(hk_numa_node_count(), 4, "a second init must not reload");
}

/* Slow paths of other threads run during init: they must get a valid node
 * every time (node 0 until the tables are published, a real one after). */
static int stop, bad_answers, reads;

static void *reader(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        unsigned here = hk_numa_current_node();
        unsigned pick = hk_numa_pick_node(here);
        unsigned count = hk_numa_node_count();  /* read last: it only grows */
        char local[64];

        if (here >= count || pick >= count || hk_numa_bind(local, sizeof local, pick) != 0)
            __atomic_add_fetch(&bad_answers, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&reads, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

Test(topology, init_while_others_read)
{
    pthread_t t[2];

    hk_numa_reset_for_tests();
    cr_assert_eq(hk_numa_set_policy("interleave"), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, reader, NULL), 0);
    while (__atomic_load_n(&reads, __ATOMIC_RELAXED) < 1000)
        sched_yield();
    cr_assert_eq(hk_numa_init("pack:2 numa:4 core:1 pu:1"), 0);
    for (int after = __atomic_load_n(&reads, __ATOMIC_RELAXED);
         __atomic_load_n(&reads, __ATOMIC_RELAXED) < after + 1000;)
        sched_yield();
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(bad_answers, 0, "%d of %d answers out of range", bad_answers, reads);
    cr_expect_eq(hk_numa_node_count(), 8);
}

Test(topology, current_node_follows_the_cpu)
{
    cpu_set_t set;

    /* CPU c is node c on this description, whatever the machine. */
    load("numa:2 core:1 pu:1");
    for (int cpu = 0; cpu < 2; cpu++) {
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set))
            cr_skip_test("cannot pin to CPU %d (%s): needs 2 CPUs", cpu, strerror(errno));
        cr_expect_eq(sched_getcpu(), cpu);
        cr_expect_eq(hk_numa_current_node(), (unsigned)cpu);
    }
}

/* ---- policies ------------------------------------------------------------ */

Test(policy, local_is_the_default_and_keeps_home)
{
    load("pack:2 numa:4 core:1 pu:1");
    cr_assert_eq(hk_numa_policy(), HK_NUMA_LOCAL);
    cr_expect_str_eq(hk_numa_policy_name(), "local");
    for (unsigned home = 0; home < 8; home++)
        cr_expect_eq(hk_numa_pick_node(home), home);
    cr_expect_eq(hk_numa_pick_node(8), 0, "a home beyond the node count -> node 0");
}

Test(policy, off_keeps_home)
{
    hk_numa_reset_for_tests();
    cr_assert_eq(hk_numa_set_policy("off"), 0);
    cr_assert_eq(hk_numa_init("numa:4 core:1 pu:1"), 0);
    cr_assert_eq(hk_numa_policy(), HK_NUMA_OFF);
    for (unsigned home = 0; home < 4; home++)
        cr_expect_eq(hk_numa_pick_node(home), home);
}

static void spread(const char *topology, unsigned nodes, unsigned calls)
{
    unsigned count[HK_MAX_NODES] = { 0 };

    hk_numa_reset_for_tests();
    cr_assert_eq(hk_numa_set_policy("interleave"), 0);
    cr_assert_eq(hk_numa_init(topology), 0);
    cr_assert_eq(hk_numa_node_count(), nodes);
    for (unsigned i = 0; i < calls; i++) {
        unsigned n = hk_numa_pick_node(0);
        cr_assert_lt(n, nodes);
        count[n]++;
    }
    for (unsigned n = 0; n < nodes; n++)
        cr_expect(count[n] + 1 >= calls / nodes && count[n] <= calls / nodes + 1,
                  "%s: node %u got %u of %u picks", topology, n, count[n], calls);
}

Test(policy, interleave_spreads_evenly)
{
    spread("pack:2 numa:1 core:2 pu:1", 2, 1001);
    spread("numa:4 core:1 pu:1", 4, 4003);
    spread("pack:2 numa:4 core:1 pu:2", 8, 8000);
    spread(TOPO("asym-3node.xml"), 3, 1000);
}

static void *picker(void *arg)
{
    unsigned *count = arg;

    for (int i = 0; i < 20000; i++)
        count[hk_numa_pick_node(0)]++;
    return NULL;
}

Test(policy, interleave_counter_is_atomic)
{
    enum { THREADS = 4, NODES = 4 };
    unsigned count[THREADS][HK_MAX_NODES] = { { 0 } };
    pthread_t t[THREADS];

    hk_numa_reset_for_tests();
    cr_assert_eq(hk_numa_set_policy("interleave"), 0);
    cr_assert_eq(hk_numa_init("numa:4 core:1 pu:1"), 0);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, picker, count[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    /* Every pick takes a distinct counter value: the total is exactly even. */
    for (int n = 0; n < NODES; n++) {
        unsigned total = 0;
        for (int i = 0; i < THREADS; i++)
            total += count[i][n];
        cr_expect_eq(total, THREADS * 20000 / NODES, "node %d", n);
    }
}

Test(policy, node_n)
{
    hk_numa_reset_for_tests();
    cr_assert_eq(hk_numa_set_policy("node:3"), 0);
    cr_assert_eq(hk_numa_init("numa:4 core:1 pu:1"), 0);
    cr_assert_eq(hk_numa_policy(), HK_NUMA_NODE);
    cr_expect_str_eq(hk_numa_policy_name(), "node:3");
    for (unsigned home = 0; home < 4; home++)
        cr_expect_eq(hk_numa_pick_node(home), 3);
    cr_expect_eq(hk_numa_set_policy("node:0"), 0, "in range after init");
    cr_expect_eq(hk_numa_pick_node(2), 0);
}

static void init_node_out_of_range(const void *unused)
{
    (void)unused;
    hk_numa_reset_for_tests();
    cr_assert_eq(hk_numa_set_policy("node:5"), 0, "unknown before init: accepted");
    cr_assert_eq(hk_numa_init("numa:4 core:1 pu:1"), 0);
}

Test(policy, node_n_out_of_range_at_init)
{
    const char *msg = capture_stderr(init_node_out_of_range, NULL);

    cr_expect_str_eq(msg, "hakmem: HAKMEM_NUMA=node:5: the machine has 4 NUMA nodes "
                          "(node:0 to node:3): using local\n");
    cr_expect_eq(hk_numa_policy(), HK_NUMA_LOCAL);
    cr_expect_eq(hk_numa_pick_node(2), 2);
}

static void set_node_9(const void *unused)
{
    (void)unused;
    cr_expect_eq(hk_numa_set_policy("node:9"), -1);
}

Test(policy, node_n_out_of_range_after_init)
{
    const char *msg;

    hk_numa_reset_for_tests();
    cr_assert_eq(hk_numa_init("numa:1 core:1 pu:1"), 0);
    msg = capture_stderr(set_node_9, NULL);
    cr_expect_str_eq(msg, "hakmem: HAKMEM_NUMA=node:9: the machine has 1 NUMA node (node:0): using local\n");
    cr_expect_eq(hk_numa_policy(), HK_NUMA_LOCAL);
}

static void parse(const void *value)
{
    cr_expect_eq(hk_numa_set_policy(value), -1, "\"%s\" must be refused", (const char *)value);
}

Test(policy, parsing)
{
    static const char *const good[][2] = {
        { "local", "local" }, { "interleave", "interleave" }, { "off", "off" },
        { "node:0", "node:0" }, { "node:63", "node:63" }, { "node:007", "node:7" },
        { "", "local" },
    };
    static const char *const bad[] = {
        "LOCAL", "loca", "locall", " local", "interleave ", "of", "node", "node:", "node:x",
        "node:-1", "node:+1", "node:1x", "node:1 ", "node:64", "node:99999999999999999999", "nodes:1",
    };

    hk_numa_reset_for_tests();
    cr_expect_eq(hk_numa_set_policy(NULL), 0);
    cr_expect_str_eq(hk_numa_policy_name(), "local");
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        cr_expect_eq(hk_numa_set_policy(good[i][0]), 0, "\"%s\"", good[i][0]);
        cr_expect_str_eq(hk_numa_policy_name(), good[i][1]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *msg;

        hk_numa_set_policy("interleave");
        msg = capture_stderr(parse, bad[i]);
        cr_expect_eq(hk_numa_policy(), HK_NUMA_LOCAL, "\"%s\" -> local", bad[i]);
        cr_expect(strncmp(msg, "hakmem: HAKMEM_NUMA=", 20) == 0 && strstr(msg, ": using local\n"),
                  "\"%s\": message %s", bad[i], msg);
    }
    capture_stderr(parse, "node:64");
    cr_expect_str_eq(captured, "hakmem: HAKMEM_NUMA=node:64: node number too large: using local\n");
    capture_stderr(parse, "bogus");
    cr_expect_str_eq(captured, "hakmem: HAKMEM_NUMA=bogus: expected local, interleave, node:N or off: using local\n");
}

/* ---- binding and placement on this machine --------------------------------- */

Test(bind, noop_on_synthetic_topologies)
{
    size_t len = 1 << 20;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    cr_assert(p != MAP_FAILED);
    load("numa:4 core:1 pu:1");
    cr_expect_eq(hk_numa_bind(p, len, 3), 0);
    cr_expect_eq(hk_numa_bind(p, len, 9), 0, "no-op even for a node that does not exist");
    munmap(p, len);
}

Test(placement, query_pages_of_this_process)
{
    enum { PAGES = 600 };  /* more than one internal chunk of 256 */
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *pages[PAGES];
    size_t resident, on_node;
    int status;
    void *probe = &status;

    cr_assert(p != MAP_FAILED);
    if (syscall(SYS_move_pages, 0, 1UL, &probe, NULL, &status, 0) && errno == ENOSYS)
        cr_skip_test("this kernel has no move_pages(2) (built without NUMA)");
    load(NULL);
    for (int i = 0; i < PAGES; i++) {
        pages[i] = p + (size_t)i * page;
        if (i % 3 == 0)
            p[(size_t)i * page] = 1;
    }
    hk_numa_query_pages(pages, PAGES, hk_numa_current_node(), &resident, &on_node);
    cr_expect_eq(resident, PAGES / 3, "only touched pages are resident");
    if (hk_numa_node_count() == 1)
        cr_expect_eq(on_node, resident, "one node: every resident page is on it");
    hk_numa_query_pages(pages, 0, 0, &resident, &on_node);
    cr_expect_eq(resident + on_node, 0);
    munmap(p, PAGES * page);
}

/* ---- statistics text ----------------------------------------------------- */

Test(stats, json_follows_the_snprintf_contract)
{
    char big[4096], small[16];
    size_t need;

    hk_numa_reset_for_tests();
    cr_assert_eq(hk_numa_set_policy("interleave"), 0);
    cr_assert_eq(hk_numa_init("pack:2 numa:1 core:2 pu:1"), 0);
    need = hk_numa_stats_json(NULL, 0);
    cr_assert_eq(hk_numa_stats_json(big, sizeof big), need);
    cr_assert_eq(strlen(big), need);
    cr_expect(big[0] == '[' && big[need - 1] == ']', "%s", big);
    cr_expect(strstr(big, "{\"node\":0,\"os_index\":0,\"cpus\":2,\"distance\":[10,20],\"superslabs\":"), "%s", big);
    cr_expect(strstr(big, "},{\"node\":1,\"os_index\":1,\"cpus\":2,\"distance\":[20,10],"), "%s", big);
    cr_expect(strstr(big, "\"policy\":\"interleave\",\"synthetic\":true}]"), "%s", big);
    memset(small, 'x', sizeof small);
    cr_expect_eq(hk_numa_stats_json(small, sizeof small), need);
    cr_expect_eq(strlen(small), sizeof small - 1, "truncated and NUL-terminated");
    cr_expect(strncmp(small, big, sizeof small - 1) == 0);
}

Test(stats, json_shows_the_counters)
{
    char json[4096], want[128];
    uint64_t rehomes;

    load("numa:2 core:1 pu:1");
    /* The core owns these counters: add and take back, nothing allocates between. */
    __atomic_add_fetch(&hk_node_stats[1].rehomes, 1234567, __ATOMIC_RELAXED);
    rehomes = __atomic_load_n(&hk_node_stats[1].rehomes, __ATOMIC_RELAXED);
    hk_numa_stats_json(json, sizeof json);
    __atomic_sub_fetch(&hk_node_stats[1].rehomes, 1234567, __ATOMIC_RELAXED);
    snprintf(want, sizeof want, "\"rehomes\":%llu,", (unsigned long long)rehomes);
    cr_expect(strstr(strstr(json, "{\"node\":1,"), want), "%s not in %s", want, json);
}

Test(stats, human_summary)
{
    static const char head[] = "hakmem: numa: policy local, 2 nodes (synthetic topology: memory not bound)\n"
                               "hakmem: node 0 (os 0, 2 cpus): ";
    char text[2048];
    struct hk_buf b = { text, sizeof text, 0 };

    load("pack:2 numa:1 core:2 pu:1");
    hk_numa_stats_text(&b);
    cr_assert_lt(hk_buf_finish(&b), sizeof text);
    cr_expect(strncmp(text, head, sizeof head - 1) == 0, "%s", text);
    cr_expect(strstr(text, "\nhakmem: node 1 (os 1, 2 cpus): "), "%s", text);
    cr_expect(strstr(text, " rehomes\n"), "%s", text);
}

/* ---- heaps of exited threads --------------------------------------------- */

/* Pins itself to CPU cpu (node = CPU on "numa:2 core:1 pu:1"), takes a
 * heap, notes which, waits for `go` (when set), and exits, leaving the heap
 * abandoned. */
struct on_cpu {
    long cpu;
    sem_t *go;
    void *heap;
    bool pinned;
};

static void *exit_on_cpu(void *arg)
{
    struct on_cpu *o = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)o->cpu, &set);
    o->pinned = sched_setaffinity(0, sizeof set, &set) == 0;
    hak_free(hak_malloc(100));  /* not malloc: gcc drops a malloc freed unused */
    __atomic_store_n(&o->heap, (void *)hk_tls_heap, __ATOMIC_RELEASE);  /* after pinned: the test waits on heap */
    if (o->go)
        sem_wait(o->go);
    return NULL;
}

/* A new thread adopts an exited thread's heap of its own node, not the most
 * recent of any: across nodes the heap re-homes, and its memory on the old
 * node serves the thread nothing (a churn of 400 threads on a 2-node
 * kernel made 240 OS calls, one node none). */
Test(adoption, a_new_thread_takes_a_heap_of_its_node)
{
    load("numa:2 core:1 pu:1");
    sem_t go1, go0;
    sem_init(&go1, 0, 0);
    sem_init(&go0, 0, 0);
    struct on_cpu one = { 1, &go1, NULL, false }, zero = { 0, &go0, NULL, false }, again = { 1, NULL, NULL, false };
    pthread_t t1, t0, t;
    cr_assert_eq(pthread_create(&t1, NULL, exit_on_cpu, &one), 0);
    cr_assert_eq(pthread_create(&t0, NULL, exit_on_cpu, &zero), 0);
    while (!__atomic_load_n(&one.heap, __ATOMIC_ACQUIRE) || !__atomic_load_n(&zero.heap, __ATOMIC_ACQUIRE))
        sched_yield();
    sem_post(&go1);  /* node 1's heap abandoned first, */
    pthread_join(t1, NULL);
    sem_post(&go0);  /* then node 0's, the most recent */
    pthread_join(t0, NULL);
    if (!one.pinned || !zero.pinned)
        cr_skip_test("cannot pin to CPUs 0 and 1: needs 2 CPUs");
    cr_assert_eq(pthread_create(&t, NULL, exit_on_cpu, &again), 0);
    pthread_join(t, NULL);
    cr_expect_eq(again.heap, one.heap, "a thread on node 1 took %s heap",
                 again.heap == zero.heap ? "node 0's" : "a new");
}
