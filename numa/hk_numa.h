/* NUMA layer: topology (hwloc), placement policy, binding, per-node statistics.
 *
 * Contract with the core (src/):
 * - Until hk_numa_init() has finished, the layer reports one node (0), binds
 *   nothing and never allocates.  The core calls hk_numa_init() once, from a
 *   constructor, when hakmem itself is fully usable: hwloc's hundreds of
 *   mallocs during topology load are then served by an initialised hakmem.
 *   A malloc that re-enters the core during init sees node 0 and proceeds.
 * - hk_numa_current_node(), hk_numa_pick_node(), hk_numa_bind() never allocate
 *   and take no lock: they run on the core's slow paths. */
#ifndef HK_NUMA_H
#define HK_NUMA_H

#include <stddef.h>
#include <stdint.h>

#define HK_MAX_NODES 64

enum hk_numa_policy { HK_NUMA_LOCAL, HK_NUMA_INTERLEAVE, HK_NUMA_NODE, HK_NUMA_OFF };

/* Per-node counters, updated by the core with atomic adds (ck_pr_add_64 /
 * ck_pr_inc_64): relaxed is enough, they are statistics read at report time. */
struct hk_node_stats {
    uint64_t superslabs;       /* SuperSlabs currently homed on the node */
    uint64_t bytes_committed;  /* bytes of those SuperSlabs committed, and the node's pooled ones' headers */
    uint64_t bytes_in_use;     /* bytes of slabs carved and in use on the node */
    uint64_t cross_node_frees; /* frees of a block of this node by a thread homed elsewhere */
    uint64_t rehomes;          /* threads that re-homed onto this node */
};
extern struct hk_node_stats hk_node_stats[HK_MAX_NODES];

/* Parse HAKMEM_NUMA's value (NULL or "" = default "local"); -1 on a bad value,
 * which the layer reports itself on stderr and replaces by "local".  Called by
 * the core's option reader before init; must not allocate.  node:N is checked
 * against the node count by hk_numa_init() (or here, after init). */
int hk_numa_set_policy(const char *value);
enum hk_numa_policy hk_numa_policy(void);
const char *hk_numa_policy_name(void);      /* "local", "node:3", ... */

/* Load the topology (HAKMEM_TOPOLOGY: an hwloc XML file or a synthetic
 * description, else the real machine).  Idempotent; 0 on success. */
int hk_numa_init(const char *topology);
unsigned hk_numa_node_count(void);          /* >= 1 */
unsigned hk_numa_node_os_index(unsigned node);
unsigned hk_numa_node_of_cpu(int cpu);      /* 0 for unknown CPUs */
unsigned hk_numa_distance(unsigned a, unsigned b); /* 10 = local, 0 = unknown */
/* Test-only: forget the topology and the policy so that the next
 * hk_numa_init() loads another one.  No other thread may use the layer. */
void hk_numa_reset_for_tests(void);

/* The node the calling thread runs on now (sched_getcpu + table). */
unsigned hk_numa_current_node(void);
/* The node a new SuperSlab for a heap homed on `home` comes from. */
unsigned hk_numa_pick_node(unsigned home);
/* Bind a fresh mapping to `node` before first touch.  No-op for policy off,
 * a single node, or a synthetic topology.  0 on success or no-op; -1 when
 * refused, errno left alone (called from malloc, which leaves it alone when
 * it succeeds). */
int hk_numa_bind(void *addr, size_t len, unsigned node);

/* Placement check: how many of `n` pages (page-aligned addresses) are
 * resident, and how many of those sit on `node` (move_pages(2) query). */
void hk_numa_query_pages(void *const *pages, size_t n, unsigned node,
                         size_t *resident, size_t *on_node);

/* The "nodes":[...] array of the stats JSON (snprintf contract), and the
 * per-node lines of the human summary (appended to b). */
struct hk_buf;
size_t hk_numa_stats_json(char *buf, size_t len);
void hk_numa_stats_text(struct hk_buf *b);

#endif
