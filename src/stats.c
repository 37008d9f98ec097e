/* Statistics: process-wide OS counters plus the per-heap counters of every
 * heap ever made, summed at report time (racy reads of relaxed counters). */
#include "hakmem.h"
#include "hk_stats.h"
#include "hk_buf.h"
#include "hk_heap.h"
#include "hk_os.h"
#include "hk_large.h"
#include "hk_options.h"
#include "hk_error.h"
#include "hk_numa.h"
#include "hk_build.h"
#include <ck_spinlock.h>  /* ck_spinlock_cas */
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

/* Allocations of the fast path that s, a current slab or a cache, has not
 * handed to its heap's count yet.  Another thread's slab is read racily,
 * with a load that TSan does not see: its owner writes `ticks` in the fast
 * path's plain add.  A slab that is not current (any more) has `ticks` 0,
 * and so has one whose count just carried, until its owner hands the count
 * over (hk_slab_ticked): both read as 0, never as a count to add.  A
 * shortened count holds `lent` allocations that did not happen
 * (reclaim.c: look_soon); the two are a pair only if the heap's lend_seq
 * did not change meanwhile (heap_uncounted). */
static uint64_t uncounted(const struct hk_slab *s)
{
    return hk_ticks_uncounted(ck_pr_load_16(&s->ticks), ck_pr_load_8(&s->lent));
}

/* What h's current slabs and caches have not handed over, or 0 if its
 * owner changed a count's `lent` meanwhile: a seqlock's read side, where
 * the fallback is to count less. */
static uint64_t heap_uncounted(const struct hk_heap *h)
{
    uint32_t seq = ck_pr_load_32(&h->lend_seq);
    ck_pr_fence_load();
    uint64_t n = 0;
    for (unsigned c = 0; c < HK_CLASSES; c++) {
        /* Still h's current slab after its count was read: one released
         * meanwhile may be current in another heap by now, whose count
         * that heap's turn adds (helper 39). */
        const struct hk_slab *s = ck_pr_load_ptr(&h->cur[c]);
        uint64_t k = uncounted(s);
        ck_pr_fence_load();
        if (ck_pr_load_ptr(&h->cur[c]) == s)
            n += k;
    }
    for (unsigned c = 0; c < HK_LUT_CLASSES; c++)
        n += uncounted(&h->rc[c]);
    ck_pr_fence_load();
    return (seq & 1) == 0 && ck_pr_load_32(&h->lend_seq) == seq ? n : 0;
}

/* The process's allocation count as last reported: a count read while
 * other threads run misses what is on its way from a slab to its heap
 * (never counts it twice: hk_slab_ticked), so a later report may read
 * less than an earlier one; reports do not go back (helper 24 polled
 * hak_stats_json and saw the count drop by up to 4096). */
static uint64_t malloc_reported;

