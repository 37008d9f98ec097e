/* Heaps: one per thread.  The owner allocates from its current slab per
 * class; other slabs with free blocks wait on a per-class partial list; full
 * slabs are on no list at all: the first remote free into one hands the block
 * to the heap's inbox, which brings the slab back into use. */
#include "hk_heap.h"
#include "hk_slab.h"
#include "hk_large.h"
#include "hk_os.h"
#include "hk_options.h"
#include "hk_error.h"
#include "hk_numa.h"
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <errno.h>
#include <sys/auxv.h>

struct hk_slab hk_slab_empty;
struct hk_heap hk_heap_empty = {
    .direct = { [0 ... HK_LUT_MAX / 8] = &hk_slab_empty },
    .cur = { [0 ... HK_CLASSES - 1] = &hk_slab_empty },
};
__thread struct hk_heap *hk_tls_heap __attribute__((tls_model("initial-exec"))) = &hk_heap_empty;
/* Set once this thread's heap was handed back at thread exit. */
static __thread bool tls_exited __attribute__((tls_model("initial-exec")));

/* Heaps of exited threads, adopted most recent first (warm memory).  A
 * single stack that only ever sees push_upmc and pop_mpmc.  Older heaps do
 * not wait for an adopter to get their memory back: growing threads and
 * hak_collect sweep them (sweep_abandoned). */
static ck_stack_t abandoned __attribute__((aligned(16)));
static struct hk_heap *sweep_cursor;  /* next registry entry a sweep looks at */
static struct hk_heap *heap_registry;
static pthread_key_t heap_key;
static unsigned init_state;  /* 0 new, 1 initialising, 2 ready */

static void thread_exit_cb(void *arg);
static void rehome(struct hk_heap *h, unsigned node);
static void sweep_abandoned(unsigned max);

void hk_process_init(void)
{
    /* Acquire pairs with the release store below: options are visible. */
    if (hk_likely(ck_pr_load_uint(&init_state) == 2)) {
        ck_pr_fence_load();
        return;
    }
    if (ck_pr_cas_uint(&init_state, 0, 1)) {
        hk_options_init();
        hk_numa_set_policy(hk_opt.numa);  /* reports a bad value itself */
        /* AT_RANDOM: 16 random bytes from the kernel, not necessarily aligned. */
        const void *rnd = (const void *)getauxval(AT_RANDOM);
        uint64_t r[2] = { (uintptr_t)&hk_cookie, 0 };
        if (rnd != NULL)
            memcpy(r, rnd, sizeof r);
        hk_cookie = (r[0] ^ r[1]) | 1;
        pthread_key_create(&heap_key, thread_exit_cb);
        ck_pr_fence_store();
        ck_pr_store_uint(&init_state, 2);
        return;
    }
    while (ck_pr_load_uint(&init_state) != 2)
        sched_yield();
    ck_pr_fence_load();
}

struct hk_heap *hk_heap_registry_head(void)
{
    struct hk_heap *h = ck_pr_load_ptr(&heap_registry);
    ck_pr_fence_load();  /* pairs with the fence before the registering CAS */
    return h;
}

static struct hk_heap *heap_new(void)
{
    size_t size = (sizeof(struct hk_heap) + HK_PAGE_SIZE - 1) & ~(HK_PAGE_SIZE - 1);
    struct hk_heap *h = hk_os_map_aligned(size, HK_PAGE_SIZE);
    if (h == NULL)
        return NULL;
    for (unsigned c = 0; c < HK_CLASSES; c++)
        h->cur[c] = &hk_slab_empty;
    for (unsigned i = 0; i <= HK_LUT_MAX / 8; i++)
        h->direct[i] = &hk_slab_empty;
    h->tick = HK_TICK;
    struct hk_heap *head;
    do {
        head = ck_pr_load_ptr(&heap_registry);
        h->all_next = head;
        ck_pr_fence_store();  /* publish the initialised heap to stats walkers */
    } while (!ck_pr_cas_ptr(&heap_registry, head, h));
    return h;
}

