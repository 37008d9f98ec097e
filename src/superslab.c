/* SuperSlab life cycle: made from OS chunks, owned by one heap at a time,
 * returned empty to the pool of the node their memory is bound to. */
#include "hk_superslab.h"
#include "hk_os.h"
#include "hk_numa.h"
#include "hk_heap.h"
#include "hk_large.h"
#include <string.h>

uint8_t hk_ssmap_none[(size_t)1 << HK_SSMAP_LEAF_BITS];
uintptr_t hk_ssmap_top[(size_t)1 << (HK_SSMAP_BITS - HK_SSMAP_LEAF_BITS)];

/* One pool per node.  pop_mpmc reads head->next of an entry another thread
 * may pop at the same time: safe because pool SuperSlabs stay mapped forever
 * (only their bodies are decommitted), and its generation counter stops ABA. */
static ck_stack_t pools[HK_MAX_NODES] __attribute__((aligned(16))) = {
    [0 ... HK_MAX_NODES - 1] = HK_STACK_MPMC_INIT,
};
_Static_assert(sizeof(ck_stack_t) == 16, "ck_stack_t is a double-width CAS target");

static struct hk_ss *registry;

#define SSMAP_LEAF_SIZE ((size_t)1 << HK_SSMAP_LEAF_BITS)

/* A leaf mapped ahead.  A mapping that opens a new range of addresses
 * (2^16 SuperSlabs: 128 GiB) needs a leaf as well, so at vm.max_map_count
 * a large block took two mappings where glibc's takes one, and with one
 * to spare it failed.  tests/large_moves spans about 600 MiB of addresses,
 * so about one run in 200 crosses a range: likely what failed a CI run in
 * the 6.1 VM.  The spare is taken instead, and another mapped after the
 * block's own mapping, when there may be none left.  Kernel-zeroed and
 * never written while spare: address space, no memory. */
static void *spare_leaf;

static void *leaf_map(void)
{
    return hk_os_map_aligned(SSMAP_LEAF_SIZE, HK_PAGE_SIZE);
}

static void spare_put(void *m)
{
    /* A CAS loser's leaf is as untouched as a fresh one; with a spare
     * there already, it goes back. */
    if (!ck_pr_cas_ptr(&spare_leaf, NULL, m))
        hk_os_unmap(m, SSMAP_LEAF_SIZE);
}

bool hk_ssmap_reserve(uintptr_t a)
{
    uintptr_t *top = &hk_ssmap_top[(a >> HK_SS_SHIFT) >> HK_SSMAP_LEAF_BITS];
    if (ck_pr_load_64(top) != 0)
        return true;
    /* The swap hands the spare to one taker; its zeroes need no ordering. */
    void *m = ck_pr_fas_ptr(&spare_leaf, NULL);
    if (m == NULL && (m = leaf_map()) == NULL)
        return false;
    /* The CAS installs the (zero) leaf; a loser keeps its own as the
     * spare.  Readers depend on the address they load. */
    if (!ck_pr_cas_64(top, 0, (uintptr_t)m - (uintptr_t)hk_ssmap_none)) {
        spare_put(m);
        return true;
    }
    /* Relaxed: a stale non-NULL only skips the refill, done at the next
     * install. */
    if (ck_pr_load_ptr(&spare_leaf) == NULL && (m = leaf_map()) != NULL)
        spare_put(m);
    return true;
}

void hk_ssmap_set(uintptr_t a, bool on)
{
    uintptr_t i = a >> HK_SS_SHIFT, leaf = ck_pr_load_64(&hk_ssmap_top[i >> HK_SSMAP_LEAF_BITS]);
    if (leaf == 0)
        return;  /* never marked: nothing to clear */
    /* A plain byte store: the pointer hand-off that follows orders it for
     * readers (see hk_ssmap_test). */
    ck_pr_store_8((uint8_t *)((uintptr_t)hk_ssmap_none + leaf + (i & (SSMAP_LEAF_SIZE - 1))), on ? 1 : 0);
}

void hk_ss_register(struct hk_ss *ss)
{
    struct hk_ss *head;
    /* Push-only list: a release CAS publishes the initialised header to walkers. */
    do {
        head = ck_pr_load_ptr(&registry);
        ss->all_next = head;
        ck_pr_fence_store();
    } while (!ck_pr_cas_ptr(&registry, head, ss));
}

