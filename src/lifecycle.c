/* A heap's life cycle: the process's first call, heaps made or adopted
 * for new threads, handed back at thread exit, swept while their threads
 * are gone, and collected (hak_collect).  The heap's allocation paths are in
 * heap.c. */
#include "hakmem.h"
#include "hk_heap_int.h"
#include "hk_api.h"
#include "hk_slab.h"
#include "hk_large.h"
#include "hk_os.h"
#include "hk_options.h"
#include "hk_numa.h"
#include <pthread.h>
#include <unistd.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <errno.h>
#include <limits.h>
#include <time.h>

/* Set once this thread's heap was handed back at thread exit. */
static __thread bool tls_exited __attribute__((tls_model("initial-exec")));

/* Heaps of exited threads, one stack per NUMA node (the heap's), each
 * adopted most recent first (warm memory), a new thread's node first: a
 * heap adopted across nodes re-homes, its memory on the old node of no use
 * to the new thread (a thread churn of 400 on a 2-node topology made 135
 * OS calls where one node made none).  Each stack only ever sees
 * push_upmc and pop_mpmc.  Older heaps do not wait for an adopter to get
 * their memory back: growing threads and hak_collect sweep them
 * (hk_sweep_abandoned). */
static ck_stack_t abandoned[HK_MAX_NODES] __attribute__((aligned(16))) = {
    [0 ... HK_MAX_NODES - 1] = HK_STACK_MPMC_INIT
};

_Static_assert(sizeof(ck_stack_t) == 16, "each stack 16-aligned in the array: pop_mpmc's double-width CAS");

static void push_abandoned(struct hk_heap *h)
{
    ck_stack_push_upmc(&abandoned[h->node], &h->abandon_entry);
}

static struct hk_heap *sweep_cursor;  /* next registry entry a sweep looks at */
static struct hk_heap *heap_registry;
static pthread_key_t heap_key;
/* Heaps made, and the count at which a thread that finds no abandoned heap
 * looks for gone threads' heaps first (reap_and_pop). */
static uint32_t heaps_made, reap_at;
static unsigned init_state;  /* 0 new, 1 initialising, 2 ready */
/* This process's id (proc_id), in a page the kernel clears in a fork's
 * child (MADV_WIPEONFORK); NULL where it cannot (Linux before 4.14). */
static uint64_t *proc_page;

static void thread_exit_cb(void *arg);
static uint32_t process_id(void);

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
        hk_sent_key = (hk_cookie & ~(uintptr_t)1) | ((uintptr_t)1 << 63);
        hk_rc_key = hk_next_key(hk_sent_key) | ((uintptr_t)1 << 63);
        pthread_key_create(&heap_key, thread_exit_cb);
        int saved = errno;  /* EINVAL before Linux 4.14: malloc leaves errno alone when it succeeds */
        uint64_t *page = hk_os_map_aligned(HK_PAGE_SIZE, HK_PAGE_SIZE);
        if (page != NULL && madvise(page, HK_PAGE_SIZE, MADV_WIPEONFORK) == 0)
            proc_page = page;
        else if (page != NULL)
            hk_os_unmap(page, HK_PAGE_SIZE);
        errno = saved;
        ck_pr_fence_store();
        ck_pr_store_uint(&init_state, 2);
        return;
    }
    for (unsigned n = 0; ck_pr_load_uint(&init_state) != 2;)
        hk_os_wait_step(&n);
    ck_pr_fence_load();
}

/* An id of this process that no other process has, not even one that got
 * its pid after it was gone: the pid with the time of the first look, made
 * afresh in each fork's child, whose copy of the page is zero.  A process
 * whose ids a fork copied is told from its child, which may get a gone
 * ancestor's pid: with pids, a grandchild that did took the heap its own
 * main thread used (stamped by the ancestor's thread that forked) for a
 * gone thread's, and handed a block to two threads (helper 39).  The pid
 * alone where the kernel cannot wipe the page: sweeps' fork checks then
 * have their old weakness, and no heap is reaped (reap_gone). */
