/* Out of memory: when the kernel refuses memory (RLIMIT_AS, and
 * RLIMIT_MEMLOCK under mlockall), every allocation call returns NULL with
 * ENOMEM (posix_memalign returns it), nothing crashes, hangs or corrupts a
 * live block, a failed realloc keeps the old block, allocation works again
 * once memory is freed or the limit raised, and the statistics balance.
 * Each scenario runs in a child with a 15 s alarm; `tests/oom NAME nofork`
 * runs one in the process itself (for gdb).  Written by helper 25, who
 * found with it: freed large blocks kept cached while a new mapping was
 * refused, frees of threads without a heap not counted, and under
 * mlockall(MCL_FUTURE) SuperSlab chunks lost for good after a refused
 * commit and arenas that no limit below 66 MiB admits. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>
#include "hakmem.h"
#include "testutil.h"

static void say(const char *fmt, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof b - 1)
        n = sizeof b - 1;
    ssize_t w = write(2, b, (size_t)n);
    (void)w;
}

static int failures;
#define FAIL(...)                                                                                            \
    do {                                                                                                     \
        say("FAIL: " __VA_ARGS__);                                                                           \
        say("\n");                                                                                           \
        __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);                                                  \
    } while (0)

static long vm_kib(const char *key)
{
    static char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strstr(buf, key);
    return p ? strtol(p + strlen(key) + 1, NULL, 10) : -1;
}

/* RLIMIT_AS soft limit at the current VmSize + extra bytes (hard limit left as is). */
static void limit_as(size_t extra)
{
    struct rlimit r;
    getrlimit(RLIMIT_AS, &r);
    r.rlim_cur = (rlim_t)vm_kib("VmSize:") * 1024 + extra;
    if (setrlimit(RLIMIT_AS, &r) != 0)
        say("setrlimit: %s\n", strerror(errno));
}

static void unlimit_as(void)
{
    struct rlimit r;
    getrlimit(RLIMIT_AS, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_AS, &r);
}

/* Raw mappings that eat whatever address space is left under the limit. */
#define PAD_MAX 4096
static struct {
    void *p;
    size_t n;
} pad[PAD_MAX];
static int npad;
static size_t eat_address_space(void)
{
    size_t total = 0;
    for (size_t sz = (size_t)1 << 30; sz >= 4096; sz >>= 1) {
        while (npad < PAD_MAX) {
            void *p = mmap(NULL, sz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (p == MAP_FAILED)
                break;
            pad[npad].p = p;
            pad[npad++].n = sz;
            total += sz;
        }
    }
    return total;
}
static void release_pad(void)
{
    while (npad > 0) {
        npad--;
        munmap(pad[npad].p, pad[npad].n);
    }
}

/* Fill and check a block with a pattern derived from its address: every
 * word up to 64 KiB, then one word per 4 KiB page, plus the last word. */
static inline uint64_t pat(const void *p, size_t i)
{
    return ((uintptr_t)p * 0x9e3779b97f4a7c15ull) ^ (i * 0x100000001b3ull);
}
static void fill(void *p, size_t n)
{
    uint64_t *w = p;
    size_t words = n / 8, step = n <= 65536 ? 1 : 512;
    for (size_t i = 0; i < words; i += step)
        w[i] = pat(p, i);
    if (words)
        w[words - 1] = pat(p, words - 1);
    if (n < 8)
        memset(p, (int)((uintptr_t)p & 0xff), n);
}
static int check(const void *p, size_t n)
{
    const uint64_t *w = p;
    size_t words = n / 8, step = n <= 65536 ? 1 : 512;
    for (size_t i = 0; i < words; i += step)
        if (w[i] != pat(p, i))
            return 0;
    if (words && w[words - 1] != pat(p, words - 1))
        return 0;
    return 1;
}

/* The counts that must balance once every block is freed. */
static char statbuf[16384];
struct st {
    long long malloc, free, large_alloc, large_free;
};
static struct st stats(void)
{
    hak_stats_json(statbuf, sizeof statbuf);
    struct st s = {tu_json_field(statbuf, "malloc"), tu_json_field(statbuf, "free"),
                   tu_json_field(statbuf, "large_alloc"), tu_json_field(statbuf, "large_free")};
    return s;
}

/* Every block freed since s0: the counts are back where they were. */
static void stats_balanced(const char *what, struct st s0)
{
    struct st s1 = stats();
    if (s1.malloc - s1.free != s0.malloc - s0.free)
        FAIL("%s stats: malloc - free = %lld with every block freed (%lld at start)", what,
             s1.malloc - s1.free, s0.malloc - s0.free);
    if (s1.large_alloc - s1.large_free != s0.large_alloc - s0.large_free)
        FAIL("%s stats: large_alloc - large_free = %lld (%lld at start)", what,
             s1.large_alloc - s1.large_free, s0.large_alloc - s0.large_free);
}

/* Memory is back: each size allocates, holds its pattern, frees. */
static void alloc_again(const char *what, const size_t *sz, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        errno = 0;
        void *p = malloc(sz[i]);
        if (!p) {
            FAIL("%s: malloc(%zu) = NULL (errno %d) after memory came back", what, sz[i], errno);
            continue;
        }
        fill(p, sz[i]);
        if (!check(p, sz[i]))
            FAIL("%s: block of %zu B corrupted", what, sz[i]);
        free(p);
    }
}

