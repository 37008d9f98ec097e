/* What tests/api_stats.c offers the other API tests. */
#ifndef HK_API_STATS_H
#define HK_API_STATS_H

#include <stdbool.h>
#include <stddef.h>

/* A top-level counter of hak_stats_json now (the test fails if it is
 * missing or not an integer). */
long long api_stat(const char *key);

/* The OS calls counted so far: mmap + munmap + madvise. */
long long api_os_calls(void);

/* `threads` threads each allocate `per` blocks of `size` bytes, write them
 * and exit; the caller frees them all (checking them), then, if `tick`,
 * allocates enough small blocks for a ticker pass.  Returns how much more
 * is committed than before the threads started; *live gets the same while
 * the blocks lived. */
long long api_exited_threads_blocks(int threads, int per, size_t size, bool tick, long long *live);

#endif