static uint64_t proc_id(void)
{
    uint64_t *p = proc_page;
    if (p == NULL)
        return (uint64_t)process_id();
    uint64_t id = ck_pr_load_64(p);
    if (hk_likely(id != 0))
        return id;
    struct timespec ts;
    hk_os_clock(CLOCK_MONOTONIC, &ts);
    uint64_t mine = ((uint64_t)process_id() << 32 ^ ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec)) | 1;
    /* The first of the child's threads to look sets it; the rest take it. */
    return ck_pr_cas_64_value(p, 0, mine, &id) ? mine : id;
}

uint64_t *hk_process_word(unsigned slot)
{
    return proc_page != NULL ? &proc_page[slot] : NULL;
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
    for (unsigned i = 0; i <= HK_LUT_MAX >> HK_LUT_SHIFT; i++)
        h->direct[i] = &hk_slab_empty;
    for (unsigned i = 0; i < HK_OWN_SLOTS; i++)
        h->own[i] = h->seen[i] = HK_OWN_NONE;
    for (unsigned c = 0; c < HK_LUT_CLASSES; c++) {
        struct hk_slab *rc = &h->rc[c];
        rc->bsize = hk_class_size[c];
        rc->cls = (uint8_t)c;
        hk_rcache_set_cap(rc, (uint16_t)hk_opt.remote_cache);
        rc->free_key = hk_mark_key(hk_rc_key);
        rc->used = HK_RC_EMPTY;
        rc->ticks = HK_TICK_BASE;
    }
    h->tick = HK_TICK;
    HK_TSAN_STACK_ENTRY(&h->abandon_entry);
    h->remote_node = hk_opt.remote_batch <= 1 ? HK_NODE_NONE : h->node;
    struct hk_heap *head;
    do {
        head = ck_pr_load_ptr(&heap_registry);
        h->all_next = head;
        ck_pr_fence_store();  /* publish the initialised heap to stats walkers */
    } while (!ck_pr_cas_ptr(&heap_registry, head, h));
    ck_pr_inc_32(&heaps_made);  /* a count: rations reap_gone */
    return h;
}

static struct hk_heap *heap_of_entry(ck_stack_entry_t *e)
{
    return e ? (struct hk_heap *)((char *)e - offsetof(struct hk_heap, abandon_entry)) : NULL;
}

/* CAS h's state from `from` to `to`, waiting while another thread holds
 * the heap (SWEEPING: a sweep, a reaper's claim), for `steps` wait steps
 * at most (UINT_MAX: for good): 1 once it is ours, -1 if it was still
 * held, 0 if the holder was our parent's, caught by fork: its thread does
 * not exist here and the heap stays as it left it (the wait hung a forked
 * child's new threads for good).  The holder fenced its process id before
 * its CAS, and we fence the state we read before the id: seeing the state
 * it wrote, we see the id. */
static int state_cas_waiting(struct hk_heap *h, uint32_t from, uint32_t to, unsigned steps)
{
    unsigned n = 0;
    while (!ck_pr_cas_32(&h->state, from, to)) {
        ck_pr_fence_load();
        if (ck_pr_load_64(&h->sweep_proc) != proc_id())
            return 0;
        if (n >= steps)
            return -1;
        hk_os_wait_step(&n);
    }
    return 1;
}

/* Make h, just popped from the abandoned stack, ours (1), or say it is
 * lost to us (0) or still held by a sweep (-1).  The CAS makes us the
 * heap's only user against a sweeper's CAS.  A sweep holds the heap a
 * moment: we wait for it rather than make a new heap, as threads freeing
 * into exited heaps sweep them now and then (hk_heap_handed): taking
 * another then grew the heaps without bound under thread churn (900 in
 * 15,000 threads, 8 at a time).  A while only, as for a look
 * (wait_for_look): a sweeper stopped by a debugger, or blocked in a signal
 * handler, held the thread that popped the heap for as long (helper
 * 59); the caller puts the heap back. */