static struct hk_heap *heap_of_entry(ck_stack_entry_t *e)
{
    return e ? (struct hk_heap *)((char *)e - offsetof(struct hk_heap, abandon_entry)) : NULL;
}

/* Take an abandoned heap for a new thread; NULL when there is none.  A heap
 * a sweeper holds at the moment (state SWEEPING) stays in the stack for it:
 * we take the next one instead. */
static struct hk_heap *pop_abandoned(void)
{
    /* pop_mpmc's generation counter makes the pop ABA-safe; heaps are never
     * unmapped, so reading an entry's next link is always safe. */
    struct hk_heap *h = heap_of_entry(ck_stack_pop_mpmc(&abandoned));
    /* The CAS makes us the heap's only user against a sweeper's CAS. */
    if (h == NULL || ck_pr_cas_32(&h->state, HK_HEAP_ABANDONED, HK_HEAP_ACTIVE))
        return h;
    struct hk_heap *other = heap_of_entry(ck_stack_pop_mpmc(&abandoned));
    ck_stack_push_upmc(&abandoned, &h->abandon_entry);
    if (other == NULL || ck_pr_cas_32(&other->state, HK_HEAP_ABANDONED, HK_HEAP_ACTIVE))
        return other;
    ck_stack_push_upmc(&abandoned, &other->abandon_entry);
    return NULL;
}

static struct hk_heap *heap_acquire(void)
{
    struct hk_heap *h = pop_abandoned();
    if (h == NULL)
        h = heap_new();
    if (h == NULL)
        return NULL;
    unsigned node = hk_numa_current_node();
    if (node != h->node)
        rehome(h, node);  /* adopted by a thread on another node */
    ck_pr_store_32(&h->state, HK_HEAP_ACTIVE);
    return h;
}

/* ---- slab and SuperSlab bookkeeping (owner only) ---- */

static void set_cur(struct hk_heap *h, unsigned cls, struct hk_slab *s)
{
    h->cur[cls] = s;
    if (hk_class_size[cls] > HK_LUT_MAX)
        return;
    /* The direct entries of a class are the sizes between the previous
     * class and this one. */
    unsigned lo = cls == 0 ? 0 : (hk_class_size[cls - 1] + 8) >> 3, hi = hk_class_size[cls] >> 3;
    for (unsigned i = lo; i <= hi; i++)
        h->direct[i] = s;
}

/* The thread now runs on another node: slabs of its old node get the
 * FOREIGN flag (their frees count as cross-node), slabs of the new one lose
 * it.  Rare, so a walk over every SuperSlab is fine. */
static void rehome(struct hk_heap *h, unsigned node)
{
    h->node = node;
    for (struct hk_ss *ss = hk_ss_registry_head(); ss != NULL; ss = ss->all_next) {
        if (ck_pr_load_ptr(&ss->heap) != h || ss->kind != HK_SS_SMALL)
            continue;
        for (unsigned u = 0; u < HK_UNITS; u++) {
            struct hk_slab *s = ss->unit_slab[u];
            if (s != &ss->slabs[u])
                continue;
            uint64_t tag = s->owner_tag & ~HK_SLAB_FOREIGN;
            ck_pr_store_64(&s->owner_tag, tag | (ss->node != node ? HK_SLAB_FOREIGN : 0));
        }
    }
}

static void partial_push(struct hk_heap *h, struct hk_slab *s)
{
    s->prev = NULL;
    s->next = h->partial[s->cls];
    if (s->next)
        s->next->prev = s;
    h->partial[s->cls] = s;
    s->in_partial = 1;
}

static void partial_remove(struct hk_heap *h, struct hk_slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->partial[s->cls] = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->in_partial = 0;
}

static void avail_push(struct hk_heap *h, struct hk_ss *ss)
{
    ss->prev = NULL;
    ss->next = h->avail;
    if (ss->next)
        ss->next->prev = ss;
    h->avail = ss;
    ss->in_avail = 1;
}

