/* Text without stdio (which may allocate through us): an snprintf-style
 * writer that counts everything and stores what fits, shared by the error
 * messages, the statistics and the NUMA layer's reports. */
#ifndef HK_BUF_H
#define HK_BUF_H

#include <stddef.h>
#include <stdint.h>

struct hk_buf {
    char *p;
    size_t cap;  /* bytes of p, the NUL included */
    size_t len;  /* length the whole text needs, may exceed cap */
};

void hk_buf_str(struct hk_buf *b, const char *s);
void hk_buf_u64(struct hk_buf *b, uint64_t v);
void hk_buf_i64(struct hk_buf *b, int64_t v);
/* NUL-terminate (truncating within cap); returns the full length. */
size_t hk_buf_finish(struct hk_buf *b);
/* Write what fits to fd with write(2). */
void hk_buf_write(const struct hk_buf *b, int fd);

#endif