static unsigned sum_heaps(struct hk_heap_stats *t)
{
    unsigned heaps = 0;
    memset(t, 0, sizeof *t);
    /* The caller's own slabs are read as the others' below, and exactly:
     * none of them is between its carry and its hand-over.  Handing their
     * counts to the heap here restarted their periods, so a thread that
     * read the statistics after every allocation never ticked
     * (tests/slow_return). */
    /* Frees before allocations (racy reads, like all of these: the owners
     * write without atomics): a block's free counted here had its
     * allocation counted before, so frees do not run ahead of allocations
     * while the program runs, by more than the counts on their way. */
    t->free_remote = ck_pr_load_64(&hk_heapless_stats.free_remote);
    t->large_free = ck_pr_load_64(&hk_heapless_stats.large_free);
    t->small_bytes_freed = ck_pr_load_64(&hk_heapless_stats.small_bytes_freed);
    for (struct hk_heap *h = hk_heap_registry_head(); h != NULL; h = h->all_next) {
        heaps++;
        t->free_local += ck_pr_load_64(&h->stats.free_local);
        t->free_remote += ck_pr_load_64(&h->stats.free_remote);
        t->large_free += ck_pr_load_64(&h->stats.large_free);
        t->home_list += ck_pr_load_64(&h->stats.home_list);
        t->home_inbox += ck_pr_load_64(&h->stats.home_inbox);
        t->slab_new += ck_pr_load_64(&h->stats.slab_new);
        t->slab_release += ck_pr_load_64(&h->stats.slab_release);
        t->small_bytes_freed += ck_pr_load_64(&h->stats.small_bytes_freed);
    }
    ck_pr_fence_load();
    t->large_alloc = ck_pr_load_64(&hk_heapless_stats.large_alloc);
    t->malloc = ck_pr_load_64(&hk_heapless_stats.malloc);
    for (struct hk_heap *h = hk_heap_registry_head(); h != NULL; h = h->all_next) {
        t->large_alloc += ck_pr_load_64(&h->stats.large_alloc);
        t->small_bytes_alloc += ck_pr_load_64(&h->stats.small_bytes_alloc);
        /* The heap's count before its slabs' (see uncounted). */
        t->malloc += ck_pr_load_64(&h->stats.malloc);
        ck_pr_fence_load();
        t->malloc += heap_uncounted(h);
    }
    /* Every free read above was of a block allocated before: as many
     * allocations at least, whatever was on its way. */
    uint64_t freed = t->free_local + t->free_remote + t->large_free;
    if (t->malloc < freed)
        t->malloc = freed;
    uint64_t last = ck_pr_load_64(&malloc_reported);
    while (last < t->malloc && !ck_pr_cas_64_value(&malloc_reported, last, t->malloc, &last))
        ;
    if (t->malloc < last)
        t->malloc = last;
    return heaps;
}

uint64_t hk_stats_bytes_in_use(void)
{
    uint64_t n = hk_large_live_bytes();
    for (unsigned i = 0; i < hk_numa_node_count() && i < HK_MAX_NODES; i++)
        n += ck_pr_load_64(&hk_node_stats[i].bytes_in_use);
    return n;
}

/* The placement check: sample pages of the node's live SuperSlabs (every
 * 8th page of units in use, at most PLACEMENT_SAMPLES) and ask the kernel
 * where they are. */
#define PLACEMENT_SAMPLES 512

static void placement(unsigned node, size_t *sampled, size_t *resident, size_t *on_node)
{
    void *pages[PLACEMENT_SAMPLES];
    size_t n = 0;
    for (struct hk_ss *ss = hk_ss_registry_head(); ss != NULL && n < PLACEMENT_SAMPLES; ss = ss->all_next) {
        if (!ck_pr_load_32(&ss->live) || ck_pr_load_32(&ss->kind) != HK_SS_SMALL || ck_pr_load_32(&ss->node) != node)
            continue;
        for (size_t off = HK_SS_HDR_SIZE; off < HK_SS_SIZE && n < PLACEMENT_SAMPLES; off += 8 * HK_PAGE_SIZE)
            if (ck_pr_load_ptr(&ss->unit_slab[off >> HK_UNIT_SHIFT]) != &hk_slab_empty)
                pages[n++] = (char *)ss + off;
    }
    *sampled = n;
    *resident = *on_node = 0;
    if (n > 0)
        hk_numa_query_pages(pages, n, node, resident, on_node);
}

static void field(struct hk_buf *b, const char *name, int64_t v, bool last)
{
    hk_buf_str(b, "\"");
    hk_buf_str(b, name);
    hk_buf_str(b, "\":");
    hk_buf_i64(b, v);
    if (!last)
        hk_buf_str(b, ",");
}

static const char *variant(void)
{
#if defined(HK_OBSERVE) && HK_OBSERVE
    return "observe";
#elif defined(HK_FAST) && HK_FAST
    return "fast";
#else
    return "standard";
#endif
}

