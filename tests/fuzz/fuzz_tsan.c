/* Linked into the ThreadSanitizer build of the API fuzzer only (fuzz.mk).
 * libFuzzer's coverage counters are plain byte increments, which clang 14's
 * TSan instruments: with the fuzzer's threads in the same code, every
 * counter is reported as a race in hakmem's frames, where a suppression
 * would hide hakmem's own races too (and libFuzzer 14 takes no other kind
 * of coverage).  The counters' section is declared a benign race instead,
 * by address, so that races on anything else are still reported. */
void AnnotateBenignRaceSized(const char *file, int line, const volatile void *mem, unsigned long size,
                             const char *desc);

/* The linker's bounds of the counters' section. */
extern unsigned char __start___sancov_cntrs[], __stop___sancov_cntrs[];

/* Not instrumented for coverage: the instrumentation would declare the
 * bounds itself, under new names beside these, and register no counters. */
__attribute__((constructor, no_sanitize("coverage"))) static void fz_tsan_counters(void)
{
    AnnotateBenignRaceSized(__FILE__, __LINE__, __start___sancov_cntrs,
                            (unsigned long)(__stop___sancov_cntrs - __start___sancov_cntrs),
                            "libFuzzer's coverage counters");
}