struct hk_ss *hk_ss_registry_head(void)
{
    struct hk_ss *h = ck_pr_load_ptr(&registry);
    ck_pr_fence_load();  /* pairs with the store fence in hk_ss_register */
    return h;
}

static void ss_reset(struct hk_ss *ss, struct hk_heap *heap)
{
    ck_pr_store_32(&ss->kind, HK_SS_SMALL);  /* the statistics read it (stats.c: placement) */
    ck_pr_store_ptr(&ss->heap, heap);  /* read by any thread's free */
    ss->free_units = 0xffffffffu;
    ss->dirty_units = 0;
    ss->block_units = 0;
    ss->in_avail = 0;
    ss->prev = ss->next = NULL;
    ss->empty_since_ms = 0;
    ss->in_purge = 0;
    ss->purge_next = NULL;
    ck_pr_store_32(&ss->live, 1);
}

/* Committed bytes in or out of the process's count and the node's. */
static void account(unsigned node, int64_t bytes)
{
    hk_os_account(bytes);
    /* Statistic: relaxed; a negative delta wraps to the subtraction. */
    ck_pr_add_64(&hk_node_stats[node].bytes_committed, (uint64_t)bytes);
}

static struct hk_ss *pool_ss(ck_stack_entry_t *e)
{
    return (struct hk_ss *)((char *)e - offsetof(struct hk_ss, pool_entry));
}

/* Uncommits under way (low half) and ended (high half, wrapping: two
 * reads 2^32 uncommits apart are never compared).  While one holds a
 * node's pool, the pool is empty to the others (hk_ss_pool_uncommit), who
 * wait for it to end before they give up.  In the process's page that a
 * fork's child gets zeroed: the parent's uncommits were not copied, and a
 * child waiting for them would wait for good; where there is no such
 * page, nobody waits (as before helper 57).  Nor does a signal handler's
 * allocation in the middle of its thread's own uncommit. */
#define UNCOMMIT_BUSY 0xffffffffu
#define UNCOMMIT_ENDED ((uint64_t)1 << 32)
static __thread bool tls_uncommitting __attribute__((tls_model("initial-exec")));

static uint64_t *uncommits(void)
{
    return tls_uncommitting ? NULL : hk_process_word(HK_PROC_UNCOMMITS);
}

/* A SuperSlab of node's pool with its body memory; NULL when the pool is
 * empty, or (*refused set, if given) when the kernel would not make a
 * reserved body memory again (it goes back). */
static struct hk_ss *pool_pop(unsigned node, bool *refused)
{
    ck_stack_entry_t *e = ck_stack_pop_mpmc(&pools[node]);
    if (e == NULL)
        return NULL;
    struct hk_ss *ss = pool_ss(e);
    if (ss->body_reserved) {
        if (!hk_os_recommit((char *)ss + HK_SS_HDR_SIZE, HK_SS_SIZE - HK_SS_HDR_SIZE)) {
            ck_stack_push_upmc(&pools[node], &ss->pool_entry);
            if (refused != NULL)
                *refused = true;
            return NULL;
        }
        ss->body_reserved = 0;
        hk_numa_bind(ss, HK_SS_SIZE, node);  /* the body was a new mapping, unbound */
    }
    return ss;
}

/* A chunk from the OS made a SuperSlab of node's; NULL when refused. */
static struct hk_ss *fresh(unsigned node)
{
    struct hk_ss *ss = hk_os_ss_chunk();
    if (ss == NULL)
        return NULL;
    if (!hk_ssmap_reserve((uintptr_t)ss)) {
        hk_os_unmap(ss, HK_SS_SIZE);  /* never claimed again: the arena hands out each chunk once */
        return NULL;
    }
    hk_ssmap_set((uintptr_t)ss, true);
    hk_numa_bind(ss, HK_SS_SIZE, node);
    ss->node = node;
    HK_TSAN_STACK_ENTRY(&ss->pool_entry);
    for (unsigned u = 0; u < HK_UNITS; u++)
        ss->unit_slab[u] = &hk_slab_empty;
    hk_ss_register(ss);
    /* Its header is memory from now on, pooled too (the pops read it). */
    account(node, (int64_t)HK_SS_HDR_SIZE);
    return ss;
}

