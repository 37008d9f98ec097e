# NUMA layer (owned by the numa engineer): topology, placement policy, binding, stats.
# Built into src/libhakmem.la together with $(HAKMEM_CORE_SOURCES).
HAKMEM_NUMA_SOURCES = \
	numa/hk_numa.h numa/hk_numa_int.h \
	numa/topology.c numa/policy.c numa/placement.c numa/stats.c