static int claim_abandoned(struct hk_heap *h)
{
    /* Held (SWEEPING), not ACTIVE, until heap_acquire has set our ids: an
     * ACTIVE heap with its last owner's ids, or none, let a reaper whose
     * probe came before our claim take it, or put ACTIVE back over the
     * state of whoever held it next (helper 40).  A heap a sweep of our
     * parent's holds is lost to the child, like the parent's other
     * threads' heaps. */
    int got = state_cas_waiting(h, HK_HEAP_ABANDONED, HK_HEAP_SWEEPING, 128);
    if (got > 0)
        ck_pr_fence_load();  /* the last holder's writes to the heap (it fenced them before the state) */
    return got;
}

/* Take an abandoned heap for a new thread, of its node if there is one;
 * NULL when there is none.  A heap a sweep still holds goes back to its
 * stack once we have looked past it (pushed at once, the next pop would
 * find it again); after a second such one, the rest of that stack waits
 * for later threads.  Only the popper pushes a heap back: it is in no
 * stack meanwhile. */
static struct hk_heap *pop_abandoned(void)
{
    unsigned nodes = hk_numa_node_count(), here = nodes > 1 ? hk_numa_current_node() : 0;
    for (unsigned i = 0; i < nodes; i++) {
        struct hk_heap *held = NULL, *h;
        /* pop_mpmc's generation counter makes the pop ABA-safe; heaps are
         * never unmapped, so reading an entry's next link is always safe. */
        while ((h = heap_of_entry(ck_stack_pop_mpmc(&abandoned[(here + i) % nodes]))) != NULL) {
            int got = claim_abandoned(h);
            if (got > 0)
                break;
            if (got < 0 && held != NULL) {
                push_abandoned(h);
                h = NULL;
                break;
            }
            if (got < 0)
                held = h;
        }
        if (held != NULL)
            push_abandoned(held);
        if (h != NULL)
            return h;
    }
    return NULL;
}

/* The calling thread's kernel id; through syscall(), which allocates
 * nothing (glibc's gettid wrapper is as safe, but newer than some libcs). */
static uint32_t thread_id(void)
{
    return (uint32_t)syscall(SYS_gettid);
}

/* Ours, by the system call too: a preloaded library may replace getpid and
 * allocate in it (libfaketime: every program crashed, helper 50). */
static uint32_t process_id(void)
{
    return (uint32_t)syscall(SYS_getpid);
}

/* Thread tid of process pid has exited: tgkill's probe (signal 0) finds no
 * such thread.  The kernel tells so only once the thread runs no more
 * code.  A tid reused by a new thread reads as alive: a heap kept, never
 * one taken from a live thread. */
static bool thread_gone(uint32_t pid, uint32_t tid)
{
    ck_pr_inc_64(&hk_os_stats.tgkill);  /* statistic: relaxed */
    return syscall(SYS_tgkill, (pid_t)pid, (pid_t)tid, 0) != 0 && errno == ESRCH;
}

static void heap_hand_back(struct hk_heap *h);

/* h's owner, by the ids heap_acquire set, is a thread of this process
 * (proc, pid) that is gone.  Not a heap without an owner (tid 0).  The pid
 * too: a child made with CLONE_VM (vfork) shares the page of proc_id, and
 * its pid would make every thread of its parent read as gone (helper 40). */
static bool owner_gone(const struct hk_heap *h, uint64_t proc, uint32_t pid)
{
    uint32_t tid = ck_pr_load_32(&h->owner_tid);
    return tid != 0 && ck_pr_load_64(&h->owner_proc) == proc && ck_pr_load_32(&h->owner_pid) == pid &&
           thread_gone(pid, tid);
}

/* Heaps a look probes of the pass (reap_cursor), after at most HK_RECENT
 * of the latest takes (recent): 48 in all.  A probe is a system call
 * (about 1.4 us for a live thread), made inside a new thread's first
 * malloc or a growing thread's, and a look over every heap cost that call
 * the whole registry (1,200 live threads: 3.3 ms of CPU, 15 ms on a
 * loaded machine; bench/tail --scenario gone).  A pass over the registry is a series of looks, each
 * going on where the last stopped. */
#define HK_LOOK_PROBES 32
#define HK_RECENT 16

