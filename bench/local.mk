# Benchmark workloads: one small program per workload on the plain malloc
# family, measured against any allocator through LD_PRELOAD, so they link only
# libc (-pthread -lm, and -ldl: dlsym finds hakmem's statistics when hakmem is
# the allocator) and never libhakmem. Installed to $(pkglibexecdir), where
# hakmem-bench looks for them; in the build tree they are bench/<workload>.
# bench.c/bench.h is the shared harness (options, threads, result line).
pkglibexec_PROGRAMS = \
	bench/mixed bench/larson bench/xmalloc bench/ring bench/threadtest \
	bench/cache-scratch bench/cache-thrash bench/churn bench/fragment bench/large \
	bench/soak bench/burst bench/tail

hk_bench_harness = bench/bench.c bench/bench.h
hk_bench_cflags = $(AM_CFLAGS) -pthread
hk_bench_ldflags = -pthread
hk_bench_libs = -lm -ldl

bench_mixed_SOURCES = bench/mixed.c $(hk_bench_harness)
bench_mixed_CFLAGS = $(hk_bench_cflags)
bench_mixed_LDFLAGS = $(hk_bench_ldflags)
bench_mixed_LDADD = $(hk_bench_libs)

bench_larson_SOURCES = bench/larson.c $(hk_bench_harness)
bench_larson_CFLAGS = $(hk_bench_cflags)
bench_larson_LDFLAGS = $(hk_bench_ldflags)
bench_larson_LDADD = $(hk_bench_libs)

bench_xmalloc_SOURCES = bench/xmalloc.c $(hk_bench_harness)
bench_xmalloc_CFLAGS = $(hk_bench_cflags)
bench_xmalloc_LDFLAGS = $(hk_bench_ldflags)
bench_xmalloc_LDADD = $(hk_bench_libs)

bench_ring_SOURCES = bench/ring.c $(hk_bench_harness)
bench_ring_CFLAGS = $(hk_bench_cflags)
bench_ring_LDFLAGS = $(hk_bench_ldflags)
bench_ring_LDADD = $(hk_bench_libs)

bench_threadtest_SOURCES = bench/threadtest.c $(hk_bench_harness)
bench_threadtest_CFLAGS = $(hk_bench_cflags)
bench_threadtest_LDFLAGS = $(hk_bench_ldflags)
bench_threadtest_LDADD = $(hk_bench_libs)

bench_cache_scratch_SOURCES = bench/cache-scratch.c bench/cache.c bench/cache.h $(hk_bench_harness)
bench_cache_scratch_CFLAGS = $(hk_bench_cflags)
bench_cache_scratch_LDFLAGS = $(hk_bench_ldflags)
bench_cache_scratch_LDADD = $(hk_bench_libs)

bench_cache_thrash_SOURCES = bench/cache-thrash.c bench/cache.c bench/cache.h $(hk_bench_harness)
bench_cache_thrash_CFLAGS = $(hk_bench_cflags)
bench_cache_thrash_LDFLAGS = $(hk_bench_ldflags)
bench_cache_thrash_LDADD = $(hk_bench_libs)

bench_churn_SOURCES = bench/churn.c $(hk_bench_harness)
bench_churn_CFLAGS = $(hk_bench_cflags)
bench_churn_LDFLAGS = $(hk_bench_ldflags)
bench_churn_LDADD = $(hk_bench_libs)

bench_fragment_SOURCES = bench/fragment.c $(hk_bench_harness)
bench_fragment_CFLAGS = $(hk_bench_cflags)
bench_fragment_LDFLAGS = $(hk_bench_ldflags)
bench_fragment_LDADD = $(hk_bench_libs)

bench_large_SOURCES = bench/large.c $(hk_bench_harness)
bench_large_CFLAGS = $(hk_bench_cflags)
bench_large_LDFLAGS = $(hk_bench_ldflags)
bench_large_LDADD = $(hk_bench_libs)

# The long run of a fixed working set (see bench/soak.c); `make soak` runs it
# for SOAK_SECONDS (600) under hakmem and reports RSS and throughput drift.
bench_soak_SOURCES = bench/soak.c $(hk_bench_harness)
bench_soak_CFLAGS = $(hk_bench_cflags)
bench_soak_LDFLAGS = $(hk_bench_ldflags)
bench_soak_LDADD = $(hk_bench_libs)

SOAK_SECONDS = 600
soak: bench/soak src/libhakmem.la
	LD_PRELOAD=$(abs_top_builddir)/src/.libs/libhakmem.so bench/soak --threads 2 \
	  --seconds $(SOAK_SECONDS) --check
# `make soak-ab` runs it under hakmem and mimalloc side by side and reports
# the drift of their throughput ratio, which the machine's own drift cancels.
soak-ab: bench/soak src/libhakmem.la
	$(SHELL) $(srcdir)/bench/soak-ab.sh bench/soak $(abs_top_builddir)/src/.libs/libhakmem.so $(SOAK_SECONDS)
EXTRA_DIST += bench/soak-ab.sh
.PHONY: soak soak-ab

# `make redis-idle`: redis's resident set, idle after a flush, under each
# allocator (README: Memory return); needs redis-server.
REDIS_IDLE_SECONDS = 60
redis-idle: src/libhakmem.la
	$(SHELL) $(srcdir)/bench/redis-idle.sh $(abs_top_builddir)/src/.libs/libhakmem.so $(REDIS_IDLE_SECONDS)
EXTRA_DIST += bench/redis-idle.sh
.PHONY: redis-idle

# Not a harness workload: a time series of the resident set (hakmem-bench burst).
bench_burst_SOURCES = bench/burst.c $(hk_bench_harness)
bench_burst_CFLAGS = $(hk_bench_cflags)
bench_burst_LDFLAGS = $(hk_bench_ldflags)
bench_burst_LDADD = $(hk_bench_libs)

# Not a harness workload either: the distribution of single calls' latency
# (p50, p99, p99.9, max) in scenarios where an allocator does rare, large
# work inside one call (bench/tail.c); run it under each allocator by
# LD_PRELOAD, `--cpu 1` to leave out the time a loaded machine preempts.
bench_tail_SOURCES = bench/tail.c $(hk_bench_harness)
bench_tail_CFLAGS = $(hk_bench_cflags)
bench_tail_LDFLAGS = $(hk_bench_ldflags)
bench_tail_LDADD = $(hk_bench_libs)
