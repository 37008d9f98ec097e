# Correctness tests of the allocator core: the hak_ API at its edges
# (Criterion), multi-threaded stress, fork, invalid frees, real programs
# under LD_PRELOAD, and programs linked with hakmem.pc's flags.

# Every test script (this fragment's and the others') finds the build and the
# sources through these two, absolute so VPATH builds and distcheck work;
# link.sh compiles with the build's CC.
AM_TESTS_ENVIRONMENT = top_builddir=$(abs_top_builddir) top_srcdir=$(abs_top_srcdir) CC='$(CC)'; \
	export top_builddir top_srcdir CC;

check_PROGRAMS += tests/api tests/slab_check tests/mt_stress tests/fork tests/badfree tests/large_moves tests/rt_wait tests/dlclose
TESTS += tests/api tests/api_options.sh tests/slab_check tests/mt_stress tests/fork tests/badfree.sh tests/exports.sh tests/sys/preload.sh \
	tests/link.sh tests/secure_env.sh tests/thp.sh tests/large_moves.sh tests/vm/large-moves.sh tests/rt_wait.sh
EXTRA_DIST += tests/large_moves.sh tests/vm/large-moves.sh tests/rt_wait.sh tests/link.sh tests/static_prog.c tests/secure_env.sh tests/secure_prog.c tests/thp.sh tests/thp_prog.c tests/badfree.sh tests/exports.sh tests/api_options.sh tests/preloadable.sh tests/sys/preload.sh tests/sys/work.py tests/sys/work.pl \
	tests/sys/prog.c tests/sys/prog.cpp

# -no-install: real executables (no libtool wrapper scripts), so the fork
# test's children and badfree's aborts are the programs themselves.
tests_api_SOURCES = tests/criterion_main.c tests/api_sizeclass.c tests/api_malloc.c tests/api_realloc.c tests/api_glibc.c \
	tests/api_align.c tests/api_usable.c tests/api_unit.c tests/api_stats.c tests/api_stats.h tests/api_rcache.c tests/testutil.h
tests_api_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) -pthread
tests_api_LDADD = src/libhakmem.la $(CRITERION_LIBS)
tests_api_LDFLAGS = -no-install

# White-box: -static links the uninstalled library's archive, whose internal
# (hidden) functions the test calls.
tests_slab_check_SOURCES = tests/slab_check.c tests/criterion_main.c
tests_slab_check_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(CK_CFLAGS) -I$(srcdir)/src -I$(srcdir)/numa
tests_slab_check_LDADD = src/libhakmem.la $(CRITERION_LIBS)
tests_slab_check_LDFLAGS = -no-install -static

tests_mt_stress_SOURCES = tests/mt_stress.c
tests_mt_stress_CFLAGS = $(AM_CFLAGS) -pthread
tests_mt_stress_LDADD = src/libhakmem.la
tests_mt_stress_LDFLAGS = -no-install

# -fno-builtin: these call malloc and free themselves, and the compiler must
# not fold or drop those calls.
tests_fork_SOURCES = tests/fork.c tests/testutil.h
tests_fork_CFLAGS = $(AM_CFLAGS) -pthread -fno-builtin
tests_fork_LDADD = src/libhakmem.la
tests_fork_LDFLAGS = -no-install

tests_badfree_SOURCES = tests/badfree.c
tests_badfree_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_badfree_LDADD = src/libhakmem.la
tests_badfree_LDFLAGS = -no-install

# Out of memory (RLIMIT_AS, RLIMIT_MEMLOCK): NULL with ENOMEM, nothing
# corrupted, allocation again once memory is back, statistics balanced (~3 s).
check_PROGRAMS += tests/oom
TESTS += tests/oom
tests_oom_SOURCES = tests/oom.c tests/testutil.h
tests_oom_CFLAGS = $(AM_CFLAGS) -pthread -fno-builtin
tests_oom_LDADD = src/libhakmem.la
tests_oom_LDFLAGS = -no-install