/* ===== Scenario 1: main thread, every entry point, every kind of size ===== */
static const size_t SZ[] = {16,     24,     200,     1000,    4096,    40000,    131072,
                            131073, 300000, 1000000, 2031616, 2031617, 3u << 20, 9u << 20};
#define NSZ (sizeof SZ / sizeof SZ[0])
#define MAXB 100000
static struct {
    void *p;
    size_t n;
} B[MAXB];
static int nB;
static void keepb(void *p, size_t n)
{
    if (nB == MAXB) {
        free(p);
        return;
    }
    fill(p, n);
    B[nB].p = p;
    B[nB++].n = n;
}
static void freeb(void)
{
    for (int i = 0; i < nB; i++)
        if (B[i].p) {
            if (!check(B[i].p, B[i].n))
                FAIL("block %p (%zu B) corrupted", B[i].p, B[i].n);
            free(B[i].p);
            B[i].p = NULL;
        }
    nB = 0;
}
#define EXPECT_ENOMEM(what, n, p, e)                                                                         \
    do {                                                                                                     \
        if ((p) == NULL && (e) != ENOMEM)                                                                    \
            FAIL("%s(%zu) = NULL with errno %d, expected ENOMEM", what, (size_t)(n), e);                     \
    } while (0)
/* One call while memory may be short: NULL must come with ENOMEM; a block
 * returned is filled and kept. */
#define TRY(what, n, call)                                                                                   \
    do {                                                                                                     \
        errno = 0;                                                                                           \
        void *p_ = (call);                                                                                   \
        int e_ = errno;                                                                                      \
        EXPECT_ENOMEM(what, n, p_, e_);                                                                      \
        if (p_)                                                                                              \
            keepb(p_, n);                                                                                    \
    } while (0)