static void avail_remove(struct hk_heap *h, struct hk_ss *ss)
{
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        h->avail = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
    ss->prev = ss->next = NULL;
    ss->in_avail = 0;
}

/* Empty SuperSlabs older than the delay go back to their node's pool,
 * decommitted; the newest few stay committed for reuse. */
static void empty_trim(struct hk_heap *h, bool all)
{
    if (h->empty == NULL)
        return;
    uint64_t now = hk_os_now_ms();
    struct hk_ss **link = &h->empty;
    unsigned kept = 0;
    while (*link != NULL) {
        struct hk_ss *ss = *link;
        /* The newest empty SuperSlab stays whatever its age (steady churn
         * keeps reusing it); older ones go after the delay, any beyond the
         * cache at once. */
        bool old = kept > 0 && now - ss->empty_since_ms >= (uint64_t)hk_opt.decommit_delay_ms;
        if (all || old || kept >= (unsigned)hk_opt.heap_ss_cache) {
            *link = ss->next;
            h->empty_count--;
            hk_ss_release(ss);
        } else {
            kept++;
            link = &ss->next;
        }
    }
}

/* Units of a partly used SuperSlab, freed and not reused within the delay,
 * are decommitted: RSS follows the live set, not its high-water mark. */
static void purge_units(struct hk_ss *ss)
{
    uint32_t m = ss->free_units & ss->dirty_units;
    while (m != 0) {
        unsigned lo = (unsigned)__builtin_ctz(m), hi = lo;
        while (hi + 1 < HK_UNITS && (m >> (hi + 1)) & 1)
            hi++;
        uintptr_t start = (uintptr_t)ss + ((uintptr_t)lo << HK_UNIT_SHIFT);
        if (lo == 0)
            start += HK_SS_HDR_SIZE;
        hk_os_decommit((void *)start, (uintptr_t)ss + ((uintptr_t)(hi + 1) << HK_UNIT_SHIFT) - start);
        uint32_t run = (hi == 31 ? 0xffffffffu : ((1u << (hi + 1)) - 1)) & ~((1u << lo) - 1);
        ss->dirty_units &= ~run;
        m &= ~run;
    }
}

static void purge_remove(struct hk_heap *h, struct hk_ss *ss)
{
    for (struct hk_ss **link = &h->purge; *link != NULL; link = &(*link)->purge_next) {
        if (*link == ss) {
            *link = ss->purge_next;
            break;
        }
    }
    ss->in_purge = 0;
}

/* Free units a heap keeps committed whatever their age (2 MiB): steady
 * churn then costs no madvise and no page faults (the syscall budget); only
 * the excess of a real shrink goes back. */
#define PURGE_KEEP_UNITS 32u

static void purge_run(struct hk_heap *h, bool all)
{
    if (!all) {
        unsigned dirty = 0;
        for (struct hk_ss *ss = h->purge; ss != NULL; ss = ss->purge_next)
            dirty += (unsigned)__builtin_popcount(ss->free_units & ss->dirty_units);
        if (dirty <= PURGE_KEEP_UNITS)
            return;
    }
    uint64_t now = hk_os_now_ms();
    struct hk_ss **link = &h->purge;
    while (*link != NULL) {
        struct hk_ss *ss = *link;
        if (all || now - ss->purge_since_ms >= (uint64_t)hk_opt.decommit_delay_ms) {
            *link = ss->purge_next;
            ss->in_purge = 0;
            purge_units(ss);
        } else {
            link = &ss->purge_next;
        }
    }
}

/* Time-driven memory return, run on the heap's slab-level slow paths (there
 * is no background thread: an idle heap keeps what it has until it is used,
 * collected or its thread exits). */
static void heap_maintain(struct hk_heap *h)
{
    if (h->purge != NULL)
        purge_run(h, false);
    if (h->empty != NULL)
        empty_trim(h, false);
}

void hk_heap_tick(struct hk_heap *h)
{
    h->tick = HK_TICK;
    if (h->purge != NULL || h->empty != NULL)
        heap_maintain(h);
}

