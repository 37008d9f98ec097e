/* mmap-based OS layer.  Counters are process-wide atomics: they move on slow
 * paths only (a mapping, an unmapping, a decommit). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* mremap; the TSan build defines it first (hk_tsan.h) */
#endif
#include "hk_os.h"
#include <ck_pr.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/auxv.h>
#include <elf.h>
#include <sys/syscall.h>
#include <linux/mempolicy.h>
#include <stdbool.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>

struct hk_os_stats hk_os_stats;

#define ARENA_CHUNKS 32u  /* SuperSlab chunks per arena mapping: 64 MiB of address space */
_Static_assert(ARENA_CHUNKS <= HK_SS_SIZE, "the chunk count lives in the low bits of the arena word");

/* The current arena: its aligned base with the number of chunks handed out in
 * the low bits, so one CAS claims a chunk. */
static uint64_t arena_word;

/* At `at` (MAP_FIXED, replacing what is there; with MAP_FIXED_NOREPLACE
 * in `flags`, only where nothing is, and a hint before Linux 4.17) or
 * anywhere (at NULL).  MAP_NORESERVE in `flags` skips the kernel's
 * overcommit check (not in its strict mode): for our own structures and
 * SuperSlabs, never for a block whose size the program chose
 * (hk_os_map_block). */
static void *map_raw(void *at, size_t size, int prot, int flags)
{
    int saved = errno;
    int fixed = at && !(flags & MAP_FIXED_NOREPLACE) ? MAP_FIXED : 0;
    void *p = mmap(at, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags | fixed, -1, 0);
    /* Relaxed counting: a statistic, read at report time. */
    ck_pr_inc_64(&hk_os_stats.mmap);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

/* Under transparent huge pages' "always" mode the kernel backs a 2 MiB
 * aligned anonymous range with a huge page at its first touch: every
 * SuperSlab, whose header its heap writes first, would be 2 MiB resident
 * however little it holds (64 threads of 100 small blocks each: 136 MB,
 * where mimalloc, committing its segments piecemeal, had 8.4).  Our own
 * mappings opt out then; in "madvise" and "never" modes nothing is asked,
 * so no call is spent.  The mode is read once, with no allocation. */
static int thp_always = -1; /* -1 until read */

static bool thp_is_always(void)
{
    /* Relaxed: every reader that races computes the same value. */
    int v = ck_pr_load_int(&thp_always);
    if (v >= 0)
        return v;
    char mode[128] = { 0 };
    int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, mode, sizeof mode - 1);
        (void)n;
        close(fd);
    }
    v = strstr(mode, "[always]") != NULL;
    ck_pr_store_int(&thp_always, v);
    return v;
}

static void no_huge_pages(void *p, size_t size)
{
    if (p == NULL)
        return;
    int saved = errno;  /* a mapping that succeeds leaves errno alone */
    if (thp_is_always()) {
        madvise(p, size, MADV_NOHUGEPAGE);
        ck_pr_inc_64(&hk_os_stats.madvise); /* statistic: relaxed */
    }
    errno = saved;
}

void hk_os_unmap(void *p, size_t size)
{
    if (size == 0)
        return;
    int saved = errno;  /* free and a malloc that succeeds leave errno alone */
    /* Refused at vm.max_map_count, when unmapping part of a mapping would
     * split it: the pages at least go back (the address space stays, as
     * the other allocators leave it).  Helper 46: 77 MB of a freed 103 MiB
     * mapping stayed resident. */
    if (munmap(p, size) != 0) {
        madvise(p, size, MADV_DONTNEED);  /* not hk_os_decommit: p may be PROT_NONE */
        ck_pr_inc_64(&hk_os_stats.madvise);  /* statistic: relaxed */
    }
    ck_pr_inc_64(&hk_os_stats.munmap);  /* statistic: relaxed */
    errno = saved;
}

static void *map_aligned(size_t size, size_t align, int prot, int flags)
{
    if (size > ((size_t)1 << HK_ADDR_BITS) || align > ((size_t)1 << 40))
        return NULL;
    void *raw = map_raw(NULL, size + align, prot, flags);
    if (raw == NULL)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    hk_os_unmap(raw, start - (uintptr_t)raw);
    hk_os_unmap((void *)(start + size), (uintptr_t)raw + size + align - (start + size));
    return (void *)start;
}

/* Our own structures: no huge pages under "always" (above). */
void *hk_os_map_aligned(size_t size, size_t align)
{
    void *p = map_aligned(size, align, PROT_READ | PROT_WRITE, MAP_NORESERVE);
    no_huge_pages(p, size);
    return p;
}

