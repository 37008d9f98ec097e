/* Messages go straight to fd 2 with write(2): stdio could allocate, and an
 * error path must work while the heap is inconsistent. */
#include "hk_error.h"
#include "hk_buf.h"
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>
#include <sys/syscall.h>

/* The raw system call: glibc's write is a cancellation point, and a thread
 * with a cancel pending unwound out of malloc_stats with the report's lock
 * held: every later report, the one at exit too, waited for good (helper
 * 59).  glibc's own malloc_stats writes with cancellation off. */
void hk_write_all(int fd, const char *s, size_t n)
{
    int saved = errno;
    while (n > 0) {
        ssize_t w = syscall(SYS_write, fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        s += w;
        n -= (size_t)w;
    }
    errno = saved;
}

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

/* One write(2) per message, so that messages of threads or processes
 * writing at once do not interleave mid-line. */
void hk_message(const char *a, const char *b, const char *c, const char *d)
{
    char text[512];
    struct hk_buf m = { text, sizeof text, 0 };
    hk_buf_str(&m, "hakmem: ");
    hk_buf_str(&m, a);
    hk_buf_str(&m, b);
    hk_buf_str(&m, c);
    hk_buf_str(&m, d);
    hk_buf_str(&m, "\n");
    hk_buf_write(&m, 2);
}

void hk_fatal_ptr(const char *fn, const char *what, const void *p)
{
    char hex[20] = " 0x";
    hk_xtoa(hex + 3, (uint64_t)(uintptr_t)p);
    hk_message(fn, ": ", what, hex);
    abort();
}

void hk_warn(const char *msg, const char *detail) { hk_message(msg, detail, "", ""); }

void hk_warn2(const char *msg, const char *a, const char *b) { hk_message(msg, a, "=", b); }
