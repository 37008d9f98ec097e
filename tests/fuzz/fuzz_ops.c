/* The API fuzzer's operations: every hak_ entry point, with the outcome its
 * documented semantics demand (glibc's; EINVAL and ENOMEM as hakmem(3)
 * says) and content checks on every block it touches.  Every live block is
 * filled over its whole usable size with a pattern of its own seed, so a
 * block that overlaps another, a lost or shifted realloc copy, or metadata
 * written into a live block shows up at the block's next check. */
#include "fuzz.h"
#include "hakmem.h"
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests above this cannot be mapped in a 47-bit address space and must
 * fail with ENOMEM.  Smaller ones may succeed (hakmem maps MAP_NORESERVE),
 * so the fuzzer asks for none between its large sizes and these. */
#define FZ_IMPOSSIBLE (((size_t)1 << 47) + 1)
#define FZ_PAGE ((size_t)4096)

/* The pattern loops touch only hakmem's memory, which ASan does not track:
 * no shadow checks and no coverage there, they would only slow them. */
#define FZ_RAW __attribute__((no_sanitize("address", "coverage")))

void fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_api: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* ---- patterns ---- */

/* The word at byte offset off (a multiple of 8) of a block filled for seed. */
FZ_RAW static inline uint64_t pattern(uint64_t seed, size_t off)
{
    uint64_t x = (seed + off) * 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 29);
}

FZ_RAW static inline unsigned char pattern_byte(uint64_t seed, size_t k)
{
    return (unsigned char)(pattern(seed, k & ~(size_t)7) >> (8 * (k & 7)));
}

FZ_RAW static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w = pattern(seed, k);
        memcpy(p + k, &w, 8);
    }
    for (; k < n; k++)
        p[k] = pattern_byte(seed, k);
}

/* Offset of the first byte of p[0..n) off the pattern, or SIZE_MAX. */
FZ_RAW static size_t mismatch(const unsigned char *p, size_t n, uint64_t seed)
{
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        if (w != pattern(seed, k))
            break;
    }
    for (; k < n; k++)
        if (p[k] != pattern_byte(seed, k))
            return k;
    return SIZE_MAX;
}

FZ_RAW static size_t nonzero(const unsigned char *p, size_t n)
{
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        if (w != 0)
            break;
    }
    for (; k < n; k++)
        if (p[k] != 0)
            return k;
    return SIZE_MAX;
}

