# NUMA layer (owned by the numa engineer): topology, placement policy, node pools, stats.
HAKMEM_NUMA_SOURCES = numa/hk_numa.h numa/topology.c numa/policy.c numa/placement.c numa/stats.c