void *hk_os_map_block(size_t size, size_t align)
{
    return map_aligned(size, align, PROT_READ | PROT_WRITE, 0);
}

void *hk_os_reserve_aligned(size_t size, size_t align)
{
    return map_aligned(size, align, PROT_NONE, MAP_NORESERVE);
}

/* mremap, counted with the mmaps: it maps pages, and the budget counts
 * calls. */
static bool remap(void *p, size_t old, size_t size, int flags, void *to)
{
    int saved = errno;
    void *q = mremap(p, old, size, flags, to);
    ck_pr_inc_64(&hk_os_stats.mmap);  /* statistic: relaxed */
    errno = saved;
    return q != MAP_FAILED;
}

bool hk_os_grow_in_place(void *p, size_t old, size_t size)
{
    return remap(p, old, size, 0, NULL);
}

/* Before Linux 6.17, mremap with MREMAP_FIXED unmapped its destination
 * before it checked the source (one kernel mapping, the mlock limit), so a
 * move refused there left a hole where the caller's mapping had been: a
 * block copied into it after the refusal faulted (Debian 12's 6.1, helper
 * 46).  Read once from uname, which does not allocate. */
static int move_unmaps_first = -1; /* -1 until read */

static bool kernel_move_unmaps_first(void)
{
    /* Relaxed: every reader that races computes the same value. */
    int v = ck_pr_load_int(&move_unmaps_first);
    if (v >= 0)
        return v;
    struct utsname u;
    unsigned major = 0, minor = 0;
    if (uname(&u) == 0) {
        const char *c = u.release;
        while (*c >= '0' && *c <= '9')
            major = major * 10 + (unsigned)(*c++ - '0');
        if (*c++ == '.')
            while (*c >= '0' && *c <= '9')
                minor = minor * 10 + (unsigned)(*c++ - '0');
    }
    v = major < 6 || (major == 6 && minor < 17);  /* unreadable: assume the old order */
    ck_pr_store_int(&move_unmaps_first, v);
    return v;
}

/* [at, at + size) mapped again only where nothing is, after a refused
 * MAP_FIXED or mremap that may have unmapped it (before Linux 6.12 and
 * 6.17): true when it is ours again (zero-filled); false where something
 * is, which may be ours, refused before the unmap, or another thread's
 * mapping made in the hole meanwhile. */
static bool fill_hole(void *at, size_t size, int prot, int flags)
{
    void *q = map_raw(at, size, prot, flags | MAP_FIXED_NOREPLACE);
    if (q != NULL && q != at)
        hk_os_unmap(q, size);  /* a kernel before 4.17 took the address as a hint */
    return q == at;
}

int hk_os_move(void *p, size_t old, size_t size, void *to, int prot)
{
    if (remap(p, old, size, MREMAP_MAYMOVE | MREMAP_FIXED, to))
        return 1;
    if (!kernel_move_unmaps_first())
        return 0;
    /* The destination may be gone; not ours again, it is never touched
     * again (a leak at worst). */
    return fill_hole(to, size, prot, MAP_NORESERVE) ? 0 : -1;
}

/* An arena's chunk becomes memory when claimed.  The arena is only reserved
 * (PROT_NONE): a program that calls mlockall() would otherwise lock and
 * fill the whole 64 MiB, every chunk never used. */
static void *chunk_commit(void *c)
{
    void *p = map_raw(c, HK_SS_SIZE, PROT_READ | PROT_WRITE, MAP_NORESERVE);
    /* Refused (mlockall(MCL_FUTURE) over RLIMIT_MEMLOCK, RLIMIT_AS): the
     * chunk's address space goes back; the arena never hands it out again
     * (the claim is not undone: others may have claimed past it). */
    if (p == NULL)
        hk_os_unmap(c, HK_SS_SIZE);
    no_huge_pages(p, HK_SS_SIZE);
    return p;
}

/* A fresh mapping in place of [p, p + size): its pages go back and it reads
 * as zero, as after MADV_DONTNEED.  The range's NUMA policy (hk_numa_bind's
 * MPOL_BIND) would go with the old mapping, so it is read first and set
 * again before anything touches the new one. */
