/* The malloc family under its standard names, as aliases of the hak_ entry
 * points (one symbol, no extra call), for LD_PRELOAD and for linking.
 * Included at the end of api.c: an alias must name a function of its own
 * translation unit. */
#ifndef HK_OVERRIDE_H
#define HK_OVERRIDE_H

#define HK_ALIAS(fn) __attribute__((alias(#fn), visibility("default"), used))

void *malloc(size_t size) HK_ALIAS(hak_malloc);
void free(void *p) HK_ALIAS(hak_free);
void *calloc(size_t n, size_t size) HK_ALIAS(hak_calloc);
void *realloc(void *p, size_t size) HK_ALIAS(hak_realloc);
void *reallocarray(void *p, size_t n, size_t size) HK_ALIAS(hak_reallocarray);
int posix_memalign(void **out, size_t align, size_t size) HK_ALIAS(hak_posix_memalign);
void *aligned_alloc(size_t align, size_t size) HK_ALIAS(hak_aligned_alloc);
void *memalign(size_t align, size_t size) HK_ALIAS(hak_memalign);
void *valloc(size_t size) HK_ALIAS(hak_valloc);
void *pvalloc(size_t size) HK_ALIAS(hak_pvalloc);
size_t malloc_usable_size(void *p) HK_ALIAS(hak_malloc_usable_size);
void free_sized(void *p, size_t size) HK_ALIAS(hak_free_sized);
void free_aligned_sized(void *p, size_t align, size_t size) HK_ALIAS(hak_free_aligned_sized);

/* glibc's internal names of the same functions and the obsolete cfree, as
 * mimalloc and tcmalloc export them: a program or library that calls them
 * directly must not get glibc's allocator for our blocks (or ours for its). */
void *__libc_malloc(size_t size) HK_ALIAS(hak_malloc);
void __libc_free(void *p) HK_ALIAS(hak_free);
void *__libc_calloc(size_t n, size_t size) HK_ALIAS(hak_calloc);
void *__libc_realloc(void *p, size_t size) HK_ALIAS(hak_realloc);
void *__libc_memalign(size_t align, size_t size) HK_ALIAS(hak_memalign);
void *__libc_valloc(size_t size) HK_ALIAS(hak_valloc);
void *__libc_pvalloc(size_t size) HK_ALIAS(hak_pvalloc);
int __posix_memalign(void **out, size_t align, size_t size) HK_ALIAS(hak_posix_memalign);
void cfree(void *p) HK_ALIAS(hak_free);

#endif