static void ss_unit_free(struct hk_heap *h, struct hk_ss *ss, uint32_t mask)
{
    ss->free_units |= mask;
    if (ss->free_units != 0xffffffffu) {
        if (!ss->in_avail)
            avail_push(h, ss);
        if (!ss->in_purge && (ss->dirty_units & mask)) {
            ss->in_purge = 1;
            ss->purge_since_ms = hk_os_now_ms();
            ss->purge_next = h->purge;
            h->purge = ss;
        }
        return;
    }
    if (ss->in_purge)
        purge_remove(h, ss);
    if (ss->in_avail)
        avail_remove(h, ss);
    ss->empty_since_ms = hk_os_now_ms();
    ss->next = h->empty;
    h->empty = ss;
    h->empty_count++;
}

static void slab_release(struct hk_heap *h, struct hk_slab *s)
{
    struct hk_ss *ss = s->ss;
    unsigned n = s->units;
    uint32_t mask = (n == 32 ? 0xffffffffu : ((1u << n) - 1)) << s->first_unit;
    if (s->in_partial)
        partial_remove(h, s);
    for (unsigned u = s->first_unit; u < s->first_unit + n; u++)
        ss->unit_slab[u] = &hk_slab_empty;
    ck_pr_store_64(&s->owner_tag, 0);
    ck_pr_sub_64(&hk_node_stats[ss->node].bytes_in_use, (uint64_t)n << HK_UNIT_SHIFT);  /* statistic */
    HK_STAT_INC(h, slab_release);
    if (hk_opt.decommit_delay_ms == 0) {
        uintptr_t base = (uintptr_t)ss + ((uintptr_t)s->first_unit << HK_UNIT_SHIFT);
        uintptr_t start = s->first_unit == 0 ? (uintptr_t)ss + HK_SS_HDR_SIZE : base;
        hk_os_decommit((void *)start, base + ((uintptr_t)n << HK_UNIT_SHIFT) - start);
        ss->dirty_units &= ~mask;
    }
    ss_unit_free(h, ss, mask);
    heap_maintain(h);
}

/* A slab whose blocks are all back: keep it if it is the current one. */
void hk_slab_empty_owner(struct hk_heap *h, struct hk_slab *s)
{
    if (h->cur[s->cls] != s)
        slab_release(h, s);
}

static unsigned find_run(uint32_t free, unsigned n)
{
    uint32_t m = free;
    for (unsigned k = 1; k < n; k++)
        m &= free >> k;
    return m ? (unsigned)__builtin_ctz(m) : HK_UNITS;
}

static struct hk_slab *slab_new(struct hk_heap *h, unsigned cls)
{
    unsigned n = hk_class_units[cls];
    heap_maintain(h);
    unsigned now_node = hk_numa_current_node();
    if (hk_unlikely(now_node != h->node)) {
        rehome(h, now_node);  /* the thread migrated: new slabs come from its new node */
        ck_pr_inc_64(&hk_node_stats[now_node].rehomes);  /* statistic: relaxed */
    }
    enum hk_numa_policy pol = hk_numa_policy();
    bool any_node = pol == HK_NUMA_INTERLEAVE || pol == HK_NUMA_OFF;
    unsigned want = pol == HK_NUMA_NODE ? hk_numa_pick_node(h->node) : h->node;
    for (struct hk_ss *ss = h->avail; ss != NULL; ss = ss->next) {
        if (!any_node && ss->node != want)
            continue;
        unsigned u = find_run(ss->free_units, n);
        if (u < HK_UNITS) {
            hk_slab_init_owner(h, ss, u, cls);
            if (ss->free_units == 0)
                avail_remove(h, ss);
            HK_STAT_INC(h, slab_new);
            return &ss->slabs[u];
        }
    }
    struct hk_ss **link = &h->empty, *ss = NULL;
    for (; *link != NULL; link = &(*link)->next) {
        if (any_node || (*link)->node == want) {
            ss = *link;
            *link = ss->next;
            h->empty_count--;
            break;
        }
    }
    if (ss == NULL) {
        /* Growing: first let an abandoned heap give back what waits in it
         * (lazy reclaim; its SuperSlabs may then come from the pool). */
        sweep_abandoned(4);
        ss = hk_ss_acquire(h, hk_numa_pick_node(h->node));
        if (ss == NULL)
            return NULL;
    }
    avail_push(h, ss);
    hk_slab_init_owner(h, ss, 0, cls);
    HK_STAT_INC(h, slab_new);
    return &ss->slabs[0];
}