# Sandboxes' limits: madvise denied by a seccomp filter, RLIMIT_DATA
# filled by small blocks and freed (~2 s).
check_PROGRAMS += tests/sandbox
TESTS += tests/sandbox
tests_sandbox_SOURCES = tests/sandbox.c tests/testutil.h
tests_sandbox_CFLAGS = $(AM_CFLAGS)
tests_sandbox_LDADD = src/libhakmem.la
tests_sandbox_LDFLAGS = -no-install

# A thread refused memory while another's uncommit holds the pool takes the
# pooled SuperSlab (RLIMIT_DATA; the uncommit held by the test's mmap; ~1 s).
check_PROGRAMS += tests/uncommit_race
TESTS += tests/uncommit_race
tests_uncommit_race_SOURCES = tests/uncommit_race.c tests/testutil.h
tests_uncommit_race_CFLAGS = $(AM_CFLAGS) -pthread -fno-builtin
tests_uncommit_race_LDADD = src/libhakmem.la
tests_uncommit_race_LDFLAGS = -no-install

# A signal handler refused memory during its thread's own uncommit does not
# wait for it, nor does a child a handler forks there (RLIMIT_AS; ~4 s).
check_PROGRAMS += tests/uncommit_signal
TESTS += tests/uncommit_signal
tests_uncommit_signal_SOURCES = tests/uncommit_signal.c tests/testutil.h
tests_uncommit_signal_CFLAGS = $(AM_CFLAGS) -pthread -fno-builtin
tests_uncommit_signal_LDADD = src/libhakmem.la
tests_uncommit_signal_LDFLAGS = -no-install

# mlockall locks what the program uses, not what hakmem reserves.
check_PROGRAMS += tests/mlock
TESTS += tests/mlock
tests_mlock_SOURCES = tests/mlock.c
tests_mlock_CFLAGS = $(AM_CFLAGS) -pthread -fno-builtin
tests_mlock_LDADD = src/libhakmem.la
tests_mlock_LDFLAGS = -no-install

# 100,000 short-lived threads: RSS bounded after the first thousand, heaps
# reused, nothing left in use once every block is freed (~15 s).
check_PROGRAMS += tests/lifecycle tests/consumer
TESTS += tests/consumer
tests_consumer_SOURCES = tests/consumer.c tests/testutil.h
tests_consumer_CFLAGS = $(AM_CFLAGS) -pthread
tests_consumer_LDADD = src/libhakmem.la
tests_consumer_LDFLAGS = -no-install
check_PROGRAMS += tests/slow_return
TESTS += tests/slow_return
tests_slow_return_SOURCES = tests/slow_return.c tests/testutil.h
tests_slow_return_CFLAGS = $(AM_CFLAGS) -pthread
tests_slow_return_LDADD = src/libhakmem.la
tests_slow_return_LDFLAGS = -no-install
check_PROGRAMS += tests/pid_reuse
TESTS += tests/pid_reuse
tests_pid_reuse_SOURCES = tests/pid_reuse.c tests/testutil.h
tests_pid_reuse_CFLAGS = $(AM_CFLAGS) -pthread
tests_pid_reuse_LDADD = src/libhakmem.la
tests_pid_reuse_LDFLAGS = -no-install
check_PROGRAMS += tests/gone_threads
TESTS += tests/gone_threads
tests_gone_threads_SOURCES = tests/gone_threads.c tests/testutil.h
tests_gone_threads_CFLAGS = $(AM_CFLAGS) -pthread
tests_gone_threads_LDADD = src/libhakmem.la
tests_gone_threads_LDFLAGS = -no-install
check_PROGRAMS += tests/stats_race
TESTS += tests/stats_race
tests_stats_race_SOURCES = tests/stats_race.c tests/testutil.h
tests_stats_race_CFLAGS = $(AM_CFLAGS) -pthread
tests_stats_race_LDADD = src/libhakmem.la
tests_stats_race_LDFLAGS = -no-install
TESTS += tests/lifecycle
# Threads whose only frees are glibc's, after their destructors: no heap.
check_PROGRAMS += tests/detached
TESTS += tests/detached
tests_detached_SOURCES = tests/detached.c tests/testutil.h
tests_detached_CFLAGS = $(AM_CFLAGS) -pthread
tests_detached_LDADD = src/libhakmem.la
tests_detached_LDFLAGS = -no-install
tests_lifecycle_SOURCES = tests/lifecycle.c tests/testutil.h
tests_lifecycle_CFLAGS = $(AM_CFLAGS) -pthread
tests_lifecycle_LDADD = src/libhakmem.la
tests_lifecycle_LDFLAGS = -no-install

