/* Build-wide constants and compiler helpers.  Every layer includes this first. */
#ifndef HK_CONFIG_H
#define HK_CONFIG_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define hk_likely(x)   __builtin_expect(!!(x), 1)
#define hk_unlikely(x) __builtin_expect(!!(x), 0)
#define hk_noinline    __attribute__((noinline))
#define hk_cold        __attribute__((cold, noinline))
#define HK_LINE        64u  /* cache line bytes */
#define hk_line_aligned __attribute__((aligned(HK_LINE)))
#define hk_inline      static inline __attribute__((always_inline))
#define hk_hidden      __attribute__((visibility("hidden")))
#define hk_public      __attribute__((visibility("default")))

/* Fetch p's line for writing; p may be anything, NULL too (a prefetch never
 * faults).  x86-64: PREFETCHW, which gcc emits only with -mprfchw; it
 * takes the line exclusive, so the write that follows needs no second
 * transaction.  x86-64 processors older than it run it as a NOP.  Used
 * off the fast paths only (free.c: the inbox walk): on the malloc pop it
 * cost mixed and 1-thread ring 2-4% and gained 3-6% only at 8 threads. */
#if defined(__x86_64__)
#define hk_prefetch_w(p) __asm__ volatile("prefetchw (%0)" : : "r"(p))  /* "r": p may be NULL */
#else
#define hk_prefetch_w(p) __builtin_prefetch((p), 1)
#endif

/* A ThreadSanitizer build: gcc says so with __SANITIZE_THREAD__, clang 14
 * only through __has_feature (a clang TSan build took the plain statistics
 * increments and reported every one of them against the readers). */
#if defined(__SANITIZE_THREAD__)
#define HK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HK_TSAN 1
#endif
#endif
#ifndef HK_TSAN
#define HK_TSAN 0
#endif

/* A ck_stack entry about to be used: declared to TSan (hk_tsan.h). */
#ifndef HK_TSAN_STACK_ENTRY
#define HK_TSAN_STACK_ENTRY(e) ((void)0)
#endif

#if defined(HK_DEBUG) && HK_DEBUG
#include <assert.h>
#define hk_assert(x) assert(x)
#else
#define hk_assert(x) ((void)0)
#endif

/* Geometry.  A SuperSlab is a naturally aligned 2 MiB region: masking a
 * pointer finds its header.  It is cut into 64 KiB units; a slab is a run of
 * units serving one size class.  Unit 0 starts with the header. */
#define HK_SS_SHIFT     21
#define HK_SS_SIZE      ((size_t)1 << HK_SS_SHIFT)
#define HK_SS_MASK      (HK_SS_SIZE - 1)
#define HK_UNIT_SHIFT   16
#define HK_UNIT_SIZE    ((size_t)1 << HK_UNIT_SHIFT)
#define HK_UNITS        (HK_SS_SIZE / HK_UNIT_SIZE)       /* 32 */
#define HK_SS_HDR_SIZE  ((size_t)8192)                    /* header area of unit 0 */
#define HK_PAGE_SIZE    ((size_t)4096)

/* Size classes: 8, then multiples of 16 (every block from 16 B up is
 * 16-aligned, see hk_sizeclass.h) up to 128, then 8 classes per doubling up
 * to 32 KiB, then 4 per doubling up to 128 KiB (the medium classes).
 * Medium blocks are whole pages on slabs that start on a page (no
 * colouring): every one is page-aligned, so valloc and page-aligned
 * requests of those sizes take one without rounding up.  Above
 * HK_SMALL_MAX, up to HK_UNIT_BLOCK_MAX, a block is a run of whole units
 * alone on its slab (a unit block: no class, its units back to the
 * SuperSlab when it is freed), as mimalloc's large pages and jemalloc's
 * large extents come from their segments and arenas; only larger ones
 * are mappings of their own. */
#define HK_CLASSES      80
#define HK_SMALL_MAX    ((size_t)131072)
#define HK_MEDIUM_MIN   ((size_t)32769)                   /* smallest request of a medium class */
#define HK_UNIT_BLOCK_MAX ((size_t)(HK_UNITS - 1) << HK_UNIT_SHIFT)  /* 1984 KiB: every unit but unit 0 */
#define HK_CLASS_UNITS  HK_CLASSES                        /* the class field of a unit block's slab */
#define HK_LUT_MAX      ((size_t)1024)                    /* sizes served by the table lookup */
/* Every class up to HK_LUT_MAX is a multiple of 16 B, so the table and the
 * heap's direct[] take one entry per 16 bytes of request. */
#define HK_LUT_SHIFT    4
#define HK_LUT_CLASSES  32                                /* classes up to HK_LUT_MAX (tests/slab_check) */

/* Addresses we can own: the x86-64/AArch64 47-bit user space. */
#define HK_ADDR_BITS    47

#define HK_MAX_ALIGN_SMALL ((size_t)8192)  /* natural alignment of power-of-two slab blocks */

_Static_assert(HK_UNITS == 32, "the unit bitmap of a SuperSlab is a uint32_t");
_Static_assert((HK_SS_HDR_SIZE % HK_PAGE_SIZE) == 0, "slab areas start on a page");
_Static_assert(HK_SS_HDR_SIZE >= HK_MAX_ALIGN_SMALL, "unit-0 slabs keep the natural alignment");

/* Build variants.  Standard: owner-local counters (one increment, no
 * branch) and full pointer validation on free.  FAST: counters compiled out
 * and free checks only the map and the double-free key.  OBSERVE: counters
 * plus byte counts. */
#if defined(HK_FAST) && HK_FAST
#define HK_COUNTING 0
#define HK_VALIDATE 0
#else
#define HK_COUNTING 1
#define HK_VALIDATE 1
#endif
#if defined(HK_OBSERVE) && HK_OBSERVE
#define HK_COUNT_BYTES 1
#else
#define HK_COUNT_BYTES 0
#endif

#endif
