# hakmem-bench, the sweep tool: installed script, its Python modules, its tests,
# and the `make sweep` / `make paper` targets.  Paths are relative to the top.

# The script is generated so that it knows where make install puts the
# workload programs (pkglibexecdir), libhakmem (libdir) and its modules; when
# run from a build tree it finds the workloads and the library there instead.
bin_SCRIPTS += bench/hakmem-bench
CLEANFILES += bench/hakmem-bench
EXTRA_DIST += bench/hakmem-bench.in

# The rusage stub: the workload's own peak RSS (see the source for why).
pkglibexec_PROGRAMS += bench/hakmem-bench-spawn
bench_hakmem_bench_spawn_SOURCES = bench/hakmem-bench-spawn.c

# The sampling profiler hakmem-bench profile preloads (see the source).
hksamplerdir = $(pkglibexecdir)
hksampler_LTLIBRARIES = bench/hakmem-bench-sampler.la
bench_hakmem_bench_sampler_la_SOURCES = bench/hakmem-bench-sampler.c
bench_hakmem_bench_sampler_la_CFLAGS = $(AM_CFLAGS) -pthread
bench_hakmem_bench_sampler_la_LDFLAGS = -module -avoid-version -shared -pthread
bench_hakmem_bench_sampler_la_LIBADD = -ldl

hkbenchpydir = $(pkgdatadir)/python/hakmem_bench
dist_hkbenchpy_DATA = \
	bench/hakmem_bench/__init__.py \
	bench/hakmem_bench/ab.py \
	bench/hakmem_bench/burst.py \
	bench/hakmem_bench/cli.py \
	bench/hakmem_bench/fmt.py \
	bench/hakmem_bench/health.py \
	bench/hakmem_bench/instructions.py \
	bench/hakmem_bench/locate.py \
	bench/hakmem_bench/machine.py \
	bench/hakmem_bench/numa_study.py \
	bench/hakmem_bench/plot.py \
	bench/hakmem_bench/profile.py \
	bench/hakmem_bench/programs.py \
	bench/hakmem_bench/results.py \
	bench/hakmem_bench/runner.py \
	bench/hakmem_bench/stats.py \
	bench/hakmem_bench/summary.py \
	bench/hakmem_bench/sweep.py

hk_bench_edit = sed \
	-e 's|@PYTHON3[@]|$(PYTHON3)|g' \
	-e 's|@pkglibexecdir[@]|$(pkglibexecdir)|g' \
	-e 's|@pkgdatadir[@]|$(pkgdatadir)|g' \
	-e 's|@libdir[@]|$(libdir)|g' \
	-e 's|@bindir[@]|$(bindir)|g' \
	-e 's|@abs_top_srcdir[@]|$(abs_top_srcdir)|g' \
	-e 's|@abs_top_builddir[@]|$(abs_top_builddir)|g' \
	-e 's|@PACKAGE_VERSION[@]|$(PACKAGE_VERSION)|g'

bench/hakmem-bench: $(srcdir)/bench/hakmem-bench.in Makefile
	$(AM_V_GEN)$(MKDIR_P) bench && rm -f $@ $@.tmp && \
	$(hk_bench_edit) $(srcdir)/bench/hakmem-bench.in > $@.tmp && \
	chmod +x $@.tmp && mv $@.tmp $@

# Tests of the tool itself, with a fake workload (no allocator timing).
HK_SWEEP_TESTS = \
	tests/sweep/test-summary \
	tests/sweep/test-cli \
	tests/sweep/test-e2e \
	tests/sweep/test-paper \
	tests/sweep/test-paper-data \
	tests/sweep/test-numa \
	tests/sweep/test-profile \
	tests/sweep/test-instructions \
	tests/sweep/test-burst \
	tests/sweep/test-programs \
	tests/sweep/test-recipes
