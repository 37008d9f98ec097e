/* Statistics reports: JSON (hak_stats_json, HAKMEM_STATS=json) and a human
 * summary (HAKMEM_STATS=1), both built without allocating. */
#ifndef HK_STATS_H
#define HK_STATS_H

#include "hk_config.h"

/* Keep a descriptor for the exit report (once options are read). */
void hk_stats_init(void);

#endif
