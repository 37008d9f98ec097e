/* Placement policy (HAKMEM_NUMA): which node a new SuperSlab comes from, the
 * binding of its fresh mapping, and the calling thread's node.  Everything
 * here runs on the core's slow paths: no allocation, no lock, no stdio. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/mempolicy.h>

#include <ck_pr.h>

#include "hk_numa_int.h"

/* Written by the option reader before any thread exists (or by tests), read
 * on slow paths: relaxed loads and stores suffice. */
static unsigned policy = HK_NUMA_LOCAL;
static unsigned policy_node;
static char policy_name[16] = "local";
static unsigned rr;  /* interleave cursor */
static uint64_t bind_failures[HK_MAX_NODES];

static void set(enum hk_numa_policy p, unsigned node)
{
    struct hk_buf f = { policy_name, sizeof policy_name, 0 };
    static const char *const names[] = { "local", "interleave", "node:", "off" };

    hk_buf_str(&f, names[p]);
    if (p == HK_NUMA_NODE)
        hk_buf_u64(&f, node);
    hk_buf_finish(&f);
    ck_pr_store_uint(&policy_node, node);
    ck_pr_store_uint(&policy, p);
}

static void complain(const char *value, const char *why)
{
    char buf[256];
    struct hk_buf f = { buf, sizeof buf, 0 };

    hk_buf_str(&f, "hakmem: HAKMEM_NUMA=");
    hk_buf_str(&f, value);
    hk_buf_str(&f, ": ");
    hk_buf_str(&f, why);
    hk_buf_str(&f, ": using local\n");
    hk_buf_write(&f, 2);
}

static void complain_range(unsigned node, unsigned nodes)
{
    char buf[128], val[32];
    struct hk_buf f = { buf, sizeof buf, 0 }, v = { val, sizeof val, 0 };

    hk_buf_str(&v, "node:");
    hk_buf_u64(&v, node);
    hk_buf_finish(&v);
    hk_buf_str(&f, "the machine has ");
    hk_buf_u64(&f, nodes);
    hk_buf_str(&f, nodes == 1 ? " NUMA node (node:0)" : " NUMA nodes (node:0 to node:");
    if (nodes > 1) {
        hk_buf_u64(&f, nodes - 1);
        hk_buf_str(&f, ")");
    }
    hk_buf_finish(&f);
    complain(val, buf);
}

static int equal(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

int hk_numa_set_policy(const char *value)
{
    if (!value || !*value || equal(value, "local")) {
        set(HK_NUMA_LOCAL, 0);
    } else if (equal(value, "interleave")) {
        set(HK_NUMA_INTERLEAVE, 0);
    } else if (equal(value, "off")) {
        set(HK_NUMA_OFF, 0);
    } else if (value[0] == 'n' && value[1] == 'o' && value[2] == 'd' && value[3] == 'e' &&
               value[4] == ':' && value[5] >= '0' && value[5] <= '9') {
        const char *p = value + 5;
        unsigned n = 0;

        while (*p >= '0' && *p <= '9' && n < HK_MAX_NODES)
            n = n * 10 + (unsigned)(*p++ - '0');
        if (*p && !(*p >= '0' && *p <= '9')) {
            complain(value, "expected local, interleave, node:N or off");
            set(HK_NUMA_LOCAL, 0);
            return -1;
        }
        if (*p || n >= HK_MAX_NODES) {
            complain(value, "node number too large");
            set(HK_NUMA_LOCAL, 0);
            return -1;
        }
        /* Before init the node count is unknown: hk_numa_init() checks. */
        if (hk_numa_ready() && n >= hk_topo.nodes) {
            complain_range(n, hk_topo.nodes);
            set(HK_NUMA_LOCAL, 0);
            return -1;
        }
        set(HK_NUMA_NODE, n);
    } else {
        complain(value, "expected local, interleave, node:N or off");
        set(HK_NUMA_LOCAL, 0);
        return -1;
    }
    return 0;
}

void hk_numa_policy_validate(void)
{
    unsigned n = ck_pr_load_uint(&policy_node);

    if (ck_pr_load_uint(&policy) == HK_NUMA_NODE && n >= hk_topo.nodes) {
        complain_range(n, hk_topo.nodes);
        set(HK_NUMA_LOCAL, 0);
    }
}

void hk_numa_policy_reset(void)
{
    set(HK_NUMA_LOCAL, 0);
    ck_pr_store_uint(&rr, 0);
    for (unsigned i = 0; i < HK_MAX_NODES; i++)
        ck_pr_store_64(&bind_failures[i], 0);
}

enum hk_numa_policy hk_numa_policy(void)
{
    return (enum hk_numa_policy)ck_pr_load_uint(&policy);
}

const char *hk_numa_policy_name(void)
{
    return policy_name;
}

uint64_t hk_numa_bind_failures(unsigned node)
{
    return node < HK_MAX_NODES ? ck_pr_load_64(&bind_failures[node]) : 0;
}

unsigned hk_numa_current_node(void)
{
    /* sched_getcpu() reads the rseq area or calls the vDSO: no syscall. */
    return hk_numa_node_of_cpu(sched_getcpu());
}

unsigned hk_numa_pick_node(unsigned home)
{
    unsigned n = hk_numa_node_count();

    if (n == 1)
        return 0;
    switch (ck_pr_load_uint(&policy)) {
    case HK_NUMA_INTERLEAVE:
        /* Relaxed fetch-and-add: only the counter's own atomicity matters,
         * the node number orders no other memory access. */
        return ck_pr_faa_uint(&rr, 1) % n;
    case HK_NUMA_NODE:
        return ck_pr_load_uint(&policy_node);  /* validated < n at init */
    default:
        return home < n ? home : 0;
    }
}

int hk_numa_bind(void *addr, size_t len, unsigned node)
{
    enum { LONG_BITS = sizeof(unsigned long) * CHAR_BIT };
    unsigned long mask[HK_MAX_OS_NODE / LONG_BITS] = { 0 };
    unsigned os;

    if (!hk_numa_ready() || hk_topo.nodes == 1 || hk_topo.synthetic ||
        ck_pr_load_uint(&policy) == HK_NUMA_OFF)
        return 0;
    if (node >= hk_topo.nodes || (os = hk_topo.os_index[node]) >= HK_MAX_OS_NODE)
        return -1;
    mask[os / LONG_BITS] = 1UL << (os % LONG_BITS);
    /* MPOL_BIND, not MPOL_PREFERRED: PREFERRED silently takes pages from
     * another node when this one is short, so a SuperSlab homed on `node`
     * could sit elsewhere while the per-node statistics and the node pools
     * say otherwise.  BIND makes the placement a guarantee (the price: a
     * full node reclaims or OOMs instead of spilling over).  The kernel reads
     * maxnode - 1 bits, hence the + 1.  MPOL_MF_MOVE: a fresh mapping has no
     * pages to move; a SuperSlab made before the topology was known (the
     * first allocations, hwloc's own) has, and they follow it. */
    int saved = errno;
    if (syscall(SYS_mbind, addr, len, MPOL_BIND, mask, (unsigned long)HK_MAX_OS_NODE + 1, (unsigned long)MPOL_MF_MOVE) == 0)
        return 0;
    errno = saved;
    /* Relaxed: a statistic read at report time. */
    ck_pr_inc_64(&bind_failures[node]);
    return -1;
}