TESTS += $(HK_SWEEP_TESTS)
EXTRA_DIST += $(HK_SWEEP_TESTS) \
	tests/sweep/sweeptest.py \
	tests/sweep/fake-workload \
	tests/sweep/fixture/results.csv \
	tests/sweep/fixture/meta.json \
	tests/sweep/fake-numa-workload \
	tests/sweep/fixture/numa-vm-2x2.txt \
	tests/vm/numa-study-vm.sh \
	tests/vm/numa-study-driver.c \
	papers/gen_paper.py \
	papers/frontier.md \
	papers/data/frontier/results.csv \
	papers/data/frontier/meta.json \
	papers/data/frontier/empty.csv \
	papers/gen_headroom.py \
	papers/gen_burst.py \
	papers/gen_programs.py

# make sweep: the short default sweep, 3 to 6 minutes on 2 cores.  It keeps
# the 5 interleaved runs per point and shortens the workloads instead (to
# a third of their default work, half for Hoard's false-sharing tests):
# 27 points (7 workloads x 4 thread counts, xmalloc has no 1-thread point)
# x 5 allocators x 5 runs = 675 runs.
# cache-scratch hands each thread 100 objects, not Hoard's 1: enough for a
# thread to take a heap and fill its remote-block cache with them.
HK_SWEEP_DIR = results/sweep-latest
HK_SWEEP_FLAGS = --workloads mixed,larson,xmalloc,ring,threadtest,cache-scratch,cache-thrash \
	--threads 1,2,4,8 --runs 5 \
	--workload-args 'mixed: --iters 6000000' \
	--workload-args 'larson: --iters 5000000' \
	--workload-args 'xmalloc: --iters 3000000' \
	--workload-args 'ring: --iters 5000000' \
	--workload-args 'threadtest: --rounds 600' \
	--workload-args 'cache-scratch: --iters 500 --handed 100' \
	--workload-args 'cache-thrash: --iters 500'
HK_SWEEP_NOTE = make sweep shortens every workload to about a third of its \
	default work (half for cache-scratch and cache-thrash; the knobs are on the run line of each \
	workload) so that a sweep of 5 runs a point fits in 3 to 6 minutes on 2 cores (depending on the load); \
	run hakmem-bench sweep without them for the full-length workloads. cache-scratch hands each \
	thread 100 objects where the original hands 1.

# The sweep exits 1 when a run failed; the summary is printed regardless.
sweep: all
	@rm -rf $(HK_SWEEP_DIR)
	@st=0; bench/hakmem-bench sweep $(HK_SWEEP_FLAGS) \
	  --bench-dir $(abs_top_builddir)/bench \
	  --lib $(abs_top_builddir)/src/.libs/libhakmem.so \
	  --out $(HK_SWEEP_DIR) --note '$(HK_SWEEP_NOTE)' || st=$$?; \
	if test -f $(HK_SWEEP_DIR)/summary.md; then \
	  echo; cat $(HK_SWEEP_DIR)/summary.md; echo; \
	  echo "summary: $(abs_top_builddir)/$(HK_SWEEP_DIR)/summary.md"; \
	fi; exit $$st

# make paper: papers/frontier.md from results/sweep-latest, sweeping first
# unless that sweep is newer than every binary it measured.
HK_PAPER_BINARIES = src/.libs/libhakmem.so bench/mixed bench/larson \
	bench/xmalloc bench/ring bench/threadtest bench/cache-scratch bench/cache-thrash
paper: all
	@if test -f $(HK_SWEEP_DIR)/results.csv && \
	    test -z "`find $(HK_PAPER_BINARIES) -newer $(HK_SWEEP_DIR)/results.csv 2>/dev/null`"; then \
	  echo "paper: reusing $(HK_SWEEP_DIR) (newer than the binaries)"; \
	else \
	  $(MAKE) $(AM_MAKEFLAGS) sweep >/dev/null || \
	    echo "paper: the sweep had failed runs; the paper lists them"; \
	fi
	$(PYTHON3) $(srcdir)/papers/gen_paper.py $(HK_SWEEP_DIR) $(srcdir)/papers