/* The heap the next look starts at; NULL: the registry's head, a new
 * pass.  Two looks at once (a sweep's and a starter's, or starters' when
 * heaps grow past reap_at during a look) may probe a heap twice or pass
 * some over until the next pass: a reap comes later, never a wrong one, as
 * each heap is claimed by its own CAS.  Any value is a heap to walk on
 * from: heaps are never unmapped, and their links never change. */
static struct hk_heap *reap_cursor;

/* The heaps the latest HK_RECENT takes took (heap_acquire), which each
 * look probes first: a thread gone without handing its heap back took it
 * in its last moments (reap_gone), so its heap is most often among them.
 * With the pass alone, a look that found none let its starter make a heap,
 * which the next such thread took and left (tests/gone_threads, 160 live
 * threads: 91 heaps made in 1,000 such exits, 40 in 200; with these, 1-4
 * in 200 among 300).  Relaxed: a hint; a heap's state and ids are read
 * atomically, and its claim's CAS orders the rest. */
static struct hk_heap *recent[HK_RECENT];
static unsigned recent_n;

enum reap { REAP_SKIPPED, REAP_PROBED, REAP_REAPED };

/* One heap for reap_gone: skipped (ours, or not active: no probe), probed
 * (its owner lives, or another thread holds the heap), or reaped: its
 * owner is gone, and it is abandoned for them.  *pid: 0 until the first
 * probe needs it (no system call for a process whose only heap is ours). */
static enum reap reap_one(struct hk_heap *h, uint64_t proc, uint32_t *pid)
{
    if (h == hk_tls_heap || ck_pr_load_32(&h->state) != HK_HEAP_ACTIVE)
        return REAP_SKIPPED;
    if (*pid == 0)
        *pid = process_id();
    if (!owner_gone(h, proc, *pid))
        return REAP_PROBED;
    /* Before the claim, as a sweep's: an owner that finds the heap held
     * tells our process's claim from one fork left behind. */
    ck_pr_store_64(&h->sweep_proc, proc);
    ck_pr_fence_store();
    if (!ck_pr_cas_32(&h->state, HK_HEAP_ACTIVE, HK_HEAP_SWEEPING))
        return REAP_PROBED;
    ck_pr_fence_load();  /* the owner ids set before the state we took (heap_acquire) */
    /* Between the probe and the CAS the heap may have been handed back and
     * adopted: the thread the ids name now is the one to probe.  If it
     * lives, the state goes back (we changed nothing of the heap); its
     * owner waits for that to hand it back (hk_heap_abandon), so this
     * thread's exit cannot pass for the gone one's. */
    if (!owner_gone(h, proc, *pid)) {
        ck_pr_cas_32(&h->state, HK_HEAP_SWEEPING, HK_HEAP_ACTIVE);
        return REAP_PROBED;
    }
    heap_hand_back(h);
    ck_pr_fence_store();  /* our writes to the heap before the state */
    ck_pr_store_32(&h->state, HK_HEAP_ABANDONED);
    push_abandoned(h);
    return REAP_REAPED;
}

/* Abandon, for their owners, heaps whose threads are gone without handing
 * them back: a thread whose first call into hakmem came in the last round
 * of its TSD destructors or after them (more than HK_HEAPLESS_FREES of
 * glibc's late frees), or one not made by pthread_create.  No destructor
 * runs for such a heap: it stayed active with no thread, never adopted or
 * swept.  Only heaps of this process: after fork the parent's other
 * threads' heaps stay as fork caught them, maybe in the middle of a change.
 * With `recent_first`, the latest takes' heaps first.  Then, if those had
 * none, up to `probes` heaps of the registry from *from (NULL: its head),
 * leaving there the heap to go on from, NULL at the registry's end.
 * Returns how many it abandoned. */
