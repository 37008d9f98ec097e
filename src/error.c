/* Messages go straight to fd 2 with write(2): stdio could allocate, and an
 * error path must work while the heap is inconsistent. */
#include "hk_error.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

void hk_write_all(int fd, const char *s, size_t n)
{
    int saved = errno;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        s += w;
        n -= (size_t)w;
    }
    errno = saved;
}

void hk_write_str(int fd, const char *s) { hk_write_all(fd, s, strlen(s)); }

size_t hk_utoa(char *out, uint64_t v)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

size_t hk_xtoa(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[17];
    size_t n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

void hk_fatal_ptr(const char *fn, const char *what, const void *p)
{
    char hex[17];
    hk_xtoa(hex, (uint64_t)(uintptr_t)p);
    hk_write_str(2, "hakmem: ");
    hk_write_str(2, fn);
    hk_write_str(2, ": ");
    hk_write_str(2, what);
    hk_write_str(2, " 0x");
    hk_write_str(2, hex);
    hk_write_str(2, "\n");
    abort();
}

void hk_warn(const char *msg, const char *detail)
{
    hk_write_str(2, "hakmem: ");
    hk_write_str(2, msg);
    hk_write_str(2, detail);
    hk_write_str(2, "\n");
}

void hk_warn2(const char *msg, const char *a, const char *b)
{
    hk_write_str(2, "hakmem: ");
    hk_write_str(2, msg);
    hk_write_str(2, a);
    hk_write_str(2, "=");
    hk_write_str(2, b);
    hk_write_str(2, "\n");
}