/* ---- frees that reach the owner by the slow road ---- */

static void free_local_slow(struct hk_heap *h, struct hk_slab *s, struct hk_block *b)
{
    if (s->free_key != 0) {
        if (hk_unlikely(b->key == s->free_key)) {
            for (struct hk_block *x = s->local_free; x != NULL; x = x->next)
                if (x == b)
                    hk_fatal_ptr("free", "double free", b);
        }
        b->key = s->free_key;
    }
    b->next = s->local_free;
    s->local_free = b;
    s->used--;
    if (s->owner_tag & HK_SLAB_FULL)
        hk_slab_unfull_owner(s);
    if (h->cur[s->cls] != s && !s->in_partial)
        partial_push(h, s);
    if (s->used == 0)
        hk_slab_empty_owner(h, s);
}

static void inbox_process(struct hk_heap *h)
{
    /* batch_pop is one atomic exchange (the pushers' CAS released the
     * chains' links to it); we are the only consumer. */
    struct hk_block *b = (struct hk_block *)ck_stack_batch_pop_upmc(&h->inbox);
    while (b != NULL) {
        struct hk_block *next = b->next;
        struct hk_ss *ss = hk_ss_of(b);
        free_local_slow(h, ss->unit_slab[((uintptr_t)b >> HK_UNIT_SHIFT) & (HK_UNITS - 1)], b);
        b = next;
    }
}

/* Hand a chain of blocks of one slab to its owner. */
static void remote_push(struct hk_slab *s, struct hk_block *first, struct hk_block *last)
{
    if (hk_slab_push_remote_mpsc(s, first, last)) {
        /* We took the full slab's notification: the slab and its heap stay
         * put until the owner has seen these blocks. */
        hk_chain_push_upmc(&s->ss->heap->inbox, first, last);
    }
}

static void rbatch_flush(struct hk_heap *h)
{
    for (unsigned i = 0; i < HK_RBATCH_SLOTS; i++) {
        struct hk_rbatch *r = &h->rbatch[i];
        if (r->dest != NULL) {
            hk_chain_push_upmc(&r->dest->inbox, r->head, r->tail);
            r->dest = NULL;
            r->count = 0;
        }
    }
    h->rbatch_pending = 0;
}

/* A free of a block of another heap's slab (s, owned by `dest`). */
static struct hk_heap *thread_heap(void);

struct hk_heap *hk_heap_get(void)
{
    struct hk_heap *h = hk_tls_heap;
    if (hk_unlikely(h == &hk_heap_empty) && !tls_exited) {
        struct hk_heap *t = thread_heap();
        if (t != NULL)
            h = t;
    }
    return h;
}

