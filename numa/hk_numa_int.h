/* Private state of the NUMA layer, shared by its files (not by the core).
 *
 * The topology is plain tables in static storage: hwloc is only used inside
 * hk_numa_init(), and the tables are published by a release store of the
 * ready state, so readers check hk_numa_ready() (an acquire load) first and
 * use the single-node defaults until then. */
#ifndef HK_NUMA_INT_H
#define HK_NUMA_INT_H

#include <stddef.h>
#include <stdint.h>

#include "hk_numa.h"

#define HK_MAX_CPUS 1024     /* CPU->node table size, by OS CPU index */
#define HK_MAX_OS_NODE 1024  /* mbind nodemask bits (the kernel's MAX_NUMNODES on Debian) */

struct hk_topo {
    unsigned nodes;                     /* >= 1, <= HK_MAX_NODES */
    int synthetic;                      /* XML or synthetic: binding is meaningless */
    uint16_t os_index[HK_MAX_NODES];    /* logical node -> kernel node id */
    uint16_t cpus[HK_MAX_NODES];        /* CPUs per node */
    uint8_t cpu_node[HK_MAX_CPUS];      /* OS CPU index -> logical node */
    uint8_t distance[HK_MAX_NODES][HK_MAX_NODES]; /* 10 = local */
};
extern struct hk_topo hk_topo;

/* Nonzero once hk_numa_init() has published hk_topo (acquire). */
int hk_numa_ready(void);

/* policy.c: called by hk_numa_init() with the tables filled, before they are
 * published: checks a node:N policy against the node count. */
void hk_numa_policy_validate(void);
void hk_numa_policy_reset(void);
/* mbind(2) calls that failed, per node (the kernel or a seccomp filter refused). */
uint64_t hk_numa_bind_failures(unsigned node);

#include "hk_buf.h"  /* text without stdio, shared with the core */

#endif
