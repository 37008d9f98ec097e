/* Options: one table of HAKMEM_* environment variables, read once at process
 * initialisation straight from environ (no getenv, no allocation). */
#ifndef HK_OPTIONS_H
#define HK_OPTIONS_H

#include "hk_config.h"

enum hk_stats_mode { HK_STATS_OFF = 0, HK_STATS_TEXT = 1, HK_STATS_JSON = 2 };

struct hk_options {
    long stats;             /* HAKMEM_STATS: 0, 1 (summary) or json */
    long decommit_delay_ms; /* HAKMEM_DECOMMIT_DELAY_MS: empty SuperSlabs wait this long before madvise */
    long heap_ss_cache;     /* HAKMEM_SS_CACHE: empty SuperSlabs a heap keeps committed */
    long large_cache_mb;    /* HAKMEM_LARGE_CACHE_MB: bytes of freed large mappings kept for reuse */
    long remote_batch;      /* HAKMEM_REMOTE_BATCH: remote frees a thread gathers per slab before one push */
    long remote_cache;      /* HAKMEM_REMOTE_CACHE: most blocks per class of other heaps' blocks a heap keeps for reuse */
    long rc_shared_lines;   /* HAKMEM_REMOTE_CACHE_SHARED_LINES: 1 also caches classes whose blocks share lines */
    const char *numa;       /* HAKMEM_NUMA: local | interleave | node:N | off */
    const char *topology;   /* HAKMEM_TOPOLOGY: hwloc XML file or synthetic description */
    const char *profile;    /* HAKMEM_PROFILE: a named preset applied before the variables */
};

extern hk_hidden struct hk_options hk_opt;

/* Fill hk_opt from the preset named by HAKMEM_PROFILE and then from the
 * variables.  Called once, single-threaded, from process initialisation. */
void hk_options_init(void);

/* The preset names, NULL-terminated, for tools. */
extern const char *const hk_profile_names[];

#endif