void hk_free_remote(struct hk_heap *h, struct hk_slab *s, struct hk_heap *dest, struct hk_block *b)
{
    /* A thread that only frees (a consumer) gets a heap too: its frees are
     * then batched and counted like anyone's. */
    if (hk_unlikely(h == &hk_heap_empty))
        h = hk_heap_get();
    if (hk_unlikely(h == &hk_heap_empty)) {
        /* Thread teardown, after our destructor: the block goes straight to
         * its slab (the shared empty heap keeps no counters). */
        if (s->node != hk_numa_current_node())
            ck_pr_inc_64(&hk_node_stats[s->node].cross_node_frees);  /* statistic: relaxed */
        b->next = NULL;
        remote_push(s, b, b);
        return;
    }
    HK_STAT_INC(h, free_remote);
    HK_STAT_BYTES(h, small_bytes_freed, s->bsize);
    if (hk_unlikely(hk_opt.remote_batch <= 1)) {
        if (s->node != h->node)
            ck_pr_inc_64(&hk_node_stats[s->node].cross_node_frees);  /* statistic: relaxed */
        /* No batching: straight onto the slab's own remote list. */
        b->next = NULL;
        remote_push(s, b, b);
        return;
    }
    if (hk_unlikely(s->node != h->node))
        ck_pr_inc_64(&hk_node_stats[s->node].cross_node_frees);  /* statistic: relaxed */
    /* Batch per destination heap: one CAS per batch instead of one per
     * block, whatever slabs the blocks come from.  Direct-mapped by heap
     * address; a collision flushes the older batch. */
    struct hk_rbatch *r = &h->rbatch[((uintptr_t)dest >> 12) % HK_RBATCH_SLOTS];
    if (r->dest != dest) {
        if (r->dest != NULL)
            hk_chain_push_upmc(&r->dest->inbox, r->head, r->tail);
        r->dest = dest;
        r->head = r->tail = b;
        b->next = NULL;
        r->count = 1;
        h->rbatch_pending = 1;
    } else {
        b->next = r->head;
        r->head = b;
        if (++r->count >= (uint32_t)hk_opt.remote_batch) {
            hk_chain_push_upmc(&dest->inbox, r->head, r->tail);
            r->dest = NULL;
            r->count = 0;
        }
    }
}

void hk_free_slow(void *p, const char *fn)
{
    if (p == NULL)
        return;
    struct hk_ss *ss = hk_ss_of(p);
    if (hk_unlikely(!hk_ssmap_test((uintptr_t)ss))) {
        struct hk_ss *big = hk_large_lookup_big(p);
        if (big == NULL)
            hk_fatal_ptr(fn, "invalid pointer", p);
        ss = big;
    }
    struct hk_heap *h = hk_tls_heap;
    if (ss->kind == HK_SS_LARGE) {
        hk_large_free(ss, p, fn);
        h = hk_heap_get();  /* a thread that only frees is counted too */
        if (h != &hk_heap_empty)
            HK_STAT_INC(h, large_free);
        return;
    }
    struct hk_slab *s = ss->unit_slab[((uintptr_t)p >> HK_UNIT_SHIFT) & (HK_UNITS - 1)];
    if (hk_unlikely(s == &hk_slab_empty))
        hk_fatal_ptr(fn, "invalid pointer", p);
    struct hk_block *b = hk_slab_block_of(s, p, fn);
    uint64_t owner = ck_pr_load_64(&s->owner_tag) & ~HK_SLAB_FLAGS;
    if (owner == (uint64_t)(uintptr_t)h) {
        if (s->node != h->node)
            ck_pr_inc_64(&hk_node_stats[s->node].cross_node_frees);  /* statistic: relaxed */
        HK_STAT_INC(h, free_local);
        HK_STAT_BYTES(h, small_bytes_freed, s->bsize);
        free_local_slow(h, s, b);
    } else {
        hk_free_remote(h, s, (struct hk_heap *)(uintptr_t)owner, b);
    }
}

/* ---- allocation slow path ---- */

/* Make s usable: true when it has a free block.  Otherwise it is flagged
 * full, or a notification for it is in flight; either way it comes back
 * through free_local_slow when a block returns. */
static bool slab_try(struct hk_slab *s)
{
    if (hk_slab_refill_owner(s))
        return true;
    return !hk_slab_mark_full_owner(s) && hk_slab_refill_owner(s);
}

static struct hk_slab *class_refill(struct hk_heap *h, unsigned cls)
{
    struct hk_slab *s = h->cur[cls];
    if (s != &hk_slab_empty && slab_try(s))
        return s;
    while ((s = h->partial[cls]) != NULL) {
        partial_remove(h, s);
        set_cur(h, cls, s);
        if (slab_try(s))
            return s;
    }
    s = slab_new(h, cls);
    set_cur(h, cls, s ? s : &hk_slab_empty);
    return s != NULL && hk_slab_refill_owner(s) ? s : NULL;
}