/* The pool first, else a chunk; also when the kernel refused a pooled
 * body: mprotect, which makes it memory again, is checked against
 * RLIMIT_DATA for the whole body, but a chunk mapped over its arena's
 * reservation only for what it adds beyond the pages it replaces, of any
 * protection: nothing, so it passes unless the process is over the limit
 * already, and the last chunk before the limit takes it past (seen on
 * Linux 6.18: 696 KiB over a 64 MiB limit, tests/uncommit_race). */
static struct hk_ss *take(unsigned node)
{
    struct hk_ss *ss = pool_pop(node, NULL);
    return ss != NULL ? ss : fresh(node);
}

/* The pool once no uncommit holds it: NULL only if it was empty at a
 * moment when none was under way (or the kernel refused its body).  The
 * count is read before the pop and after: an uncommit that held the pool
 * at the pop had begun by then, and either still runs at the second read
 * or ended between the two (the acquire fences order the reads around the
 * pop's; the uncommit's full fence orders its add before its pops). */
static struct hk_ss *pool_settled(unsigned node)
{
    uint64_t *u = uncommits();
    for (unsigned n = 0;;) {
        uint64_t before = u != NULL ? ck_pr_load_64(u) : 0;
        ck_pr_fence_load();
        bool refused = false;
        struct hk_ss *ss = pool_pop(node, &refused);
        if (ss != NULL || refused)
            return ss;
        ck_pr_fence_load();
        if (u == NULL || ((before & UNCOMMIT_BUSY) == 0 && ck_pr_load_64(u) == before))
            return NULL;
        hk_os_wait_step(&n);
    }
}

/* The kernel refused: the large blocks' cache may hold the address space
 * (RLIMIT_AS), the commit charge or the mappings a chunk needs; then the
 * pools' bodies the commit charge or RLIMIT_DATA (after the cache: their
 * re-mapping takes mappings, hk_large_alloc).  Last, the pool once more:
 * another thread's uncommit may have held it when this one looked (helper
 * 57: a thread refused then got NULL though the pool was not empty). */
static __attribute__((noinline)) struct hk_ss *acquire_refused(unsigned node)
{
    struct hk_ss *ss = NULL;
    if (hk_large_cache_flush() != 0)
        ss = take(node);
    if (ss == NULL && hk_ss_pool_uncommit() != 0)
        ss = take(node);
    return ss != NULL ? ss : pool_settled(node);
}

struct hk_ss *hk_ss_acquire(struct hk_heap *heap, unsigned node)
{
    struct hk_ss *ss = take(node);
    if (ss == NULL && (ss = acquire_refused(node)) == NULL)
        return NULL;
    ss_reset(ss, heap);
    heap->own[hk_own_slot(ss)] = ss;
    ck_pr_inc_64(&hk_node_stats[node].superslabs);  /* statistic: relaxed */
    return ss;
}

/* Counts an uncommit that began at `began` ended, after the last push,
 * and waits for the others under way: how many others ended meanwhile. */
static unsigned uncommit_end(uint64_t *u, uint64_t began)
{
    /* Ended after the last push: the release fence makes the pool whole
     * again for whoever reads the end (pool_settled's acquire fences). */
    ck_pr_fence_release();
    /* None under way: a fork's child of the process this one counted in
     * (a signal handler forked in the middle, and the child went on here),
     * whose copy of the word was wiped.  Nothing of ours to end, and an
     * add would leave one under way for good (helper 60: the child hung
     * here, and its later refusals in pool_settled).  The CAS is the add
     * otherwise, as fenced as it. */
    uint64_t now = ck_pr_load_64(u);
    while ((now & UNCOMMIT_BUSY) != 0 && !ck_pr_cas_64_value(u, now, now + UNCOMMIT_ENDED - 1, &now))
        ;
    if ((now & UNCOMMIT_BUSY) == 0)
        return 0;
    now += UNCOMMIT_ENDED - 1;
    for (unsigned w = 0; (now & UNCOMMIT_BUSY) != 0; now = ck_pr_load_64(u))
        hk_os_wait_step(&w);  /* relaxed reads: only the count matters, the caller maps anew */
    return (uint32_t)((now >> 32) - (began >> 32) - 1);
}

