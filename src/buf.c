/* The snprintf-style text writer (see hk_buf.h). */
#include "hk_buf.h"
#include "hk_error.h"
#include <string.h>

void hk_buf_str(struct hk_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len < b->cap) {
        size_t room = b->cap - b->len;
        memcpy(b->p + b->len, s, n < room ? n : room);
    }
    b->len += n;
}

void hk_buf_u64(struct hk_buf *b, uint64_t v)
{
    char tmp[24];
    hk_utoa(tmp, v);
    hk_buf_str(b, tmp);
}

void hk_buf_i64(struct hk_buf *b, int64_t v)
{
    if (v < 0) {
        hk_buf_str(b, "-");
        v = -v;
    }
    hk_buf_u64(b, (uint64_t)v);
}

size_t hk_buf_finish(struct hk_buf *b)
{
    if (b->cap > 0)
        b->p[b->len < b->cap ? b->len : b->cap - 1] = '\0';
    return b->len;
}

void hk_buf_write(const struct hk_buf *b, int fd)
{
    size_t n = b->len < b->cap ? b->len : (b->cap ? b->cap - 1 : 0);
    hk_write_all(fd, b->p, n);
}