static void *alloc_from(struct hk_heap *h, size_t size, bool zero)
{
    if (h->rbatch_pending)
        rbatch_flush(h);
    /* Every refill is a chance to hand back memory whose delay has passed:
     * a program that keeps running returns it even without slab turnover. */
    if (hk_unlikely(h->purge != NULL || h->empty != NULL))
        heap_maintain(h);
    if (ck_pr_load_ptr(&h->inbox.head) != NULL)
        inbox_process(h);
    if (size > HK_SMALL_MAX) {
        void *p = hk_large_alloc(size, 0, zero, h->node);
        if (p != NULL) {
            HK_STAT_INC(h, large_alloc);
            HK_STAT_INC(h, malloc);
        }
        return p;
    }
    unsigned cls = hk_size_class(size);
    struct hk_slab *s = class_refill(h, cls);
    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    struct hk_block *b = s->free;
    s->free = b->next;
    s->used++;
    HK_STAT_INC(h, malloc);
    HK_STAT_BYTES(h, small_bytes_alloc, s->bsize);
    if (zero) {
        if (s->free_is_zero)
            b->next = NULL;
        else
            memset(b, 0, size);
    }
    return b;
}

static void heap_abandon(struct hk_heap *h);

static struct hk_heap *thread_heap(void)
{
    hk_process_init();
    struct hk_heap *h = heap_acquire();
    if (h == NULL)
        return NULL;
    hk_tls_heap = h;
    /* After the TLS store: pthread_setspecific may itself call calloc. */
    pthread_setspecific(heap_key, h);
    return h;
}

