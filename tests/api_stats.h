/* What tests/api_stats.c offers the other API tests. */
#ifndef HK_API_STATS_H
#define HK_API_STATS_H

/* A top-level counter of hak_stats_json now (the test fails if it is
 * missing or not an integer). */
long long api_stat(const char *key);

/* The OS calls counted so far: mmap + munmap + madvise. */
long long api_os_calls(void);

#endif
