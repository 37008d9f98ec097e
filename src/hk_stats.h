/* Statistics reports: JSON (hak_stats_json, HAKMEM_STATS=json) and a human
 * summary (HAKMEM_STATS=1), both built without allocating. */
#ifndef HK_STATS_H
#define HK_STATS_H

#include "hk_config.h"

/* Keep a descriptor for the exit report (once options are read). */
void hk_stats_init(void);
/* Bytes of slabs and large blocks in use ("bytes_in_use"; racy sum). */
uint64_t hk_stats_bytes_in_use(void);

#endif
