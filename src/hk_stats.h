/* Statistics reports: JSON (hak_stats_json, HAKMEM_STATS=json) and a human
 * summary (HAKMEM_STATS=1), both built without allocating. */
#ifndef HK_STATS_H
#define HK_STATS_H

#include "hk_config.h"

/* An snprintf-style writer: counts everything, stores what fits. */
struct hk_buf {
    char *p;
    size_t cap, len;
};
void hk_buf_str(struct hk_buf *b, const char *s);
void hk_buf_u64(struct hk_buf *b, uint64_t v);
void hk_buf_i64(struct hk_buf *b, int64_t v);
void hk_buf_finish(struct hk_buf *b);  /* NUL-terminate within cap */
/* Keep a descriptor for the exit report (once options are read). */
void hk_stats_init(void);

#endif