# make headroom: papers/headroom.md, how much faster than the fastest
# reference any allocator could run the points the issues set targets for
# (hakmem-bench profile of every allocator, interleaved, 9 runs each, with
# the workloads as short as make sweep's), and how few instructions mixed's
# target leaves the allocator (hakmem-bench instructions, callgrind); about
# 10 minutes on 2 cores.
HK_HEADROOM_DIR = results/headroom-latest
headroom: all
	@rm -rf $(HK_HEADROOM_DIR); $(MKDIR_P) $(HK_HEADROOM_DIR); st=0; \
	for w in larson xmalloc ring mixed; do \
	  case $$w in mixed) a='--iters 6000000';; larson|ring) a='--iters 5000000';; \
	    xmalloc) a='--iters 3000000';; esac; \
	  for t in 1 2 4 8; do \
	    echo "headroom: $$w, $$t thread(s)"; \
	    bench/hakmem-bench profile --workload $$w --threads $$t --runs 9 --workload-args "$$a" \
	      --bench-dir $(abs_top_builddir)/bench --lib $(abs_top_builddir)/src/.libs/libhakmem.so \
	      --out $(HK_HEADROOM_DIR)/$$w-$$t > $(HK_HEADROOM_DIR)/$$w-$$t.log 2>&1 || st=1; \
	  done; \
	done; \
	if command -v valgrind >/dev/null; then \
	  echo "headroom: mixed, 1 thread, instructions"; \
	  bench/hakmem-bench instructions --workload mixed --threads 1 --target 0.85 \
	    --allocators hakmem,glibc,mimalloc,jemalloc,tcmalloc --workload-args '--iters 2000000' \
	    --bench-dir $(abs_top_builddir)/bench --lib $(abs_top_builddir)/src/.libs/libhakmem.so \
	    --out $(HK_HEADROOM_DIR)/instructions-mixed-1 > $(HK_HEADROOM_DIR)/instructions-mixed-1.log 2>&1 || st=1; \
	else echo "headroom: valgrind is not installed: no instruction bound"; fi; \
	test $$st = 0 || echo "headroom: a run failed (see $(HK_HEADROOM_DIR)/*.log)"; \
	$(PYTHON3) $(srcdir)/papers/gen_headroom.py $(HK_HEADROOM_DIR) $(srcdir)/papers

# make burst: papers/burst.md, how much of a 256 MiB burst each allocator
# gives back once the program slows to 0, 10 or 100 allocations a second,
# the blocks freed by another thread or by their owner (hakmem-bench burst,
# 10 s a run, 3 interleaved runs: about 17 minutes).
HK_BURST_DIR = results/burst-latest
burst: all
	@rm -rf $(HK_BURST_DIR); $(MKDIR_P) $(HK_BURST_DIR); st=0; \
	bench/hakmem-bench burst --runs 3 --out $(HK_BURST_DIR) \
	  --bench-dir $(abs_top_builddir)/bench --lib $(abs_top_builddir)/src/.libs/libhakmem.so \
	  > $(HK_BURST_DIR)/burst.log 2>&1 || st=1; \
	test $$st = 0 || echo "burst: a run failed (see $(HK_BURST_DIR)/burst.log)"; \
	$(PYTHON3) $(srcdir)/papers/gen_burst.py $(HK_BURST_DIR) $(srcdir)/papers

# make programs: papers/programs.md, the CPU time and peak RSS of real
# programs (Python, Perl, Ruby, Tcl, SQLite, sort, g++, git, xz, zstd,
# pigz; those installed) under each allocator (hakmem-bench programs,
# 5 interleaved runs: about 12 minutes).
HK_PROGRAMS_DIR = results/programs-latest
programs: all
	@rm -rf $(HK_PROGRAMS_DIR); $(MKDIR_P) $(HK_PROGRAMS_DIR); st=0; \
	bench/hakmem-bench programs --runs 5 --out $(HK_PROGRAMS_DIR) \
	  --lib $(abs_top_builddir)/src/.libs/libhakmem.so \
	  > $(HK_PROGRAMS_DIR)/programs.log 2>&1 || st=1; \
	test $$st = 0 || echo "programs: a run failed (see $(HK_PROGRAMS_DIR)/programs.log)"; \
	$(PYTHON3) $(srcdir)/papers/gen_programs.py $(HK_PROGRAMS_DIR) $(srcdir)/papers

.PHONY: sweep paper headroom burst programs