/* A decommitted body still counts against RLIMIT_DATA (and, under strict
 * overcommit, the commit charge): a program that filled its limit with
 * small blocks and freed them all could get no mapping at all afterwards,
 * not even for one large block (helper 52: 64 MiB limit, 56,808 blocks of
 * 1000 B freed and trimmed, then malloc of 3 MiB NULL; glibc gave 40 MiB).
 * Called only when the kernel refuses memory, so the pools cost no system
 * call otherwise.  The pool is taken whole and put back: an entry popped
 * is ours alone, and the header, which the pops read, stays memory.  An
 * acquirer that finds the pool empty meanwhile waits for the uncommits to
 * end before it gives up (pool_settled), and so does an uncommit, whose
 * caller's mapping may need what another one is giving back: nonzero
 * return when bodies became reservations, by this call or another that
 * ended while it ran. */
unsigned hk_ss_pool_uncommit(void)
{
    uint64_t *u = uncommits();
    bool nested = tls_uncommitting;
    /* Marked from before the count goes up until it is down and the
     * others' ended: a signal handler's allocation, refused, between the
     * add and the mark waited in the handler for this uncommit to end,
     * which it could not until the handler returned (a hang, helper 60:
     * tests/uncommit_signal).  The handler runs on this thread: the
     * compiler barrier is the only order it needs. */
    tls_uncommitting = true;
    ck_pr_barrier();
    /* Under way before the first pop: the full fence orders the add
     * before the pops' CASes for pool_settled's second read. */
    uint64_t began = u != NULL ? ck_pr_faa_64(u, 1) : 0;
    ck_pr_fence_memory();
    unsigned n = 0;
    for (unsigned node = 0; node < HK_MAX_NODES; node++) {
        ck_stack_entry_t *taken = NULL, *e;
        /* The pop's CAS acquires what the pushing release made (the
         * header, body_reserved), as pool_pop's does. */
        while ((e = ck_stack_pop_mpmc(&pools[node])) != NULL) {
            struct hk_ss *ss = pool_ss(e);
            if (!ss->body_reserved && hk_os_uncommit((char *)ss + HK_SS_HDR_SIZE, HK_SS_SIZE - HK_SS_HDR_SIZE)) {
                ss->body_reserved = 1;
                n++;
            }
            e->next = taken;
            taken = e;
        }
        while ((e = taken) != NULL) {
            taken = e->next;
            /* The push's CAS releases body_reserved to the next popper. */
            ck_stack_push_upmc(&pools[node], e);
        }
    }
    unsigned others = u != NULL ? uncommit_end(u, began) : 0;
    ck_pr_barrier();  /* the mark cleared after uncommit_end's wait */
    tls_uncommitting = nested;
    return n + others;
}

/* Units of mask, without unit 0's header. */
static uint64_t units_bytes(uint32_t mask)
{
    return ((uint64_t)__builtin_popcount(mask) << HK_UNIT_SHIFT) - ((mask & 1u) != 0 ? HK_SS_HDR_SIZE : 0);
}

uint64_t hk_ss_committed(const struct hk_ss *ss)
{
    return HK_SS_HDR_SIZE + units_bytes(ss->dirty_units);
}

void hk_ss_account_units(struct hk_ss *ss, uint32_t mask, bool committed)
{
    if (mask != 0)
        account(ss->node, committed ? (int64_t)units_bytes(mask) : -(int64_t)units_bytes(mask));
}

void hk_ss_release(struct hk_ss *ss)
{
    unsigned node = ss->node;
    struct hk_heap *heap = ss->heap;  /* the caller is its owner (or holds its claim) */
    if (heap->own[hk_own_slot(ss)] == ss)
        heap->own[hk_own_slot(ss)] = HK_OWN_NONE;
    ck_pr_store_32(&ss->live, 0);
    ck_pr_store_ptr(&ss->heap, NULL);
    hk_os_decommit((char *)ss + HK_SS_HDR_SIZE, HK_SS_SIZE - HK_SS_HDR_SIZE);
    account(node, -(int64_t)units_bytes(ss->dirty_units));  /* not the header (fresh) */
    ck_pr_dec_64(&hk_node_stats[node].superslabs);  /* statistic: relaxed */
    /* The push's CAS releases the header writes above to the next popper. */
    ck_stack_push_upmc(&pools[node], &ss->pool_entry);
}