hk_public size_t hak_stats_json(char *buf, size_t len)
{
    struct hk_buf b = { buf, len, 0 };
    struct hk_heap_stats t;
    bool counted = HK_COUNTING;
    unsigned heaps = sum_heaps(&t);
#define C(x) (counted ? (int64_t)(x) : -1)
    hk_buf_str(&b, "{\"hakmem\":{\"version\":\"" PACKAGE_VERSION "\",\"variant\":\"");
    hk_buf_str(&b, variant());
    hk_buf_str(&b, "\",\"commit\":\"" HK_BUILD_COMMIT "\"},\"os\":{");
    field(&b, "mmap", (int64_t)ck_pr_load_64(&hk_os_stats.mmap), false);
    field(&b, "munmap", (int64_t)ck_pr_load_64(&hk_os_stats.munmap), false);
    field(&b, "madvise", (int64_t)ck_pr_load_64(&hk_os_stats.madvise), false);
    field(&b, "tgkill", (int64_t)ck_pr_load_64(&hk_os_stats.tgkill), true);
    hk_buf_str(&b, "},");
    field(&b, "heaps", heaps, false);  /* ever made: the peak of live threads, as exited ones are reused */
    field(&b, "malloc", C(t.malloc), false);
    field(&b, "free", C(t.free_local + t.free_remote + t.large_free), false);
    field(&b, "free_local", C(t.free_local), false);
    field(&b, "free_remote", C(t.free_remote), false);
    field(&b, "remote_home_list", C(t.home_list), false);
    field(&b, "remote_home_inbox", C(t.home_inbox), false);
    field(&b, "large_alloc", C(t.large_alloc), false);
    field(&b, "large_free", C(t.large_free), false);
    field(&b, "slabs_made", C(t.slab_new), false);
    field(&b, "slabs_released", C(t.slab_release), false);
    field(&b, "bytes_in_use", (int64_t)(hk_stats_bytes_in_use()), false);
    field(&b, "small_bytes_live", HK_COUNT_BYTES ? (int64_t)(t.small_bytes_alloc - t.small_bytes_freed) : -1, false);
    field(&b, "bytes_committed", (int64_t)ck_pr_load_64(&hk_os_stats.committed), false);
    field(&b, "peak_committed", (int64_t)ck_pr_load_64(&hk_os_stats.peak_committed), false);
    field(&b, "large_cached", (int64_t)hk_large_cached_bytes(), false);
    hk_buf_str(&b, "\"placement\":[");
    for (unsigned i = 0; i < hk_numa_node_count(); i++) {
        size_t sampled, resident, on_node;
        placement(i, &sampled, &resident, &on_node);
        hk_buf_str(&b, i ? ",{" : "{");
        field(&b, "node", i, false);
        field(&b, "sampled_pages", (int64_t)sampled, false);
        field(&b, "resident", (int64_t)resident, false);
        field(&b, "on_node", (int64_t)on_node, true);
        hk_buf_str(&b, "}");
    }
    hk_buf_str(&b, "],\"nodes\":");
    size_t room = b.len < b.cap ? b.cap - b.len : 0;
    b.len += hk_numa_stats_json(room ? b.p + b.len : NULL, room);
    hk_buf_str(&b, "}");
#undef C
    hk_buf_finish(&b);
    return b.len;
}

static void line(struct hk_buf *b, const char *name, int64_t v)
{
    hk_buf_str(b, "hakmem:   ");
    hk_buf_str(b, name);
    for (size_t i = strlen(name); i < 18; i++)
        hk_buf_str(b, " ");
    if (v < 0)
        hk_buf_str(b, "not counted in this build");
    else
        hk_buf_u64(b, (uint64_t)v);
    hk_buf_str(b, "\n");
}

/* One write(2) for the whole report: processes that exit together (the two
 * ends of a pipe) would interleave piecewise writes mid-line.  The text is
 * static, not on the caller's stack: malloc_stats() from a thread or a
 * coroutine with a 16 KiB stack overflowed it (helper 45: a crash, or a
 * neighbouring heap block overwritten); so reports take turns. */
static char summary_text[16384];  /* 64 nodes' lines fit */
/* The CAS lock: its CAS and release store are the ck_pr operations the
 * TSan build sees (hk_tsan.h). */
static ck_spinlock_cas_t summary_lock = CK_SPINLOCK_CAS_INITIALIZER;