static int s_main(void)
{
    void *w = malloc(8);
    free(w);
    struct st s0 = stats();
    limit_as(64u << 20);
    for (int i = (int)NSZ - 1; i >= 0; i--)
        while (nB < MAXB) {
            errno = 0;
            void *p = malloc(SZ[i]);
            if (!p) {
                EXPECT_ENOMEM("malloc", SZ[i], p, errno);
                break;
            }
            keepb(p, SZ[i]);
        }
    eat_address_space();
    for (size_t i = 0; i < NSZ; i++) {
        size_t n = SZ[i];
        void *p;
        int e, rc;
        TRY("malloc", n, malloc(n));
        errno = 0;
        p = calloc(n, 1);
        e = errno;
        EXPECT_ENOMEM("calloc", n, p, e);
        if (p) {
            for (size_t j = 0; j < n; j += 97)
                if (((char *)p)[j]) {
                    FAIL("calloc(%zu) not zero", n);
                    break;
                }
            keepb(p, n);
        }
        TRY("realloc(NULL)", n, realloc(NULL, n));
        for (size_t al = 64; al <= (4u << 20); al <<= 3) {
            p = NULL;
            errno = 4321;
            rc = posix_memalign(&p, al, n);
            if (rc != 0 && (rc != ENOMEM || errno != 4321))
                FAIL("posix_memalign(%zu, %zu) = %d, errno %d", al, n, rc, errno);
            if (rc == 0)
                keepb(p, n);
            TRY("aligned_alloc", n, aligned_alloc(al, n));
            TRY("memalign", n, memalign(al, n));
        }
        TRY("valloc", n, valloc(n));
    }
    /* realloc growth of one block of each size: a failure keeps the block */
    static const size_t to[] = {131072, 1500000, 2031616, 64u << 20};
    for (int i = 0; i < nB; i++) {
        int first = 1;
        for (int j = 0; j < i && first; j++)
            first = B[j].n != B[i].n;
        if (!first)
            continue;
        for (size_t t = 0; t < 4; t++) {
            if (to[t] <= B[i].n)
                continue;
            errno = 0;
            void *q = realloc(B[i].p, to[t]);
            int e = errno;
            if (q == NULL) {
                EXPECT_ENOMEM("realloc(grow)", to[t], q, e);
                if (!check(B[i].p, B[i].n))
                    FAIL("failed realloc(%zu -> %zu) corrupted the old block", B[i].n, to[t]);
            } else {
                const uint64_t *wq = q;
                size_t step = B[i].n <= 65536 ? 1 : 512;
                for (size_t k = 0; k < B[i].n / 8; k += step)
                    if (wq[k] != pat(B[i].p, k)) {
                        FAIL("realloc(%zu -> %zu) lost contents", B[i].n, to[t]);
                        break;
                    }
                B[i].p = q;
                B[i].n = to[t];
                fill(q, to[t]);
                break;
            }
        }
    }
    release_pad();
    freeb();
    /* everything freed, limit kept: each kind must allocate again */
    for (size_t i = 0; i < NSZ; i++) {
        errno = 0;
        void *p = malloc(SZ[i]);
        if (!p)
            FAIL("everything freed (limit kept): malloc(%zu) = NULL, errno %d", SZ[i], errno);
        else
            keepb(p, SZ[i]);
    }
    freeb();
    unlimit_as();
    for (size_t i = 0; i < NSZ; i++) {
        void *p = malloc(SZ[i]);
        if (!p)
            FAIL("limit raised: malloc(%zu) = NULL", SZ[i]);
        else
            keepb(p, SZ[i]);
    }
    freeb();
    stats_balanced("main-thread", s0);
    return failures != 0;
}

/* ===== Scenario 2: freed large blocks must not keep a new mapping from being made ===== */
static int s_large_cache(void)
{
    void *w = malloc(8);
    free(w);
    limit_as(64u << 20);
    void *p[8];
    int n = 0;
    while (n < 8 && (p[n] = malloc(20u << 20)) != NULL) {
        fill(p[n], 20u << 20);
        n++;
    }
    for (int i = 0; i < n; i++) {
        if (!check(p[i], 20u << 20))
            FAIL("large block corrupted");
        free(p[i]);
    }
    errno = 0;
    void *q = malloc(40u << 20);
    if (q == NULL)
        FAIL("large-cache: all %d blocks of 20 MiB freed, yet malloc(40 MiB) = NULL (errno %d): the freed "
             "mappings stay cached",
             n, errno);
    free(q);
    return failures != 0;
}