/* A seed per allocation, from (thread, slot, generation). */
static uint64_t next_seed(struct fz_thread *t, unsigned slot)
{
    uint64_t x = ((uint64_t)t->id << 56) ^ ((uint64_t)slot << 40) ^ ++t->gen;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void verify(const struct fz_thread *t, const struct fz_block *b, const char *when)
{
    size_t off = mismatch(b->p, b->usable, b->seed);
    if (off != SIZE_MAX)
        fz_fail("thread %u: block %p (size %zu, usable %zu) changed at offset %zu, %s", t->id,
                (void *)b->p, b->req, b->usable, off, when);
}

/* ---- decoding sizes and alignments ---- */

struct fz_size {
    size_t n;
    bool impossible;  /* must fail with ENOMEM */
};

/* Sizes at the allocator's boundaries: pages, units, SuperSlabs. */
static const size_t edge_sizes[16] = {
    4096, 8192, 12288, 16384, 32768, 49152, 65536, 131072,
    (1u << 20) - 4096, 1u << 20, (2u << 20) - 8192, (2u << 20) - 4096,
    2u << 20, (2u << 20) + 4096, 3u << 20, 4u << 20,
};

static const size_t huge_sizes[16] = {
    SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 4095,
    SIZE_MAX - (2u << 20) + 1, SIZE_MAX - (4u << 20), SIZE_MAX / 2 + 1, SIZE_MAX / 2,
    SIZE_MAX / 2 - 4095, (size_t)1 << 62, (size_t)1 << 56, (size_t)1 << 48,
    FZ_IMPOSSIBLE, FZ_IMPOSSIBLE + 4095, FZ_IMPOSSIBLE + (2u << 20), ((size_t)1 << 47) * 3,
};

/* 16 bits to a size: the top four pick a range, weighted toward small. */
static struct fz_size size_of(struct fz_thread *t, const uint8_t *op)
{
    unsigned v = op[2] | (unsigned)op[3] << 8, low = v & 0xfff;
    unsigned classes = hak_size_class_count();
    size_t n = 0, c;
    switch (v >> 12) {
    case 0: n = v & 15; break;
    case 1: case 11: n = (v & 0xff) + 1; break;
    case 2: n = (v & 0x3ff) + 1; break;
    case 3: case 4: case 13:  /* a class size, one off it, or half of it */
        c = hak_size_class_size((v & 0xff) % classes);
        n = (size_t[]){ c - 1, c, c + 1, c / 2 + 1 }[(v >> 8) & 3];
        break;
    case 5: case 6: n = low * 9; break;                 /* across the small range */
    case 7: n = 32768 + (size_t)low * 1021; break;      /* large, up to 4 MiB */
    case 8: n = 32768 + (size_t)low * 13; break;        /* just past the small range */
    case 9: n = edge_sizes[v & 15] - 1 + ((v >> 4) & 3); break;
    case 10: return (struct fz_size){ huge_sizes[v & 15], true };
    case 12: n = (size_t)(v & 0x3f) * 16; break;
    case 14: n = low; break;
    case 15: n = (size_t)low * 8; break;
    }
    if (n > 65536 && n > t->budget)
        n &= 0xffff;
    return (struct fz_size){ n, false };
}

/* Alignments 1 B..2 MiB, and ones that are invalid or cannot be met. */
static size_t align_of(unsigned aux)
{
    static const size_t odd[10] = {
        0, 3, 24, 48, 12288, (size_t)1 << 47, (size_t)1 << 62, (size_t)1 << 63,
        ((size_t)1 << 63) + 1, SIZE_MAX,
    };
    unsigned a = aux & 31;
    return a <= 21 ? (size_t)1 << a : odd[a - 22];
}

static bool pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* An alignment at or past this cannot be met: ENOMEM. */
#define FZ_ALIGN_IMPOSSIBLE ((size_t)1 << 47)

/* calloc/reallocarray arguments whose product is the size; for an
 * impossible size, a product that overflows or is itself impossible. */
static void split(struct fz_size s, unsigned aux, size_t *nmemb, size_t *each)
{
    if (s.impossible) {
        *nmemb = aux & 16 ? 1 : 2 + (aux & 15);
        *each = aux & 16 ? s.n : s.n / 2 + 1;
    } else {
        *nmemb = aux & 15;
        *each = *nmemb ? s.n / *nmemb : s.n;
    }
    if (aux & 32) {
        size_t x = *nmemb;
        *nmemb = *each;
        *each = x;
    }
}

/* ---- blocks in and out of slots ---- */

/* Check and free b with the free variant asked for, when the block admits it. */
static void release(struct fz_thread *t, struct fz_block *b, unsigned variant)
{
    verify(t, b, "before free");
    if (variant == 1 && b->origin == FZ_PLAIN)
        hak_free_sized(b->p, b->req);
    else if (variant == 2 && b->origin == FZ_ALIGNED_ALLOC)
        hak_free_aligned_sized(b->p, b->align, b->req);
    else
        hak_free(b->p);
    b->p = NULL;
}

/* What an allocation call must produce. */
struct fz_call {
    const char *fn;
    size_t x, y;     /* its arguments, for messages */
    int want;        /* 0: must succeed; else the errno its NULL comes with */
    size_t req;      /* bytes the block must hold */
    size_t align;    /* alignment it must have beyond malloc's */
    enum fz_origin origin;
    bool zeroed;
};

/* Judge an allocation's result p (errno err) and put the block in slot. */
static void outcome(struct fz_thread *t, unsigned slot, const struct fz_call *c, void *p, int err)
{
    if (c->want != 0) {
        if (p != NULL || err != c->want)
            fz_fail("%s(%zu, %zu) = %p, errno %d: expected NULL with errno %d", c->fn, c->x, c->y, p,
                    err, c->want);
        return;
    }
    if (p == NULL)
        fz_fail("%s(%zu, %zu) failed with errno %d", c->fn, c->x, c->y, err);
    /* Every block is aligned for any object that fits it: 8 bytes, and 16
     * when the size is a multiple of 16 (the only sizes a 16-aligned type has). */
    uintptr_t a = (uintptr_t)p;
    if (a % 8 != 0 || (c->req >= 16 && c->req % 16 == 0 && a % 16 != 0))
        fz_fail("%s(%zu, %zu) = %p: misaligned for a block of %zu bytes", c->fn, c->x, c->y, p, c->req);
    if (c->align > 1 && a % c->align != 0)
        fz_fail("%s(%zu, %zu) = %p: not aligned to %zu", c->fn, c->x, c->y, p, c->align);
    size_t u = hak_malloc_usable_size(p);
    if (u < c->req)
        fz_fail("%s(%zu, %zu) = %p: usable size %zu < %zu", c->fn, c->x, c->y, p, u, c->req);
    size_t off = c->zeroed ? nonzero(p, c->req) : SIZE_MAX;
    if (off != SIZE_MAX)
        fz_fail("%s(%zu, %zu) = %p: byte %zu is not zero", c->fn, c->x, c->y, p, off);
    struct fz_block *b = &t->slot[slot];
    *b = (struct fz_block){ p, c->req, u, next_seed(t, slot), c->align, c->origin };
    fill(b->p, u, b->seed);  /* writable up to the usable size */
    t->budget -= u < t->budget ? u : t->budget;
}

/* realloc/reallocarray of the block in slot to n bytes (impossible: must fail). */
static void resized(struct fz_thread *t, unsigned slot, const struct fz_call *c, void *q, int err)
{
    struct fz_block *b = &t->slot[slot];
    if (c->want == 0 && c->req == 0) {  /* glibc: the block is freed, NULL returned */
        if (q != NULL)
            fz_fail("%s(%p, %zu, %zu) = %p: expected NULL, the block freed", c->fn, (void *)b->p, c->x,
                    c->y, q);
        b->p = NULL;
        return;
    }
    if (c->want != 0) {
        if (q != NULL || err != c->want)
            fz_fail("%s(%p, %zu, %zu) = %p, errno %d: expected NULL with errno %d", c->fn, (void *)b->p,
                    c->x, c->y, q, err, c->want);
        verify(t, b, "after a failed realloc");
        return;
    }
    if (q == NULL)
        fz_fail("%s(%p, %zu, %zu) failed with errno %d", c->fn, (void *)b->p, c->x, c->y, err);
    size_t keep = b->req < c->req ? b->req : c->req;
    size_t off = mismatch(q, keep, b->seed);
    if (off != SIZE_MAX)
        fz_fail("%s(%p, %zu, %zu) = %p: byte %zu of the %zu kept differs", c->fn, (void *)b->p, c->x, c->y,
                q, off, keep);
    b->p = NULL;
    outcome(t, slot, c, q, err);
}

/* ---- mailboxes ---- */

static struct {
    pthread_mutex_t lock;
    struct fz_block b;
} box[FZ_BOXES] = {
#define FZ_BOX { PTHREAD_MUTEX_INITIALIZER, { NULL, 0, 0, 0, 0, FZ_PLAIN } }
    FZ_BOX, FZ_BOX, FZ_BOX, FZ_BOX, FZ_BOX, FZ_BOX, FZ_BOX, FZ_BOX,
#undef FZ_BOX
};
_Static_assert(FZ_BOXES == 8, "one initializer per mailbox");

/* Swap a slot with a mailbox: a block moves to whichever thread takes it
 * next (the mutex orders its contents before the taker's checks). */
static void exchange(struct fz_block *b, unsigned i)
{
    pthread_mutex_lock(&box[i].lock);
    struct fz_block x = box[i].b;
    box[i].b = *b;
    *b = x;
    pthread_mutex_unlock(&box[i].lock);
}

void fz_drain_boxes(struct fz_thread *t)
{
    for (unsigned i = 0; i < FZ_BOXES; i++) {
        struct fz_block b = { NULL, 0, 0, 0, 0, FZ_PLAIN };
        exchange(&b, i);
        if (b.p != NULL)
            release(t, &b, i % 3);
    }
}

void fz_free_all(struct fz_thread *t)
{
    for (unsigned i = 0; i < FZ_SLOTS; i++)
        if (t->slot[i].p != NULL)
            release(t, &t->slot[i], i % 3);
}

/* ---- operations ---- */

enum {
    OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOCARRAY, OP_POSIX_MEMALIGN, OP_ALIGNED_ALLOC,
    OP_MEMALIGN, OP_VALLOC, OP_PVALLOC, OP_USABLE, OP_FREE, OP_XCHG, OP_COLLECT, OP_STATS, OP_CHECK,
};

/* Opcode byte (after the thread is taken out) to operation, weighted toward
 * the common calls. */
static const uint8_t optab[] = {
    OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOC, OP_REALLOCARRAY,
    OP_POSIX_MEMALIGN, OP_ALIGNED_ALLOC, OP_MEMALIGN, OP_VALLOC, OP_PVALLOC, OP_USABLE,
    OP_FREE, OP_FREE, OP_FREE, OP_XCHG, OP_XCHG, OP_COLLECT, OP_STATS, OP_CHECK,
};

/* A checking pass outside frees and reallocs: from the budget, so that an
 * input of many checks of one large block stays fast. */
static bool can_check(struct fz_thread *t, const struct fz_block *b)
{
    if (b->usable > t->budget)
        return false;
    t->budget -= b->usable;
    return true;
}

void fz_run_op(struct fz_thread *t, const uint8_t op[FZ_OP_BYTES])
{
    unsigned slot = op[1] % FZ_SLOTS, variant = op[1] / FZ_SLOTS, aux = op[4];
    struct fz_block *b = &t->slot[slot];
    unsigned code = optab[(op[0] / FZ_THREADS) % sizeof optab];
    struct fz_size s = size_of(t, op);
    size_t align = align_of(aux), nmemb, each, eff;
    struct fz_call c = { NULL, s.n, 0, s.impossible ? ENOMEM : 0, s.n, 0, FZ_PLAIN, false };
    void *p;
    int rc;

    /* An allocation into a taken slot frees the block there first. */
    if (b->p != NULL && code <= OP_PVALLOC && code != OP_REALLOC && code != OP_REALLOCARRAY)
        release(t, b, variant);
    errno = 0;
    switch (code) {
    case OP_MALLOC:
        c.fn = "malloc";
        p = hak_malloc(s.n);
        outcome(t, slot, &c, p, errno);
        break;
    case OP_CALLOC:
        split(s, aux, &nmemb, &each);
        c = (struct fz_call){ "calloc", nmemb, each, c.want, nmemb * each, 0, FZ_PLAIN, true };
        p = hak_calloc(nmemb, each);
        outcome(t, slot, &c, p, errno);
        break;
    case OP_REALLOC:
        c.fn = "realloc";
        if (b->p == NULL) {
            p = hak_realloc(NULL, s.n);
            outcome(t, slot, &c, p, errno);
            break;
        }
        verify(t, b, "before realloc");
        errno = 0;
        p = hak_realloc(b->p, s.n);
        resized(t, slot, &c, p, errno);
        break;
    case OP_REALLOCARRAY:
        split(s, aux, &nmemb, &each);
        c = (struct fz_call){ "reallocarray", nmemb, each, c.want, nmemb * each, 0, FZ_PLAIN, false };
        if (b->p == NULL) {
            p = hak_reallocarray(NULL, nmemb, each);
            outcome(t, slot, &c, p, errno);
            break;
        }
        verify(t, b, "before reallocarray");
        errno = 0;
        p = hak_reallocarray(b->p, nmemb, each);
        resized(t, slot, &c, p, errno);
        break;
    case OP_POSIX_MEMALIGN:
        c = (struct fz_call){ "posix_memalign", align, s.n, c.want, s.n, align, FZ_OTHER, false };
        if (!pow2(align) || align % sizeof(void *) != 0)
            c.want = EINVAL;
        else if (align >= FZ_ALIGN_IMPOSSIBLE)
            c.want = ENOMEM;
        p = &c;  /* must stay untouched on failure */
        rc = hak_posix_memalign(&p, align, s.n);
        if (rc != c.want || (rc != 0 && p != &c))
            fz_fail("posix_memalign(%zu, %zu) = %d (out %p): expected %d", align, s.n, rc, p, c.want);
        if (rc == 0)
            outcome(t, slot, &c, p, 0);
        break;
    case OP_ALIGNED_ALLOC:
        c = (struct fz_call){ "aligned_alloc", align, s.n, c.want, s.n, align, FZ_ALIGNED_ALLOC, false };
        if (!pow2(align))
            c.want = EINVAL;
        else if (align >= FZ_ALIGN_IMPOSSIBLE)
            c.want = ENOMEM;
        p = hak_aligned_alloc(align, s.n);
        outcome(t, slot, &c, p, errno);
        break;
    case OP_MEMALIGN:
        /* glibc: a non-power-of-two alignment rounds up, past SIZE_MAX/2+1 is EINVAL. */
        eff = align < 2 ? 1 : align > SIZE_MAX / 2 + 1 ? 0 : (size_t)1 << (64 - __builtin_clzl(align - 1));
        c = (struct fz_call){ "memalign", align, s.n, c.want, s.n, eff, FZ_OTHER, false };
        if (align > SIZE_MAX / 2 + 1)
            c.want = EINVAL;
        else if (eff >= FZ_ALIGN_IMPOSSIBLE)
            c.want = ENOMEM;
        p = hak_memalign(align, s.n);
        outcome(t, slot, &c, p, errno);
        break;
    case OP_VALLOC:
        c = (struct fz_call){ "valloc", s.n, 0, c.want, s.n, FZ_PAGE, FZ_OTHER, false };
        p = hak_valloc(s.n);
        outcome(t, slot, &c, p, errno);
        break;
    case OP_PVALLOC:
        /* The whole rounded-up page run is the block's. */
        c = (struct fz_call){ "pvalloc", s.n, 0, c.want, s.n ? (s.n + FZ_PAGE - 1) & ~(FZ_PAGE - 1) : FZ_PAGE,
                              FZ_PAGE, FZ_OTHER, false };
        p = hak_pvalloc(s.n);
        outcome(t, slot, &c, p, errno);
        break;
    case OP_USABLE:
        if (b->p == NULL) {
            if (hak_malloc_usable_size(NULL) != 0)
                fz_fail("malloc_usable_size(NULL) = %zu", hak_malloc_usable_size(NULL));
        } else if (hak_malloc_usable_size(b->p) != b->usable) {
            fz_fail("malloc_usable_size(%p) = %zu, was %zu", (void *)b->p, hak_malloc_usable_size(b->p),
                    b->usable);
        } else if (can_check(t, b)) {
            verify(t, b, "at malloc_usable_size");
        }
        break;
    case OP_FREE:
        if (b->p != NULL)
            release(t, b, variant);
        else if (variant == 1)
            hak_free_sized(NULL, s.n);
        else if (variant == 2)
            hak_free_aligned_sized(NULL, align, s.n);
        else
            hak_free(NULL);
        break;
    case OP_XCHG:
        exchange(b, aux % FZ_BOXES);
        break;
    case OP_COLLECT:
        hak_collect();
        break;
    case OP_STATS:
        fz_stats(t, aux);
        break;
    case OP_CHECK:
        if (b->p != NULL && can_check(t, b))
            verify(t, b, "at a check");
        break;
    }
}
