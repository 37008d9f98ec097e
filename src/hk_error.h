/* Error reporting without stdio (which may allocate through us). */
#ifndef HK_ERROR_H
#define HK_ERROR_H

#include "hk_config.h"

/* "hakmem: <fn>: <what> 0x<ptr>" on stderr, then abort(). */
__attribute__((noreturn)) hk_cold void hk_fatal_ptr(const char *fn, const char *what, const void *p);
/* "hakmem: <a><b><c><d>\n" on stderr in one write(2). */
hk_cold void hk_message(const char *a, const char *b, const char *c, const char *d);
hk_cold void hk_warn(const char *msg, const char *detail);
hk_cold void hk_warn2(const char *msg, const char *a, const char *b);

/* Small formatting helpers shared by the error and stats writers. */
size_t hk_utoa(char *out, uint64_t v);   /* decimal, returns length, out >= 21 bytes */
size_t hk_xtoa(char *out, uint64_t v);   /* lower-case hex without prefix, out >= 17 bytes */
void hk_write_all(int fd, const char *s, size_t n);

#endif
