/* Size classes: 16..128 B in steps of 16, then 8 classes per
 * doubling (at most 12.5% internal waste) up to 32 KiB, then 4 per doubling
 * (25%) up to 128 KiB, as jemalloc's and mimalloc's classes of those
 * sizes: a buffer grown by realloc is copied at every class it crosses, and
 * steps of 12.5% there cost 64 growing buffers 1.7x the time (README).
 * Medium blocks are whole pages, and carving touches only a block's first
 * page: the waste is address space until used.  Every class is a
 * multiple of 16, so its blocks are 16-aligned, as glibc's, jemalloc's,
 * tcmalloc's and mimalloc's are: compilers assume it of
 * operator new (clang stores with movaps into a new 40-byte object; with
 * 8-byte steps clang and rustc crashed under LD_PRELOAD).  Below 129 B the
 * steps of 16 waste up to 15 B, more than 12.5% of a 65..120 B request.
 * No class below 16 B: a free block needs its link and its double-free
 * key (hk_block), as glibc's smallest chunk does.
 * Requests up to 1 KiB map through a table; larger ones through a bit
 * scan. */
#ifndef HK_SIZECLASS_H
#define HK_SIZECLASS_H

#include "hk_config.h"

/* The entry of the size-class table and of a heap's direct[] serving a
 * request of `size` bytes (<= HK_LUT_MAX). */
hk_inline size_t hk_lut_index(size_t size)
{
    return (size + ((size_t)1 << HK_LUT_SHIFT) - 1) >> HK_LUT_SHIFT;
}

extern hk_hidden const uint8_t hk_class_lut[(HK_LUT_MAX >> HK_LUT_SHIFT) + 1];  /* by hk_lut_index */
extern hk_hidden const uint32_t hk_class_size[HK_CLASSES];
extern hk_hidden const uint8_t hk_class_units[HK_CLASSES];        /* 64 KiB units per slab */

#define HK_MEDIUM_FIRST 72u  /* the class of HK_MEDIUM_MIN (tests/slab_check) */

hk_inline unsigned hk_size_class(size_t size)
{
    if (hk_likely(size <= HK_LUT_MAX))
        return hk_class_lut[hk_lut_index(size)];
    size_t s = size - 1;
    unsigned b = 63u - (unsigned)__builtin_clzl(s);   /* b >= 10 here */
    if (hk_likely(size < HK_MEDIUM_MIN))
        return (b - 6u) * 8u + (unsigned)((s >> (b - 3u)) & 7u);  /* 1152 B: class 32 */
    return HK_MEDIUM_FIRST + (b - 15u) * 4u + (unsigned)((s >> (b - 2u)) & 3u);  /* b >= 15 */
}

#endif