static unsigned reap_gone(bool recent_first, struct hk_heap **from, unsigned probes)
{
    if (proc_page == NULL) {
        *from = NULL;
        return 0;  /* no id that fork renews: a child could take a live heap */
    }
    int saved = errno;  /* malloc leaves errno alone when it succeeds */
    uint32_t pid = 0;
    uint64_t proc = proc_id();
    unsigned n = 0;
    for (unsigned i = 0; recent_first && i < HK_RECENT; i++) {
        struct hk_heap *r = ck_pr_load_ptr(&recent[i]);
        if (r != NULL)
            n += reap_one(r, proc, &pid) == REAP_REAPED;
    }
    /* Found there: the pass waits for a look that finds none there, and
     * a thread that starts after each such exit pays its few probes only. */
    if (n == 0) {
        struct hk_heap *h = *from != NULL ? *from : hk_heap_registry_head();
        for (; h != NULL && probes != 0; h = h->all_next) {
            enum reap r = reap_one(h, proc, &pid);
            probes -= r != REAP_SKIPPED;
            n += r == REAP_REAPED;
        }
        *from = h;
    }
    errno = saved;
    return n;
}

/* Gone heaps found by the pass under way so far.  Relaxed, and two looks
 * at once may lose one's count: it only says whether the next pass begins
 * at the next start or an eighth more heaps away. */
static uint32_t pass_found;

/* A look: the latest takes' heaps, then, if none of them was gone, the
 * next HK_LOOK_PROBES of the pass (reap_gone from reap_cursor), with
 * `made` the heaps made when the look began; returns how many gone heaps
 * it found.  While the pass is under way, or if it found some, the next
 * start looks on; else once an eighth more heaps are made (reap_at:
 * relaxed, the counts only ration looks). */
static unsigned look_on(uint32_t made)
{
    struct hk_heap *from = ck_pr_load_ptr(&reap_cursor);
    /* Pairs with the release fence below: the looker that stored it had
     * seen the heap initialised (hk_heap_registry_head). */
    ck_pr_fence_acquire();
    unsigned found = reap_gone(true, &from, HK_LOOK_PROBES);
    /* Release: our loads of the heap we reached, and the registry's
     * publication of it they synchronised with, before the cursor. */
    ck_pr_fence_release();
    ck_pr_store_ptr(&reap_cursor, from);
    uint32_t in_pass = ck_pr_load_32(&pass_found) + found;
    ck_pr_store_32(&pass_found, from == NULL ? 0 : in_pass);
    ck_pr_store_32(&reap_at, from != NULL || in_pass != 0 ? made : made + made / 8 + 1);
    return found;
}

/* proc_page[LOOKER]: the thread whose look (reap_gone) is running, 0 when
 * none.  In the page a fork's child gets zeroed: the looker is not there. */
#define LOOKER 1

/* A look hands gone threads' heaps back one by one, each before the next
 * probe: a thread that starts meanwhile waits for the look to end and takes
 * one, rather than make a heap while those are on their way.  Helper 43:
 * 4 threads each starting threads that left their heaps to the reaper made
 * 983 heaps for at most 9 threads alive, nearly all while another thread
 * looked.  Not the looker itself (no heap of its own yet, it could come
 * back here if anything it calls allocated). */
static struct hk_heap *wait_for_look(void)
{
    /* A hint: a look that ends or starts between the loads costs a heap. */
    uint64_t looker = ck_pr_load_64(&proc_page[LOOKER]);
    if (looker == 0 || looker == thread_id())
        return NULL;
    /* A while only: a looker stopped by a debugger, or running a long
     * signal handler, costs us a heap of our own rather than our start
     * (about 3 ms; a look probes a heap in about a microsecond). */
    for (unsigned n = 0; ck_pr_load_64(&proc_page[LOOKER]) == looker;) {
        if (n == 128)
            return NULL;
        hk_os_wait_step(&n);
    }
    ck_pr_fence_load();  /* pairs with the looker's fence before its end */
    return pop_abandoned();
}

/* A look for gone threads' heaps before a new heap is made, while a pass
 * is under way or the last one found some, else once the heaps made have
 * grown by an eighth: a process with many live threads probes each heap
 * O(log n) times as they start, and one whose threads come and go, each
 * leaving its heap, finds the last ones' within a pass.  Relaxed: the
 * counts only ration looks. */