static void print_summary(int fd)
{
    ck_spinlock_cas_lock(&summary_lock);
    struct hk_buf b = { summary_text, sizeof summary_text, 0 };
    struct hk_heap_stats t;
    bool counted = HK_COUNTING;
    sum_heaps(&t);
    hk_buf_str(&b, "hakmem: statistics (" PACKAGE_VERSION ", ");
    hk_buf_str(&b, variant());
    hk_buf_str(&b, " build)\n");
    line(&b, "mmap calls", (int64_t)ck_pr_load_64(&hk_os_stats.mmap));
    line(&b, "munmap calls", (int64_t)ck_pr_load_64(&hk_os_stats.munmap));
    line(&b, "madvise calls", (int64_t)ck_pr_load_64(&hk_os_stats.madvise));
    line(&b, "tgkill calls", (int64_t)ck_pr_load_64(&hk_os_stats.tgkill));
    line(&b, "mallocs", counted ? (int64_t)t.malloc : -1);
    line(&b, "frees", counted ? (int64_t)(t.free_local + t.free_remote + t.large_free) : -1);
    line(&b, "  local", counted ? (int64_t)t.free_local : -1);
    line(&b, "  remote", counted ? (int64_t)t.free_remote : -1);
    line(&b, "    home by list", counted ? (int64_t)t.home_list : -1);
    line(&b, "    home by inbox", counted ? (int64_t)t.home_inbox : -1);
    line(&b, "large blocks", counted ? (int64_t)t.large_alloc : -1);
    line(&b, "bytes in use", (int64_t)(hk_stats_bytes_in_use()));
    line(&b, "bytes committed", (int64_t)ck_pr_load_64(&hk_os_stats.committed));
    line(&b, "peak committed", (int64_t)ck_pr_load_64(&hk_os_stats.peak_committed));
    hk_numa_stats_text(&b);
    hk_buf_write(&b, fd);
    ck_spinlock_cas_unlock(&summary_lock);
}

hk_public void hak_stats_print(void) { print_summary(2); }

/* Programs like ls close stderr in an atexit handler: the report goes to a
 * duplicate taken at start-up.  But a program may close that descriptor
 * too (a close-all loop, a shell's `exec 3>file`) and open a file of its
 * own on the same number: the report would end up in its data.  So the
 * duplicate is used only while it still names the file it was taken of,
 * close-on-exec as we made it; else the report goes to fd 2, as every
 * allocator's does.  A program started without stderr (`2>&-`) gets no
 * report: fd 2 is then the first file it opens, its data (helper 52: the
 * report appended to a file the program wrote). */
static int stats_fd = -1;
static dev_t stats_dev;
static ino_t stats_ino;
static bool stderr_closed;  /* fd 2 was not open at start-up */

void hk_stats_init(void)
{
    if (hk_opt.stats != HK_STATS_OFF) {
        struct stat st;
        int saved = errno;  /* a constructor's: the program's first errno is its own */
        int fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
        if (fd >= 0 && fstat(fd, &st) == 0) {
            stats_fd = fd;
            stats_dev = st.st_dev;
            stats_ino = st.st_ino;
        }
        stderr_closed = fd < 0 && errno == EBADF;
        errno = saved;
    }
}

/* -1: nowhere to report. */
static int report_fd(void)
{
    struct stat st;
    if (stats_fd >= 0 && fcntl(stats_fd, F_GETFD) == FD_CLOEXEC && fstat(stats_fd, &st) == 0 &&
        st.st_dev == stats_dev && st.st_ino == stats_ino)
        return stats_fd;
    return stderr_closed ? -1 : 2;
}

/* At exit, after the program's own destructors have had their say. */
__attribute__((destructor(101))) static void hk_stats_at_exit(void)
{
    int fd = report_fd();
    if (fd < 0)
        return;
    if (hk_opt.stats == HK_STATS_TEXT) {
        print_summary(fd);
    } else if (hk_opt.stats == HK_STATS_JSON) {
        static char buf[16384];
        size_t n = hak_stats_json(buf, sizeof buf - 1);
        if (n > sizeof buf - 2)
            n = sizeof buf - 2;
        buf[n] = '\n';
        hk_write_all(fd, buf, n + 1);
    }
}