# Every workload at 1 and 4 threads under glibc and hakmem: one complete
# result line, check=ok.
TESTS += tests/workloads.sh
EXTRA_DIST += tests/workloads.sh

# -fno-builtin: the errno checks around free must not be folded away (gcc
# takes free to leave errno alone).  -no-install -static: a real ELF with the
# library inside, which tests/vm/large-moves.sh runs in a VM as well.
tests_large_moves_SOURCES = tests/large_moves.c tests/testutil.h
tests_large_moves_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_large_moves_LDADD = src/libhakmem.la
tests_large_moves_LDFLAGS = -no-install -static

# The workloads' checks catch a live block handed to a second owner: they
# fail under tests/dup_shim.c, a preloaded allocator that does so, and pass
# without it. -rpath: a shared object, although never installed.
check_LTLIBRARIES = tests/dup_shim.la tests/alloc_shim.la tests/dlclose_plugin.la
tests_dup_shim_la_SOURCES = tests/dup_shim.c
tests_dup_shim_la_CFLAGS = $(AM_CFLAGS) -pthread
tests_dup_shim_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere -pthread
tests_dup_shim_la_LIBADD = -ldl
TESTS += tests/dup_check.sh
EXTRA_DIST += tests/dup_check.sh

# -fno-builtin: the first malloc it times must be called.
tests_rt_wait_SOURCES = tests/rt_wait.c
tests_rt_wait_CFLAGS = $(AM_CFLAGS) -pthread -fno-builtin
tests_rt_wait_LDADD = src/libhakmem.la
tests_rt_wait_LDFLAGS = -no-install

# hakmem's paths call no clock_gettime or getpid that a preloaded library can
# replace: tests/alloc_shim.c replaces them with functions that allocate.
tests_alloc_shim_la_SOURCES = tests/alloc_shim.c
tests_alloc_shim_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
tests_alloc_shim_la_LIBADD = -ldl
TESTS += tests/interpose.sh
EXTRA_DIST += tests/interpose.sh

# A program without hakmem loads and unloads a plugin that depends on it.
tests_dlclose_plugin_la_SOURCES = tests/dlclose_plugin.c
tests_dlclose_plugin_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
tests_dlclose_plugin_la_LIBADD = src/libhakmem.la
tests_dlclose_SOURCES = tests/dlclose.c
tests_dlclose_CFLAGS = $(AM_CFLAGS) -pthread
tests_dlclose_LDADD = -ldl
tests_dlclose_LDFLAGS = -no-install
TESTS += tests/dlclose.sh
EXTRA_DIST += tests/dlclose.sh

# Deferred cancellation: hakmem's calls are no cancellation points (a cancel
# pending in malloc_stats left the report's lock held), and threads
# cancelled between allocations hand their heaps back (~1 s).
check_PROGRAMS += tests/cancel
TESTS += tests/cancel
tests_cancel_SOURCES = tests/cancel.c tests/testutil.h
tests_cancel_CFLAGS = $(AM_CFLAGS) -pthread
tests_cancel_LDADD = src/libhakmem.la
tests_cancel_LDFLAGS = -no-install

# A thread stopped in a sweep (a debugger, a signal handler that blocks)
# does not stop threads that start meanwhile.  White-box: linked
# statically, it reads the heaps' states (~1 s).
check_PROGRAMS += tests/stopped_sweep
TESTS += tests/stopped_sweep
tests_stopped_sweep_SOURCES = tests/stopped_sweep.c tests/testutil.h
tests_stopped_sweep_CFLAGS = $(AM_CFLAGS) $(CK_CFLAGS) -I$(srcdir)/src -I$(srcdir)/numa -pthread
tests_stopped_sweep_LDADD = src/libhakmem.la
tests_stopped_sweep_LDFLAGS = -no-install -static
