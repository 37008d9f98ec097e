/* ThreadSanitizer support, force-included (-include) into every unit of a
 * --enable-tsan build.  TSan cannot see ck_pr's inline assembly or its
 * volatile loads and stores as atomics, so every lock-free hand-off would be
 * reported as a race.  After <ck_pr.h> is read, the ck_pr operations that
 * hakmem and <ck_stack.h> use are redefined as the compiler's __atomic
 * builtins, which TSan instruments: loads acquire, stores release, read-
 * modify-writes sequentially consistent.  That is at least as strong as
 * what the code relies on, so standalone fences add nothing to TSan's model. */
#ifndef HK_TSAN_H
#define HK_TSAN_H

/* Read before any unit's own code: the units that ask for GNU extensions
 * (os.c: mremap) would be too late once <ck_pr.h> has set up the C
 * library's feature macros. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <ck_pr.h>

#undef ck_pr_load_ptr
#undef ck_pr_load_64
#undef ck_pr_load_32
#undef ck_pr_load_8
#undef ck_pr_load_uint
#undef ck_pr_load_int
#undef ck_pr_store_ptr
#undef ck_pr_store_64
#undef ck_pr_store_32
#undef ck_pr_store_8
#undef ck_pr_store_uint
#undef ck_pr_store_int

#define HK_TSAN_LOAD(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define HK_TSAN_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ck_pr_load_ptr(p)   ((__typeof__(*(p)))HK_TSAN_LOAD((void *const *)(p)))
#define ck_pr_load_64(p)    HK_TSAN_LOAD(p)
#define ck_pr_load_32(p)    HK_TSAN_LOAD(p)
#define ck_pr_load_8(p)     HK_TSAN_LOAD(p)
#define ck_pr_load_uint(p)  HK_TSAN_LOAD(p)
#define ck_pr_load_int(p)   HK_TSAN_LOAD(p)
#define ck_pr_store_ptr(p, v) HK_TSAN_STORE((void **)(p), (void *)(v))
#define ck_pr_store_64(p, v)  HK_TSAN_STORE(p, v)
#define ck_pr_store_32(p, v)  HK_TSAN_STORE(p, v)
#define ck_pr_store_8(p, v)   HK_TSAN_STORE(p, v)
#define ck_pr_store_uint(p, v) HK_TSAN_STORE(p, v)
#define ck_pr_store_int(p, v) HK_TSAN_STORE(p, v)

#define HK_SC __ATOMIC_SEQ_CST
#define ck_pr_cas_ptr(t, c, s) \
    ({ void *hk_c_ = (void *)(c); __atomic_compare_exchange_n((void **)(t), &hk_c_, (void *)(s), false, HK_SC, HK_SC); })
#define ck_pr_cas_ptr_value(t, c, s, v) \
    ({ void *hk_c_ = (void *)(c); bool hk_r_ = __atomic_compare_exchange_n((void **)(t), &hk_c_, (void *)(s), false, HK_SC, HK_SC); \
       *(void **)(v) = hk_c_; hk_r_; })
#define ck_pr_cas_64(t, c, s) \
    ({ uint64_t hk_c_ = (c); __atomic_compare_exchange_n((t), &hk_c_, (s), false, HK_SC, HK_SC); })
#define ck_pr_cas_64_value(t, c, s, v) \
    ({ uint64_t hk_c_ = (c); bool hk_r_ = __atomic_compare_exchange_n((t), &hk_c_, (s), false, HK_SC, HK_SC); \
       *(v) = hk_c_; hk_r_; })
#define ck_pr_cas_32(t, c, s) \
    ({ uint32_t hk_c_ = (c); __atomic_compare_exchange_n((t), &hk_c_, (s), false, HK_SC, HK_SC); })
#define ck_pr_cas_uint(t, c, s) \
    ({ unsigned hk_c_ = (c); __atomic_compare_exchange_n((t), &hk_c_, (s), false, HK_SC, HK_SC); })
/* The double-width CAS behind ck_stack_pop_mpmc's generation counter. */
#define ck_pr_cas_ptr_2_value(t, c, s, v) \
    ({ unsigned __int128 hk_c_ = *(unsigned __int128 *)(c); \
       bool hk_r_ = __atomic_compare_exchange_n((unsigned __int128 *)(t), &hk_c_, *(unsigned __int128 *)(s), false, HK_SC, HK_SC); \
       *(unsigned __int128 *)(v) = hk_c_; hk_r_; })
#define ck_pr_fas_ptr(t, v)  __atomic_exchange_n((void **)(t), (void *)(v), HK_SC)
#define ck_pr_faa_64(t, d)   __atomic_fetch_add((t), (d), HK_SC)
#define ck_pr_faa_uint(t, d) __atomic_fetch_add((t), (d), HK_SC)
#define ck_pr_add_64(t, d)   ((void)__atomic_fetch_add((t), (d), HK_SC))
#define ck_pr_sub_64(t, d)   ((void)__atomic_fetch_sub((t), (d), HK_SC))
#define ck_pr_inc_64(t)      ((void)__atomic_fetch_add((t), 1, HK_SC))
#define ck_pr_dec_64(t)      ((void)__atomic_fetch_sub((t), 1, HK_SC))
#define ck_pr_fence_load()         __atomic_thread_fence(HK_SC)
#define ck_pr_fence_store()        __atomic_thread_fence(HK_SC)
#define ck_pr_fence_acquire()      __atomic_thread_fence(HK_SC)
#define ck_pr_fence_release()      __atomic_thread_fence(HK_SC)
#define ck_pr_fence_memory()       __atomic_thread_fence(HK_SC)
#define ck_pr_fence_store_atomic() __atomic_thread_fence(HK_SC)

/* ck_stack_pop_mpmc reads the link of the head it loaded with a plain load,
 * while other threads may pop that entry and push it again, rewriting the
 * link (ck_stack_push_upmc, also plain).  A race by the letter of C11 that
 * the pop's generation counter makes harmless: its double-width CAS fails
 * on a head popped meanwhile, so a stale link is never installed, and the
 * entries (heaps, SuperSlab headers) are never unmapped.  TSan sees only
 * the two plain accesses and reported them on the first run of
 * tests/lifecycle: each entry's link is declared a benign race to it
 * (TSan's dynamic annotation, by address: races on anything else in the
 * entry are still reported), before the entry first goes on a stack. */
void AnnotateBenignRaceSized(const char *file, int line, const volatile void *mem, unsigned long size,
                             const char *desc);
#define HK_TSAN_STACK_ENTRY(e) \
    AnnotateBenignRaceSized(__FILE__, __LINE__, &(e)->next, sizeof((e)->next), "ck_stack link (generation-counted pop)")

#endif