/* ===== Scenario 3: threads started while no heap can be made ===== */
#define NS3 2000
static void *s3b[NS3];
static size_t s3n[NS3];
static void *s3unit, *s3large;
static volatile int s3phase;
static char s3stack[2][1 << 20] __attribute__((aligned(4096)));
static void *s3_free_only(void *a)
{
    (void)a;
    for (int i = 1; i < NS3; i += 2) {
        if (!check(s3b[i], s3n[i]))
            FAIL("U: block corrupted");
        free(s3b[i]);
        s3b[i] = NULL;
    }
    return NULL;
}
static void *s3_thread(void *a)
{
    (void)a;
    static const size_t sz[] = {16, 1000, 100000, 300000, 3u << 20};
    for (size_t i = 0; i < 5; i++) {
        errno = 0;
        void *p = malloc(sz[i]);
        int e = errno;
        EXPECT_ENOMEM("new thread: malloc", sz[i], p, e);
        free(p);
        p = NULL;
        errno = 7;
        int rc = posix_memalign(&p, 4096, sz[i]);
        if (rc != 0 && (rc != ENOMEM || errno != 7))
            FAIL("new thread: posix_memalign = %d errno %d", rc, errno);
        if (rc == 0)
            free(p);
    }
    for (int i = 0; i < NS3; i += 2) {
        if (!check(s3b[i], s3n[i]))
            FAIL("T: block corrupted");
        free(s3b[i]);
        s3b[i] = NULL;
    }
    if (!check(s3unit, 300000))
        FAIL("T: unit block corrupted");
    free(s3unit);
    if (!check(s3large, 3u << 20))
        FAIL("T: large block corrupted");
    free(s3large);
    __atomic_store_n(&s3phase, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&s3phase, __ATOMIC_SEQ_CST) != 2)
        usleep(1000);
    alloc_again("new thread", sz, 5);
    return NULL;
}
static int s_thread(void)
{
    void *w = malloc(8);
    free(w);
    struct st s0 = stats();
    for (int i = 0; i < NS3; i++) {
        s3n[i] = 16 + (size_t)i * 7 % 2000;
        s3b[i] = malloc(s3n[i]);
        fill(s3b[i], s3n[i]);
    }
    s3unit = malloc(300000);
    fill(s3unit, 300000);
    s3large = malloc(3u << 20);
    fill(s3large, 3u << 20);
    pthread_attr_t at[2];
    for (int i = 0; i < 2; i++) {
        pthread_attr_init(&at[i]);
        pthread_attr_setstack(&at[i], s3stack[i], sizeof s3stack[i]);
    }
    limit_as(8u << 20);
    eat_address_space();
    pthread_t t, u;
    if (pthread_create(&u, &at[1], s3_free_only, NULL) != 0) {
        FAIL("pthread_create while exhausted");
        return 1;
    }
    pthread_join(u, NULL);
    if (pthread_create(&t, &at[0], s3_thread, NULL) != 0) {
        FAIL("pthread_create while exhausted");
        return 1;
    }
    while (__atomic_load_n(&s3phase, __ATOMIC_SEQ_CST) != 1)
        usleep(1000);
    release_pad();
    unlimit_as();
    __atomic_store_n(&s3phase, 2, __ATOMIC_SEQ_CST);
    pthread_join(t, NULL);
    for (int i = 0; i < 300; i++) {
        void *p = malloc((size_t)i * 401 + 1);
        if (!p)
            FAIL("main: malloc after");
        free(p);
    }
    stats_balanced("heapless-thread", s0);
    return failures != 0;
}