static struct hk_heap *reap_and_pop(void)
{
    if (proc_page == NULL)
        return NULL;  /* no id that fork renews: reap_gone finds nothing */
    uint32_t made = ck_pr_load_32(&heaps_made), at = ck_pr_load_32(&reap_at);
    /* One look at a time: threads that start together make their heaps
     * rather than each probe every other (helper 40). */
    if (made < at || !ck_pr_cas_32(&reap_at, at, made + made / 8 + 1))
        return wait_for_look();
    ck_pr_store_64(&proc_page[LOOKER], thread_id());  /* a hint to starters: relaxed */
    unsigned found = look_on(made);
    ck_pr_fence_store();  /* the heaps pushed before the end of the look (wait_for_look) */
    ck_pr_store_64(&proc_page[LOOKER], 0);
    return found != 0 ? pop_abandoned() : NULL;
}

static struct hk_heap *heap_acquire(void)
{
    struct hk_heap *h = pop_abandoned();
    if (h == NULL)
        h = reap_and_pop();
    if (h != NULL)
        hk_heap_untrack_exited(h);  /* its reserve is ours now */
    else
        h = heap_new();
    if (h == NULL)
        return NULL;
    unsigned node = hk_numa_current_node();
    if (node != h->node)
        hk_heap_rehome(h, node);  /* adopted by a thread on another node */
    ck_pr_store_64(&h->owner_proc, proc_id());
    ck_pr_store_32(&h->owner_pid, process_id());
    ck_pr_store_32(&h->owner_tid, thread_id());
    ck_pr_fence_store();  /* the ids, and our writes to an adopted heap, before the state (reap_gone) */
    ck_pr_store_32(&h->state, HK_HEAP_ACTIVE);
    ck_pr_store_ptr(&recent[ck_pr_faa_uint(&recent_n, 1) % HK_RECENT], h);  /* a hint: relaxed (recent) */
    return h;
}

struct hk_heap *hk_heap_take(bool *borrowed)
{
    *borrowed = tls_exited;
    hk_process_init();
    struct hk_heap *h = heap_acquire();
    if (h == NULL)
        return NULL;
    hk_tls_heap = h;
    /* After the TLS store: pthread_setspecific may itself call calloc.
     * After our destructor ran, none would hand the heap back: the caller
     * does, at once. */
    if (!tls_exited)
        pthread_setspecific(heap_key, h);
    return h;
}

struct hk_heap *hk_heap_get(void)
{
    struct hk_heap *h = hk_tls_heap;
    bool borrowed;
    if (hk_unlikely(h == &hk_heap_empty) && !tls_exited) {
        struct hk_heap *t = hk_heap_take(&borrowed);
        if (t != NULL)
            h = t;
    }
    return h;
}

/* ---- collection and thread exit ---- */

void hk_heap_collect(struct hk_heap *h, bool release_all)
{
    hk_rcache_flush(h);
    hk_rbatch_flush(h);
    hk_inbox_process(h);
    for (unsigned c = 0; c < HK_CLASSES; c++) {
        struct hk_slab *cur = h->cur[c];
        if (cur != &hk_slab_empty) {
            hk_slab_drain_remote_owner(cur);
            if (cur->used == HK_CUR_PIN) {
                hk_heap_set_cur(h, c, &hk_slab_empty);
                hk_slab_release(h, cur);
            }
        }
        struct hk_slab *s = h->partial[c], *next;
        for (; s != NULL; s = next) {
            next = s->next;
            hk_slab_drain_remote_owner(s);
            if (s->used == 0)
                hk_slab_release(h, s);
        }
    }
    if (release_all)
        hk_heap_release_reserve(h);
    else
        hk_heap_maintain_now(h);
}

/* Some exited heap holds blocks handed to it since its sweep, or a reserve
 * kept for an adopter. */
static uint32_t sweeps_owed;

/* The next ticker pass looks (hk_heap_sweep_owed).  Relaxed: a flag that
 * only rations the passes; each heap's sweep claims it with its own CAS. */
static void owe_sweep(void)
{
    if (ck_pr_load_32(&sweeps_owed) == 0)
        ck_pr_store_32(&sweeps_owed, 1);
}