static bool replace_with_zero(void *p, size_t size)
{
    enum { NODE_BITS = 1024, LONG_BITS = sizeof(unsigned long) * 8 };
    unsigned long mask[NODE_BITS / LONG_BITS] = { 0 };
    int mode = MPOL_DEFAULT;
    if (syscall(SYS_get_mempolicy, &mode, mask, (unsigned long)NODE_BITS, p, (unsigned long)MPOL_F_ADDR) != 0)
        mode = MPOL_DEFAULT;
    /* Charged as any block (no MAP_NORESERVE): the range may be one whose
     * size the program chose.  Refused before Linux 6.12, the old mapping
     * may be gone already (hk_os_recommit): the hole is filled, if no
     * other mapping took it, so that the caller's clearing finds memory. */
    if (map_raw(p, size, PROT_READ | PROT_WRITE, 0) != p && !fill_hole(p, size, PROT_READ | PROT_WRITE, 0))
        return false;
    if (mode != MPOL_DEFAULT)
        syscall(SYS_mbind, p, size, mode, mask, (unsigned long)NODE_BITS, 0UL);
    no_huge_pages(p, size);
    return true;
}

bool hk_os_uncommit(void *p, size_t size)
{
    return map_raw(p, size, PROT_NONE, MAP_NORESERVE) == p;
}

/* By mprotect, not a fresh mapping over the reservation: before Linux 6.12
 * a MAP_FIXED mapping unmapped what was there before the commit charge was
 * checked, so one refused under strict overcommit left a hole that another
 * mapping could take, and the next recommit would map over it (helper 55).
 * mprotect checks RLIMIT_DATA and the charge before it changes anything.
 * The reservation is a fresh mapping (hk_os_uncommit): zero. */
bool hk_os_recommit(void *p, size_t size)
{
    int saved = errno;
    bool ok = mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
    ck_pr_inc_64(&hk_os_stats.mmap);  /* statistic, relaxed: it maps pages, as remap */
    errno = saved;
    if (ok)
        no_huge_pages(p, size);
    return ok;
}

void hk_os_decommit(void *p, size_t size)
{
    int saved = errno;
    /* Locked pages (mlock, mlockall) refuse MADV_DONTNEED (EINVAL) and keep
     * their contents: cleared by hand, since callers count on zero (calloc
     * skips clearing memory decommitted since its last use).  Helper 20
     * found calloc returning a freed block's bytes under mlockall.  For
     * other refusals (a seccomp filter's EPERM or ENOSYS in sandboxes that
     * deny madvise; EAGAIN, ENOMEM), clearing by hand would make every page
     * of the range resident, untouched ones too (3,000 freed blocks of 300
     * KB with two pages written each: 1 GB resident after malloc_trim,
     * where 27 MB had been; helper 52): a fresh mapping over the range
     * gives the pages back instead. */
    if (madvise(p, size, MADV_DONTNEED) != 0 && (errno == EINVAL || !replace_with_zero(p, size)))
        memset(p, 0, size);
    ck_pr_inc_64(&hk_os_stats.madvise);  /* statistic: relaxed */
    errno = saved;
}

void hk_os_account(int64_t delta)
{
    /* Relaxed add; the peak is a monotone max kept with a CAS loop, exact
     * enough for a statistic that only ever grows. */
    uint64_t now = ck_pr_faa_64(&hk_os_stats.committed, (uint64_t)delta) + (uint64_t)delta;
    uint64_t peak = ck_pr_load_64(&hk_os_stats.peak_committed);
    while (delta > 0 && now > peak && !ck_pr_cas_64_value(&hk_os_stats.peak_committed, peak, now, &peak))
        ;
}

void *hk_os_ss_chunk(void)
{
    for (;;) {
        /* Acquire pairs with the release CAS that installed the arena. */
        uint64_t w = ck_pr_load_64(&arena_word);
        ck_pr_fence_load();
        uint64_t used = w & HK_SS_MASK, base = w & ~(uint64_t)HK_SS_MASK;
        if (base != 0 && used < ARENA_CHUNKS) {
            /* The CAS is the claim: a full barrier on every target we run on. */
            if (ck_pr_cas_64(&arena_word, w, w + 1))
                return chunk_commit((void *)(uintptr_t)(base + used * HK_SS_SIZE));
            continue;
        }
        void *fresh = hk_os_reserve_aligned(ARENA_CHUNKS * HK_SS_SIZE, HK_SS_SIZE);
        if (fresh == NULL) {
            /* No room for a whole arena: RLIMIT_AS, or mlockall(MCL_FUTURE),
             * under which the kernel counts even a PROT_NONE reservation
             * against RLIMIT_MEMLOCK (helper 25).  One chunk on its own. */
            void *one = hk_os_reserve_aligned(HK_SS_SIZE, HK_SS_SIZE);
            return one != NULL ? chunk_commit(one) : NULL;
        }
        ck_pr_fence_store();
        /* Install the new arena with its first chunk taken by us; a loser
         * hands its whole arena back. */
        if (ck_pr_cas_64(&arena_word, w, (uint64_t)(uintptr_t)fresh | 1))
            return chunk_commit(fresh);
        hk_os_unmap(fresh, ARENA_CHUNKS * HK_SS_SIZE);
    }
}