/* ===== Scenario 4: remote frees while exhausted bring the owner's blocks home ===== */
#define NS4 20000
static void *s4b[NS4];
static volatile int s4phase;
static void *s4more[1500000];
static int s4nmore;
static void s4_wait(int ph)
{
    while (__atomic_load_n(&s4phase, __ATOMIC_SEQ_CST) < ph)
        usleep(500);
}
static void s4_set(int ph)
{
    __atomic_store_n(&s4phase, ph, __ATOMIC_SEQ_CST);
}
static void *s4_owner(void *a)
{
    (void)a;
    for (int i = 0; i < NS4; i++) {
        s4b[i] = malloc(48);
        fill(s4b[i], 48);
    }
    s4_set(1);
    s4_wait(2); /* exhausted now: use up what is left of our slabs */
    for (s4nmore = 0; s4nmore < 1500000; s4nmore++) {
        errno = 0;
        s4more[s4nmore] = malloc(48);
        if (!s4more[s4nmore]) {
            if (errno != ENOMEM)
                FAIL("owner: malloc(48) NULL errno %d", errno);
            break;
        }
        fill(s4more[s4nmore], 48);
    }
    say("remote-free: owner got %d more blocks before NULL\n", s4nmore);
    s4_set(3);
    s4_wait(4); /* another thread freed our NS4 blocks and exited: they are ours again */
    static void *again[NS4];
    int got = 0;
    for (; got < NS4; got++) {
        again[got] = malloc(48);
        if (!again[got])
            break;
        fill(again[got], 48);
    }
    if (got < NS4)
        FAIL("remote: only %d of the %d blocks another thread freed could be allocated again while exhausted",
             got, NS4);
    for (int i = 0; i < s4nmore; i++) {
        if (!check(s4more[i], 48))
            FAIL("owner: block corrupted");
        free(s4more[i]);
    }
    for (int i = 0; i < got; i++) {
        if (!check(again[i], 48))
            FAIL("owner: block corrupted");
        free(again[i]);
    }
    return NULL;
}
static void *s4_freer(void *a)
{
    (void)a;
    void *mine = malloc(48); /* a heap of our own, made before the exhaustion */
    s4_wait(3);
    for (int i = 0; i < NS4; i++) {
        if (!check(s4b[i], 48))
            FAIL("freer: block corrupted");
        free(s4b[i]);
    }
    free(mine);
    return NULL;
}
static int s_remote(void)
{
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 128 << 10);
    pthread_t o, f;
    pthread_create(&o, &at, s4_owner, NULL);
    pthread_create(&f, &at, s4_freer, NULL);
    s4_wait(1);
    usleep(20000);
    limit_as(4u << 20);
    eat_address_space();
    s4_set(2);
    s4_wait(3);
    pthread_join(f, NULL);
    s4_set(4);
    pthread_join(o, NULL);
    release_pad();
    unlimit_as();
    return failures != 0;
}

