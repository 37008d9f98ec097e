/* Text building for the NUMA layer's messages and statistics: no stdio, no
 * allocation, because they run inside the allocator (at init, at exit). */
#include <errno.h>
#include <unistd.h>

#include "hk_numa_int.h"

static void put(struct hk_fmt *f, char c)
{
    /* Keep the last byte for the NUL, count everything (snprintf contract). */
    if (f->len + 1 < f->cap)
        f->buf[f->len] = c;
    f->len++;
}

void hk_fmt_str(struct hk_fmt *f, const char *s)
{
    while (*s)
        put(f, *s++);
}

void hk_fmt_u64(struct hk_fmt *f, uint64_t v)
{
    char digits[20];
    int n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        put(f, digits[--n]);
}

size_t hk_fmt_end(struct hk_fmt *f)
{
    if (f->cap)
        f->buf[f->len < f->cap ? f->len : f->cap - 1] = '\0';
    return f->len;
}

void hk_fmt_write(const struct hk_fmt *f, int fd)
{
    size_t n = f->len < f->cap ? f->len : (f->cap ? f->cap - 1 : 0);
    const char *p = f->buf;

    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;  /* nowhere to report a failing stderr */
        p += w;
        n -= (size_t)w;
    }
}