/* Collect h, an exited thread's heap, keeping a reserve beyond which free
 * memory goes back: an abandoned heap may wait long for its adopter, but
 * under thread churn (a thread per request or task) the next thread adopts
 * it at once and reuses the reserve instead of faulting it in again after
 * a madvise.  A reserve no adopter takes goes back at a ticker pass of any
 * thread (hk_heap_sweep_owed). */
static void exited_collect(struct hk_heap *h)
{
    hk_heap_collect(h, false);
    hk_heap_trim_exited(h);
    if (ck_pr_load_32(&h->exited_units) != 0)
        owe_sweep();
}

/* h's thread is done with it: collected, its current slabs on the
 * partial lists so that the adopter finds them, and no owner (tid 0) until
 * its adopter sets its ids: a reaper passes it over, and one that holds
 * it by mistake (reap_gone) lets go. */
static void heap_hand_back(struct hk_heap *h)
{
    exited_collect(h);
    for (unsigned c = 0; c < HK_CLASSES; c++) {
        struct hk_slab *s = h->cur[c];
        hk_heap_set_cur(h, c, &hk_slab_empty);
        if (s != &hk_slab_empty && !(s->owner_tag & HK_SLAB_FULL))
            hk_partial_push(h, s);
    }
    ck_pr_store_32(&h->owner_tid, 0);
}

void hk_heap_abandon(struct hk_heap *h)
{
    heap_hand_back(h);
    hk_tls_heap = &hk_heap_empty;
    tls_exited = true;
    /* Our writes to the heap before the state, from which a sweeper may
     * claim it before the push (an adopter claims it after the pop).  A
     * CAS: a reaper that took us for gone holds the heap a moment
     * (reap_gone); one fork caught, in our parent, never lets go. */
    ck_pr_fence_store();
    if (state_cas_waiting(h, HK_HEAP_ACTIVE, HK_HEAP_ABANDONED, UINT_MAX) == 0)
        ck_pr_store_32(&h->state, HK_HEAP_ABANDONED);
    push_abandoned(h);
}

/* Collect abandoned heaps for their absent owners: the remote frees waiting
 * in their inboxes go back to their slabs, and what is empty goes back to the
 * pools and the OS.  Looks at up to `looks` heaps of the registry, from a
 * shared cursor so that successive sweeps visit them all in turn; a heap is
 * swept only if we win it from ABANDONED (it stays in the abandoned stack,
 * where adopters leave it alone until we hand it back). */
void hk_sweep_abandoned(unsigned looks)
{
    /* Gone threads' heaps first, a pass a second at most: a look probes
     * HK_LOOK_PROBES heaps of the pass, each a system call for a live
     * thread's, so looks come 1000 * HK_LOOK_PROBES / made ms apart (a
     * second with few heaps; 1 ms at least, past 32,000 heaps, not at
     * every call).  Relaxed: the time only rations looks. */
    static uint64_t reaped_ms;
    uint64_t now = hk_os_now_ms(), last = ck_pr_load_64(&reaped_ms);
    uint32_t made = ck_pr_load_32(&heaps_made);
    uint64_t every = made > HK_LOOK_PROBES ? 1000u * HK_LOOK_PROBES / made : 1000;
    if (every == 0)
        every = 1;
    if (now - last >= every && ck_pr_cas_64(&reaped_ms, last, now))
        look_on(made);
    for (unsigned i = 0; i < looks; i++) {
        struct hk_heap *seen = ck_pr_load_ptr(&sweep_cursor);
        struct hk_heap *h = seen != NULL ? seen : hk_heap_registry_head();
        if (h == NULL)
            return;
        /* Advance the cursor (NULL: start again at the head); losing the
         * race only means two sweeps look at the same heap, and one of them
         * wins it. */
        ck_pr_cas_ptr(&sweep_cursor, seen, h->all_next);
        hk_heap_sweep(h, true);
    }
}

/* Set while this thread sweeps a heap: the blocks a sweep sends home may
 * be handed to other exited heaps, whose sweeps then wait for the ticker
 * (hk_heap_handed flags them for hk_heap_sweep_owed) instead of nesting,
 * one stack frame set per heap. */
static __thread bool tls_sweeping __attribute__((tls_model("initial-exec")));

