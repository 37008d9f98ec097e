/* Compiled by gcc under preload.sh with and without hakmem preloaded: the
 * two objects and the two programs' outputs must be identical.  Enough C
 * (structs, recursion, inlining, loops worth vectorising) to keep the
 * optimiser's allocations busy. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char key[24];
    uint64_t value;
    struct entry *next;
};

#define BUCKETS 4099

static struct entry *table[BUCKETS];

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static void put(const char *key, uint64_t value)
{
    uint64_t b = hash(key) % BUCKETS;
    for (struct entry *e = table[b]; e; e = e->next)
        if (!strcmp(e->key, key)) {
            e->value += value;
            return;
        }
    struct entry *e = malloc(sizeof *e);
    if (!e)
        exit(1);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->value = value;
    e->next = table[b];
    table[b] = e;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static unsigned sieve(unsigned n)
{
    unsigned char *composite = calloc(n + 1, 1);
    unsigned count = 0;
    if (!composite)
        exit(1);
    for (unsigned i = 2; i <= n; i++) {
        if (composite[i])
            continue;
        count++;
        for (unsigned long j = (unsigned long)i * i; j <= n; j += i)
            composite[j] = 1;
    }
    free(composite);
    return count;
}

static uint64_t collatz_steps(uint64_t n)
{
    uint64_t steps = 0;
    while (n != 1) {
        n = n & 1 ? 3 * n + 1 : n / 2;
        steps++;
    }
    return steps;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static unsigned long ackermann(unsigned long m, unsigned long n)
{
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

int main(void)
{
    char key[24];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(key, sizeof key, "k%llu", (unsigned long long)(x % 50000));
        put(key, x & 0xffff);
    }
    uint64_t *values = malloc(BUCKETS * 64 * sizeof *values);
    size_t nvalues = 0;
    for (int b = 0; b < BUCKETS; b++)
        for (struct entry *e = table[b]; e && nvalues < BUCKETS * 64; e = e->next)
            values[nvalues++] = e->value;
    qsort(values, nvalues, sizeof *values, cmp_u64);
    uint64_t sum = 0;
    for (size_t i = 0; i < nvalues; i++)
        sum = sum * 31 + values[i];
    printf("entries %zu median %llu digest %llu\n", nvalues,
           (unsigned long long)values[nvalues / 2], (unsigned long long)sum);

    printf("primes below 2000000: %u\n", sieve(2000000));
    uint64_t best = 0, arg = 0;
    for (uint64_t n = 1; n < 300000; n++) {
        uint64_t s = collatz_steps(n);
        if (s > best)
            best = s, arg = n;
    }
    printf("longest collatz below 300000: %llu (%llu steps)\n", (unsigned long long)arg,
           (unsigned long long)best);

    enum { N = 1 << 16 };
    double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    if (!a || !b)
        return 1;
    for (int i = 0; i < N; i++)
        a[i] = i * 0.5, b[i] = (N - i) * 0.25;
    printf("dot %.1f\n", dot(a, b, N));
    printf("ackermann(2, 500) %lu\n", ackermann(2, 500));
    free(a);
    free(b);
    free(values);
    return 0;
}
