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

#endif