void hk_heap_sweep(struct hk_heap *h, bool release_all)
{
    if (tls_sweeping || ck_pr_load_32(&h->state) != HK_HEAP_ABANDONED)
        return;
    /* Before the claim: an adopter that finds the heap held tells our
     * process's sweep from one fork left behind (pop_abandoned). */
    ck_pr_store_64(&h->sweep_proc, proc_id());
    ck_pr_fence_store();  /* the pid before the state (claim_abandoned) */
    if (!ck_pr_cas_32(&h->state, HK_HEAP_ABANDONED, HK_HEAP_SWEEPING))
        return;
    ck_pr_fence_load();  /* the last holder's writes to the heap */
    tls_sweeping = true;
    ck_pr_store_32(&h->handed, 0);  /* what was handed over is in the inbox we take */
    hk_heap_untrack_exited(h);
    if (release_all)
        hk_heap_collect(h, true);
    else
        exited_collect(h);
    ck_pr_fence_store();  /* our writes to the heap before the next user's CAS */
    ck_pr_store_32(&h->state, HK_HEAP_ABANDONED);
    tls_sweeping = false;
}

/* Blocks handed to an exited thread's heap between two sweeps of it by the
 * threads handing them: its memory comes back while they keep freeing,
 * where it waited for an adopter, a growing thread's sweep or
 * hak_collect (8 exited threads' 128 MB of 1000-byte blocks, freed by the
 * main thread, all stayed).  Sweeping at every hand-over (session 9)
 * cost bench/churn a third of its throughput; every 4096 blocks, 0.98-1.01x
 * (paired, 2 and 4 threads).  What is handed over after the last sweep
 * waits for a pass of any thread's ticker (hk_heap_sweep_owed). */
#define HK_SWEEP_HANDED 4096

void hk_heap_handed(struct hk_heap *h, uint32_t n)
{
    /* Relaxed: counts; whoever crosses the mark sweeps (hk_heap_sweep
     * claims the heap, or leaves it to whoever holds it). */
    if (ck_pr_faa_32(&h->handed, n) + n >= HK_SWEEP_HANDED)
        hk_heap_sweep(h, false);  /* its adopter, likely on its way, takes the reserve */
    /* Not swept (or another sweeper held it): the ticker's pass will. */
    if (ck_pr_load_32(&h->handed) != 0)
        owe_sweep();
}

void hk_heap_sweep_owed(void)
{
    /* At most once per decommit delay: under thread churn blocks are
     * handed to exited heaps all the time, and sweeping them at every
     * ticker pass cost bench/churn 9% at 4 threads (each sweep gives back
     * what the heap's adopter then faults in again). */
    static uint64_t last_ms;
    /* Relaxed throughout: the flag and the time only ration the passes;
     * each heap's sweep claims it with its own CAS. */
    if (ck_pr_load_32(&sweeps_owed) == 0)
        return;
    uint64_t now = hk_os_now_ms(), last = ck_pr_load_64(&last_ms);
    if (now - last < (uint64_t)hk_opt.decommit_delay_ms || !ck_pr_cas_64(&last_ms, last, now) ||
        !ck_pr_cas_32(&sweeps_owed, 1, 0))
        return;
    for (struct hk_heap *x = hk_heap_registry_head(); x != NULL; x = x->all_next)
        if (ck_pr_load_32(&x->handed) != 0 || ck_pr_load_32(&x->exited_units) != 0)
            hk_heap_sweep(x, true);
}

static void thread_exit_cb(void *arg)
{
    struct hk_heap *h = arg;
    if (h != NULL && h == hk_tls_heap)
        hk_heap_abandon(h);
}

void hak_collect(void)
{
    struct hk_heap *h = hk_tls_heap;
    if (h != &hk_heap_empty)
        hk_heap_collect(h, true);
    struct hk_heap *all = NULL;  /* a pass of its own, whole: the caller asked for the work */
    reap_gone(false, &all, UINT_MAX);
    unsigned heaps = 0;
    for (struct hk_heap *x = hk_heap_registry_head(); x != NULL; x = x->all_next)
        heaps++;
    hk_sweep_abandoned(heaps + 1);
    hk_large_cache_flush();
}