void *hk_malloc_slow(struct hk_heap *h, size_t size, bool zero)
{
    if (hk_unlikely(size > PTRDIFF_MAX)) {
        errno = ENOMEM;
        return NULL;
    }
    if (hk_unlikely(h == &hk_heap_empty)) {
        if (hk_unlikely(tls_exited)) {
            /* Allocation during thread teardown, after our destructor ran:
             * borrow a heap for this one block and give it straight back. */
            hk_process_init();
            struct hk_heap *t = heap_acquire();
            if (t == NULL) {
                errno = ENOMEM;
                return NULL;
            }
            hk_tls_heap = t;
            void *p = alloc_from(t, size, zero);
            heap_abandon(t);
            return p;
        }
        h = thread_heap();
        if (h == NULL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    return alloc_from(h, size, zero);
}

/* ---- collection and thread exit ---- */

void hk_heap_collect(struct hk_heap *h, bool release_all)
{
    rbatch_flush(h);
    inbox_process(h);
    for (unsigned c = 0; c < HK_CLASSES; c++) {
        struct hk_slab *cur = h->cur[c];
        if (cur != &hk_slab_empty) {
            hk_slab_drain_remote_owner(cur);
            if (cur->used == 0) {
                set_cur(h, c, &hk_slab_empty);
                slab_release(h, cur);
            }
        }
        struct hk_slab *s = h->partial[c], *next;
        for (; s != NULL; s = next) {
            next = s->next;
            hk_slab_drain_remote_owner(s);
            if (s->used == 0)
                slab_release(h, s);
        }
    }
    if (release_all) {
        purge_run(h, true);
        empty_trim(h, true);
    } else {
        heap_maintain(h);
    }
}

static void heap_abandon(struct hk_heap *h)
{
    /* Everything free goes back: an abandoned heap may wait long for its
     * adopter (about 0.4 madvise per exiting thread under thread churn). */
    hk_heap_collect(h, true);
    /* Current slabs join the partial lists so the adopter finds them. */
    for (unsigned c = 0; c < HK_CLASSES; c++) {
        struct hk_slab *s = h->cur[c];
        set_cur(h, c, &hk_slab_empty);
        if (s != &hk_slab_empty && !(s->owner_tag & HK_SLAB_FULL))
            partial_push(h, s);
    }
    hk_tls_heap = &hk_heap_empty;
    tls_exited = true;
    ck_pr_store_32(&h->state, HK_HEAP_ABANDONED);
    /* The push's CAS releases all our writes to the heap to its adopter. */
    ck_stack_push_upmc(&abandoned, &h->abandon_entry);
}

/* Collect abandoned heaps for their absent owners: the remote frees waiting
 * in their inboxes go back to their slabs, and what is empty goes back to the
 * pools and the OS.  Looks at up to `looks` heaps of the registry, from a
 * shared cursor so that successive sweeps visit them all in turn; a heap is
 * swept only if we win it from ABANDONED (it stays in the abandoned stack,
 * where adopters leave it alone until we hand it back). */
static void sweep_abandoned(unsigned looks)
{
    for (unsigned i = 0; i < looks; i++) {
        struct hk_heap *seen = ck_pr_load_ptr(&sweep_cursor);
        struct hk_heap *h = seen != NULL ? seen : hk_heap_registry_head();
        if (h == NULL)
            return;
        /* Advance the cursor (NULL: start again at the head); losing the
         * race only means two sweeps look at the same heap, and one of them
         * wins it. */
        ck_pr_cas_ptr(&sweep_cursor, seen, h->all_next);
        if (!ck_pr_cas_32(&h->state, HK_HEAP_ABANDONED, HK_HEAP_SWEEPING))
            continue;
        hk_heap_collect(h, true);
        ck_pr_fence_store();  /* our writes to the heap before the next user's CAS */
        ck_pr_store_32(&h->state, HK_HEAP_ABANDONED);
    }
}

static void thread_exit_cb(void *arg)
{
    struct hk_heap *h = arg;
    if (h != NULL && h == hk_tls_heap)
        heap_abandon(h);
}

/* Called once the NUMA topology is known (from the library constructor,
 * usually before any other thread exists): the caller's SuperSlabs, made
 * while every node looked like node 0 and bound to nothing, are labelled,
 * bound and moved as the policy says, and the heap homes on its real node. */
void hk_heap_numa_ready(void)
{
    struct hk_heap *h = hk_tls_heap;
    if (h == &hk_heap_empty || hk_numa_node_count() == 1)
        return;
    unsigned home = hk_numa_current_node();
    for (struct hk_ss *ss = hk_ss_registry_head(); ss != NULL; ss = ss->all_next) {
        if (ck_pr_load_ptr(&ss->heap) != h || ss->kind != HK_SS_SMALL)
            continue;
        unsigned from = ss->node, to = hk_numa_pick_node(home);
        uint64_t in_use = 0;
        for (unsigned u = 0; u < HK_UNITS; u++) {
            struct hk_slab *s = ss->unit_slab[u];
            if (s == &ss->slabs[u]) {
                in_use += (uint64_t)s->units << HK_UNIT_SHIFT;
                s->node = (uint8_t)to;
            }
        }
        ss->node = to;
        hk_numa_bind(ss, HK_SS_SIZE, to);
        /* Statistics move with it (relaxed adds). */
        ck_pr_dec_64(&hk_node_stats[from].superslabs);
        ck_pr_inc_64(&hk_node_stats[to].superslabs);
        ck_pr_sub_64(&hk_node_stats[from].bytes_committed, HK_SS_SIZE);
        ck_pr_add_64(&hk_node_stats[to].bytes_committed, HK_SS_SIZE);
        ck_pr_sub_64(&hk_node_stats[from].bytes_in_use, in_use);
        ck_pr_add_64(&hk_node_stats[to].bytes_in_use, in_use);
    }
    rehome(h, home);
}

void hak_collect(void)
{
    struct hk_heap *h = hk_tls_heap;
    if (h != &hk_heap_empty)
        hk_heap_collect(h, true);
    unsigned heaps = 0;
    for (struct hk_heap *x = hk_heap_registry_head(); x != NULL; x = x->all_next)
        heaps++;
    sweep_abandoned(heaps + 1);
}
