/* hakmem: a multi-threaded, NUMA-aware scaling allocator.
 *
 * Programs that preload libhakmem.so (or link it) get the whole malloc family
 * from hakmem.  The hak_-prefixed entry points below are the same functions
 * under their own names, for programs that link hakmem beside another malloc. */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1

/* The library is built with hidden visibility: what this header declares is
 * what libhakmem.so exports. */
#if defined(__GNUC__)
#define HAK_API __attribute__((visibility("default")))
#else
#define HAK_API
#endif

HAK_API void *hak_malloc(size_t size);
HAK_API void  hak_free(void *ptr);
HAK_API void *hak_calloc(size_t n, size_t size);
HAK_API void *hak_realloc(void *ptr, size_t size);
HAK_API void *hak_reallocarray(void *ptr, size_t n, size_t size);
HAK_API int   hak_posix_memalign(void **out, size_t alignment, size_t size);
HAK_API void *hak_aligned_alloc(size_t alignment, size_t size);
HAK_API void *hak_memalign(size_t alignment, size_t size);
HAK_API void *hak_valloc(size_t size);
HAK_API void *hak_pvalloc(size_t size);
HAK_API size_t hak_malloc_usable_size(const void *ptr);
HAK_API void  hak_free_sized(void *ptr, size_t size);
HAK_API void  hak_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* Statistics as one JSON object, written like snprintf: returns the length
 * the whole object needs (excluding the NUL); writes at most len bytes. */
HAK_API size_t hak_stats_json(char *buf, size_t len);
/* The human-readable summary HAKMEM_STATS=1 prints at exit, to stderr. */
HAK_API void hak_stats_print(void);

/* The size-class table, for tools and tests. */
HAK_API unsigned hak_size_class_count(void);
HAK_API size_t hak_size_class_size(unsigned cls);  /* 0 when cls is out of range */

/* Hand back the calling thread's cached free memory now (as at thread exit,
 * without ending the heap), collect the heaps of exited threads that no
 * thread has adopted yet, and unmap the cache of freed large blocks.  With
 * the malloc family overridden, glibc's malloc_trim does the same. */
HAK_API void hak_collect(void);

#ifdef __cplusplus
}
#endif
#endif