/* ===== Scenario 5: four threads, random sizes, blocks passed around, exhausted mid-run ===== */
#define NT 4
#define SLOTS 1500
#define MBOX 2048
struct blk {
    void *p;
    size_t n;
};
static struct blk live[NT][SLOTS];
static struct {
    pthread_mutex_t m;
    struct blk b[MBOX];
    int n;
} mbox[NT];
static volatile int s5phase;
static int s5done[8];
static long s5nulls;
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}
static size_t pick(uint64_t *s)
{
    unsigned r = (unsigned)(rnd(s) % 100);
    if (r < 60)
        return 16 + rnd(s) % 1009;
    if (r < 85)
        return 1024 + rnd(s) % (131072 - 1024);
    if (r < 95)
        return 131073 + rnd(s) % (2031616 - 131073);
    return 2031617 + rnd(s) % (6u << 20);
}
static void chkfree(struct blk *b)
{
    if (!check(b->p, b->n))
        FAIL("mt: block %p (%zu B) corrupted", b->p, b->n);
    free(b->p);
    b->p = NULL;
}
static void drain(int t)
{
    struct blk local[MBOX];
    pthread_mutex_lock(&mbox[t].m);
    int n = mbox[t].n;
    memcpy(local, mbox[t].b, (size_t)n * sizeof local[0]);
    mbox[t].n = 0;
    pthread_mutex_unlock(&mbox[t].m);
    for (int i = 0; i < n; i++)
        chkfree(&local[i]);
}
static void s5_barrier(int ph)
{
    __atomic_add_fetch(&s5done[ph], 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&s5phase, __ATOMIC_SEQ_CST) == ph)
        usleep(200);
}
static void *s5_worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1) ^ (uint64_t)getpid();
    struct blk *b = live[t];
    while (__atomic_load_n(&s5phase, __ATOMIC_SEQ_CST) <= 1) {
        drain(t);
        int i = (int)(rnd(&s) % SLOTS);
        unsigned act = (unsigned)(rnd(&s) % 8);
        if (b[i].p && act < 2) {
            int to = (t + 1) % NT;
            pthread_mutex_lock(&mbox[to].m);
            if (mbox[to].n < MBOX) {
                mbox[to].b[mbox[to].n++] = b[i];
                b[i].p = NULL;
            }
            pthread_mutex_unlock(&mbox[to].m);
        } else if (b[i].p && act == 2) {
            size_t n2 = pick(&s);
            errno = 0;
            void *q = realloc(b[i].p, n2);
            if (!q) {
                if (errno != ENOMEM)
                    FAIL("mt: realloc NULL errno %d", errno);
                if (!check(b[i].p, b[i].n))
                    FAIL("mt: failed realloc corrupted the old block");
            } else {
                size_t m = n2 < b[i].n ? n2 : b[i].n, step = b[i].n <= 65536 ? 1 : 512;
                for (size_t k = 0; k < m / 8; k += step)
                    if (((uint64_t *)q)[k] != pat(b[i].p, k)) {
                        FAIL("mt: realloc lost contents");
                        break;
                    }
                b[i].p = q;
                b[i].n = n2;
                fill(q, n2);
            }
            continue;
        } else if (b[i].p) {
            chkfree(&b[i]);
        }
        if (!b[i].p) {
            size_t n = pick(&s);
            void *p = NULL;
            unsigned how = (unsigned)(rnd(&s) % 4);
            errno = 0;
            if (how == 0)
                p = calloc(1, n);
            else if (how == 1) {
                errno = 99;
                if (posix_memalign(&p, (size_t)64 << (rnd(&s) % 12), n) != 0) {
                    if (errno != 99)
                        FAIL("mt: posix_memalign set errno");
                    p = NULL;
                    errno = ENOMEM;
                }
            } else if (how == 2)
                p = aligned_alloc((size_t)16 << (rnd(&s) % 12), n);
            else
                p = malloc(n);
            if (!p) {
                if (errno != ENOMEM)
                    FAIL("mt: allocation NULL with errno %d", errno);
                __atomic_add_fetch(&s5nulls, 1, __ATOMIC_RELAXED);
            } else {
                if (how == 0)
                    for (size_t k = 0; k < n; k += 4093)
                        if (((char *)p)[k]) {
                            FAIL("mt: calloc not zero");
                            break;
                        }
                fill(p, n);
                b[i].p = p;
                b[i].n = n;
            }
        }
    }
    for (int i = 0; i < SLOTS; i++)
        if (b[i].p)
            chkfree(&b[i]);
    s5_barrier(2);
    drain(t);
    s5_barrier(3);
    static const size_t sz[] = {16, 100, 1024, 5000, 131072, 300000, 2031616, 3u << 20};
    for (int r = 0; r < 3; r++)
        alloc_again("mt", sz, 8);
    return NULL;
}
static void s5_wait(int ph)
{
    while (__atomic_load_n(&s5done[ph], __ATOMIC_SEQ_CST) < NT)
        usleep(500);
}
static void *idle(void *a)
{
    void *p = malloc(10);
    free(p);
    return a;
}
static int s_mt(void)
{
    pthread_t th[NT];
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 << 10);
    for (int t = 0; t < NT; t++)
        pthread_create(&th[t], &a, idle, NULL); /* glibc keeps DTVs of cached stacks */
    for (int t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    struct st s0 = stats();
    for (int t = 0; t < NT; t++)
        pthread_mutex_init(&mbox[t].m, NULL);
    for (int t = 0; t < NT; t++)
        pthread_create(&th[t], &a, s5_worker, (void *)(intptr_t)t);
    usleep(100000);
    limit_as(64u << 20);
    s5phase = 1;
    usleep(1500000);
    __atomic_store_n(&s5phase, 2, __ATOMIC_SEQ_CST);
    s5_wait(2);
    unlimit_as();
    __atomic_store_n(&s5phase, 3, __ATOMIC_SEQ_CST);
    s5_wait(3);
    __atomic_store_n(&s5phase, 4, __ATOMIC_SEQ_CST);
    for (int t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    if (s5nulls == 0)
        FAIL("mt: memory was never exhausted (test setup)");
    stats_balanced("mt", s0);
    return failures != 0;
}

/* ===== Scenario 6: mlockall(MCL_FUTURE) with RLIMIT_MEMLOCK at 0, then raised ===== */
static int s_mlock(void)
{
    void *w = malloc(16);
    free(w);
    /* root's CAP_IPC_LOCK ignores the limit: run as nobody */
    if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)) {
        say("mlock: SKIP: cannot drop root privileges (%s)\n", strerror(errno));
        return 0;
    }
    struct rlimit r;
    getrlimit(RLIMIT_MEMLOCK, &r);
    if (r.rlim_max < (4u << 20) || mlockall(MCL_FUTURE) != 0) {
        say("mlock: SKIP: RLIMIT_MEMLOCK hard limit %lu KiB, or mlockall refused (%s)\n",
            (unsigned long)(r.rlim_max >> 10), strerror(errno));
        return 0;
    }
    struct rlimit zero = {0, r.rlim_max};
    setrlimit(RLIMIT_MEMLOCK, &zero);
    for (int i = 0; i < 40; i++) {
        errno = 0;
        void *p = malloc(2031616);
        if (p == NULL && errno != ENOMEM)
            FAIL("mlock: malloc(2031616) = NULL with errno %d, expected ENOMEM", errno);
        free(p);
    }
    struct rlimit some = {r.rlim_max < (8u << 20) ? r.rlim_max : (8u << 20), r.rlim_max};
    setrlimit(RLIMIT_MEMLOCK, &some);
    /* Before the fix, a refused commit had lost the SuperSlab arena for good. */
    static const size_t sz[] = {2031616, 100000, 48};
    alloc_again("mlock: limit raised", sz, 3);
    return failures != 0;
}

