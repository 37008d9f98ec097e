/* The API fuzzer's checks of hak_stats_json: snprintf's contract on small
 * buffers, one well-formed object in a large one, and at the end of each
 * input the counters of an allocator with nothing allocated. */
#include "fuzz.h"
#include "hakmem.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char json_head[] = "{\"hakmem\":";

/* One object: braces and brackets balance outside strings and close at the end. */
static void json_shape(const char *s, size_t n)
{
    int depth = 0;
    bool str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (str) {
            str = ch != '"';
        } else if (ch == '"') {
            str = true;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (--depth < 0 || (depth == 0 && i != n - 1))
                fz_fail("stats JSON: unbalanced at offset %zu: %s", i, s);
        }
    }
    if (depth != 0 || str)
        fz_fail("stats JSON: not one closed object: %s", s);
    static const char *const keys[] = { "\"malloc\":", "\"free\":", "\"bytes_in_use\":", "\"nodes\":[" };
    for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strstr(s, keys[i]) == NULL)
            fz_fail("stats JSON: no %s in %s", keys[i], s);
}

void fz_stats(struct fz_thread *t, unsigned aux)
{
    unsigned char small[48];
    size_t len = aux % 41, head = sizeof json_head - 1;
    memset(small, 0xa5, sizeof small);
    size_t n = hak_stats_json(len ? (char *)small : NULL, len);
    if (n < head)
        fz_fail("hak_stats_json(%zu) = %zu: shorter than its head", len, n);
    if (len > 0) {
        size_t end = n < len - 1 ? n : len - 1;
        if (small[end] != '\0' || memchr(small, '\0', end) != NULL)
            fz_fail("hak_stats_json(buf, %zu) = %zu: the NUL is not at %zu", len, n, end);
        if (memcmp(small, json_head, end < head ? end : head) != 0)
            fz_fail("hak_stats_json(buf, %zu): wrong head %.*s", len, (int)end, (char *)small);
    }
    for (size_t i = len; i < sizeof small; i++)
        if (small[i] != 0xa5)
            fz_fail("hak_stats_json(buf, %zu) wrote byte %zu", len, i);

    size_t cap = sizeof t->json - 8;
    memset(t->json + cap, 0xa5, 8);
    n = hak_stats_json(t->json, cap);
    for (size_t i = cap; i < sizeof t->json; i++)
        if ((unsigned char)t->json[i] != 0xa5)
            fz_fail("hak_stats_json(buf, %zu) wrote byte %zu", cap, i);
    if (n < cap) {
        if (strlen(t->json) != n || memcmp(t->json, json_head, head) != 0)
            fz_fail("hak_stats_json(buf, %zu) = %zu for \"%s\"", cap, n, t->json);
        json_shape(t->json, n);
    }
}

static long long counter(const char *json, const char *key)
{
    const char *s = strstr(json, key);
    if (s == NULL)
        fz_fail("stats JSON: no %s in %s", key, json);
    return strtoll(s + strlen(key), NULL, 10);
}

void fz_check_idle(struct fz_thread *t)
{
    fz_stats(t, 0);
    long long m = counter(t->json, "\"malloc\":"), f = counter(t->json, "\"free\":");
    if (m >= 0 && f >= 0 && m != f)
        fz_fail("every block is freed, yet the stats count %lld mallocs and %lld frees: %s", m, f, t->json);
    long long used = counter(t->json, "\"bytes_in_use\":");
    if (used != 0)
        fz_fail("every block is freed and every heap collected, yet %lld bytes are in use: %s", used,
                t->json);
}
