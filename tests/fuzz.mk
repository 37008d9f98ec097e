# The API fuzzer: a libFuzzer target that runs random programs over the whole
# hak_ API from three threads, with content checks (tests/fuzz/).  The
# library's sources are compiled into it, with coverage so that the fuzzer
# steers into the allocator, under ASan and UBSan, and without the malloc
# override so that the fuzzer's own malloc stays ASan's.
#
# make check: tests/fuzz/run-fuzz.sh builds it with this rule and runs it
# for 30 s from tests/fuzz/corpus (skipped without clang's libFuzzer).
# make fuzz-long [FUZZ_TIME=600]: a long run whose corpus is kept in
# tests/fuzz/long/corpus.
# make fuzz-tsan [FUZZ_TIME=600]: tests/fuzz/fuzz_api_tsan, the same under
# ThreadSanitizer instead (data races between the three threads), from
# tests/fuzz/corpus; make check-tsan runs it for a minute.
# Override the compiler with FUZZ_CC=clang-14.

FUZZ_CC = clang
FUZZ_TIME = 600
# pointer-overflow is off: libck's ck_stack_pop_mpmc adds one to a NULL
# generation pointer, which UBSan reports from hakmem's abandoned-heap stack.
FUZZ_SANITIZE = -fsanitize=fuzzer,address,undefined -fno-sanitize=pointer-overflow \
	-fno-sanitize-recover=undefined
# As --enable-tsan builds the library (configure.ac): the ck_pr operations as
# __atomic builtins TSan sees (src/hk_tsan.h); HK_TSAN follows from
# -fsanitize=thread.  fuzz_tsan.c declares libFuzzer's coverage counters a
# benign race; tests/fuzz/tsan.supp has what remains of libFuzzer's.
FUZZ_TSAN_SANITIZE = -fsanitize=fuzzer,thread -mcx16 -include $(top_srcdir)/src/hk_tsan.h
# HK_DEBUG=1: the library's own assertions serve as checks too.
FUZZ_CPPFLAGS = -DHAVE_CONFIG_H -DHK_NO_OVERRIDE -DHK_DEBUG=1 -I$(top_builddir) \
	-I$(top_srcdir)/src -I$(top_srcdir)/numa
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer -std=gnu11 $(AM_CFLAGS)
FUZZ_HARNESS = tests/fuzz/fuzz.h tests/fuzz/fuzz_api.c tests/fuzz/fuzz_ops.c tests/fuzz/fuzz_stats.c
FUZZ_FILES = $(HAKMEM_CORE_SOURCES) $(HAKMEM_NUMA_SOURCES) $(FUZZ_HARNESS)

TESTS += tests/fuzz/run-fuzz.sh
EXTRA_DIST += $(FUZZ_HARNESS) tests/fuzz/fuzz_tsan.c tests/fuzz/tsan.supp tests/fuzz/run-fuzz.sh \
	tests/fuzz/gen_corpus.py tests/fuzz/corpus
CLEANFILES += tests/fuzz/fuzz_api tests/fuzz/fuzz_api_tsan

# One clang command over $srcs and the C files of the library and the
# harness (the headers in the source lists are prerequisites only), with the
# sanitizer flags in $san.
FUZZ_LINK = for f in $(FUZZ_FILES); do \
	  case $$f in *.c) srcs="$$srcs $(srcdir)/$$f";; esac; \
	done; \
	$(FUZZ_CC) $$san $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) $(HK_LIB_CFLAGS) \
	  $(CK_CFLAGS) $(HWLOC_CFLAGS) -o $@ $$srcs $(CK_LIBS) $(HWLOC_LIBS)

tests/fuzz/fuzz_api: $(FUZZ_FILES) config.h hk_build.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)san='$(FUZZ_SANITIZE)' srcs=; $(FUZZ_LINK)

tests/fuzz/fuzz_api_tsan: $(FUZZ_FILES) tests/fuzz/fuzz_tsan.c config.h hk_build.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)san='$(FUZZ_TSAN_SANITIZE)' srcs=$(srcdir)/tests/fuzz/fuzz_tsan.c; $(FUZZ_LINK)

fuzz-long:
	top_builddir=$(abs_top_builddir) top_srcdir=$(abs_top_srcdir) MAKE='$(MAKE)' \
	FUZZ_CC='$(FUZZ_CC)' FUZZ_TIME='$(FUZZ_TIME)' FUZZ_DIR=tests/fuzz/long \
	$(SHELL) $(srcdir)/tests/fuzz/run-fuzz.sh

fuzz-tsan:
	top_builddir=$(abs_top_builddir) top_srcdir=$(abs_top_srcdir) MAKE='$(MAKE)' \
	FUZZ_CC='$(FUZZ_CC)' FUZZ_TIME='$(FUZZ_TIME)' FUZZ_SAN=tsan \
	$(SHELL) $(srcdir)/tests/fuzz/run-fuzz.sh

# The scratch directories of the runs (kept when a run fails).
clean-local: clean-fuzz
clean-fuzz:
	rm -rf tests/fuzz/run tests/fuzz/run-tsan tests/fuzz/long

.PHONY: fuzz-long fuzz-tsan clean-fuzz