/* ===== runner: each scenario in a child, with a time limit ===== */
static const struct {
    const char *name;
    int (*fn)(void);
} scen[] = {
    {"main-thread", s_main},       {"large-cache", s_large_cache},
    {"heapless-thread", s_thread}, {"remote-free", s_remote},
    {"mt-random", s_mt},           {"mlock", s_mlock},
};
int main(int argc, char **argv)
{
#ifdef HK_NO_OVERRIDE
    puts("oom: SKIP: sanitizer build, malloc is not hakmem's (HK_NO_OVERRIDE)");
    return 77;
#endif
    int bad = 0;
    for (size_t i = 0; i < sizeof scen / sizeof scen[0]; i++) {
        if (argc > 1 && strcmp(argv[1], scen[i].name) != 0)
            continue;
        if (argc > 2 && !strcmp(argv[2], "nofork"))
            return scen[i].fn();
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(15);
            _exit(scen[i].fn());
        }
        int st;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            say("oom: %-16s PASS\n", scen[i].name);
        else if (WIFSIGNALED(st)) {
            bad++;
            say("oom: %-16s FAIL: killed by signal %d%s\n", scen[i].name, WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (hang: 15 s)" : "");
        } else {
            bad++;
            say("oom: %-16s FAIL (exit %d)\n", scen[i].name, WEXITSTATUS(st));
        }
    }
    say("oom: %s\n", bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}