/* The clock from the vDSO the kernel maps into every process, not through
 * glibc's clock_gettime: a preloaded library may replace that (libfaketime
 * does, __clock_gettime too) and allocate in it, from the middle of our slow
 * paths.  Every program crashed under hakmem and libfaketime (helper 50: the
 * first malloc's clock read initialised libfaketime, whose dlsym called
 * malloc, which read the clock...), and a sweep that read the clock met
 * itself in such a wrapper's malloc and waited for good.  The system call,
 * where the vDSO has no such function, costs about 0.3 us where the vDSO
 * costs 0.02: ring reads the clock every 250 operations or so. */
typedef int (*clock_fn)(clockid_t, struct timespec *);
static clock_fn vdso_clock;
static int vdso_looked;  /* 0 until looked up */

/* __vdso_clock_gettime in the vDSO's dynamic symbol table (an ELF image at
 * getauxval(AT_SYSINFO_EHDR), as the kernel's tools/testing/selftests
 * parse_vdso.c reads it); NULL if anything is not as expected. */
static clock_fn find_vdso_clock(void)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)getauxval(AT_SYSINFO_EHDR);
    if (eh == NULL || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
        return NULL;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)eh + eh->e_phoff);
    const Elf64_Dyn *dyn = NULL;
    uintptr_t load = 0;
    bool loaded = false;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && !loaded) {
            load = (uintptr_t)eh + ph[i].p_offset - ph[i].p_vaddr;
            loaded = true;
        } else if (ph[i].p_type == PT_DYNAMIC) {
            dyn = (const Elf64_Dyn *)((const char *)eh + ph[i].p_offset);
        }
    }
    if (!loaded || dyn == NULL)
        return NULL;
    const Elf64_Sym *sym = NULL;
    const char *str = NULL;
    const Elf32_Word *hash = NULL;  /* DT_HASH: its second word is the symbol count */
    for (const Elf64_Dyn *d = dyn; d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_SYMTAB)
            sym = (const Elf64_Sym *)(load + d->d_un.d_ptr);
        else if (d->d_tag == DT_STRTAB)
            str = (const char *)(load + d->d_un.d_ptr);
        else if (d->d_tag == DT_HASH)
            hash = (const Elf32_Word *)(load + d->d_un.d_ptr);
    }
    if (sym == NULL || str == NULL || hash == NULL)
        return NULL;
    for (Elf32_Word i = 0; i < hash[1]; i++)
        if (ELF64_ST_TYPE(sym[i].st_info) == STT_FUNC && sym[i].st_shndx != SHN_UNDEF &&
            strcmp(str + sym[i].st_name, "__vdso_clock_gettime") == 0)
            return (clock_fn)(load + sym[i].st_value);
    return NULL;
}

void hk_os_clock(clockid_t clock, struct timespec *ts)
{
    /* Relaxed: every thread that races finds the same function, and one
     * that sees the flag before the function takes the system call once. */
    if (hk_unlikely(!ck_pr_load_int(&vdso_looked))) {
        ck_pr_store_ptr(&vdso_clock, (void *)find_vdso_clock());
        ck_pr_store_int(&vdso_looked, 1);
    }
    int saved = errno;
    clock_fn fn = (clock_fn)ck_pr_load_ptr(&vdso_clock);
    if ((fn != NULL ? fn(clock, ts) : syscall(SYS_clock_gettime, clock, ts)) != 0)
        ts->tv_sec = ts->tv_nsec = 0;
    errno = saved;
}

uint64_t hk_os_now_ms(void)
{
    struct timespec ts;
    hk_os_clock(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One step of a wait for another thread: a yield, then, after 64 of them,
 * a 50 us sleep.  A yield lets only threads of our priority or above run on
 * this CPU: a real-time thread (SCHED_FIFO) waiting for a normal one that
 * holds what it waits for would spin for good.  The raw system call: glibc's
 * nanosleep is a cancellation point, and a thread cancelled in here would
 * leave what it waits in half done (a heap half taken). */
void hk_os_wait_step(unsigned *n)
{
    if (++*n < 64) {
        sched_yield();
        return;
    }
    struct timespec ts = { 0, 50 * 1000 };
    int saved = errno;  /* EINTR: a signal; the caller looks again */
    syscall(SYS_nanosleep, &ts, NULL);
    errno = saved;
}
