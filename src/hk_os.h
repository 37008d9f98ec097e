/* OS layer: the only place that maps, unmaps and advises memory.  Every call
 * is counted for the syscall budget. */
#ifndef HK_OS_H
#define HK_OS_H

#include "hk_config.h"
#include <time.h>

struct hk_os_stats {
    uint64_t mmap, munmap, madvise;
    uint64_t tgkill;          /* probes for gone threads (lifecycle.c: thread_gone) */
    uint64_t committed;       /* bytes mapped and not decommitted */
    uint64_t peak_committed;
};
extern struct hk_os_stats hk_os_stats;

/* A fresh SuperSlab-sized, SuperSlab-aligned chunk, untouched (zero, no RSS).
 * Carved from arenas of many chunks, reserved with one mmap and each made
 * memory with one more as it is claimed (os.c: chunk_commit). */
void *hk_os_ss_chunk(void);
/* A mapping of `size` bytes aligned to `align` (a power of two >= page). */
void *hk_os_map_aligned(size_t size, size_t align);
/* The same for a large block: the kernel's overcommit policy applies, as
 * to glibc's mappings, so a block larger than the machine could ever
 * provide fails here (ENOMEM) instead of being killed on first touch. */
void *hk_os_map_block(size_t size, size_t align);
/* The same, address space only (PROT_NONE): a target for hk_os_move. */
void *hk_os_reserve_aligned(size_t size, size_t align);
/* Grow the mapping at p from old to size bytes where it is; false when the
 * address space after it is taken. */
bool hk_os_grow_in_place(void *p, size_t old, size_t size);
/* Move the mapping at p (old bytes) to `to`, replacing what is there, and
 * grow it to size bytes: the kernel moves the pages, nothing is copied.
 * 1 moved; 0 refused, p as it was and `to`'s size bytes still ours (with
 * protection prot, contents kept or zero); -1 refused, p as it was and
 * `to`'s size bytes no longer ours (old kernels: os.c). */
int hk_os_move(void *p, size_t old, size_t size, void *to, int prot);
void hk_os_unmap(void *p, size_t size);
/* Give the pages back; they read as zero afterwards (locked ones, which
 * the kernel keeps, are cleared). */
void hk_os_decommit(void *p, size_t size);
/* Decommitted memory still counts against RLIMIT_DATA (private writable
 * mappings, Linux 4.7+) and, under strict overcommit, the commit charge:
 * uncommit makes [p, p + size) an inaccessible reservation, which counts
 * against neither; recommit makes it memory again (zero, unbound: the
 * caller binds it to its node).  Both false when the kernel refuses. */
bool hk_os_uncommit(void *p, size_t size);
bool hk_os_recommit(void *p, size_t size);
/* Committed-bytes accounting for chunks handed out and decommitted. */
void hk_os_account(int64_t delta);
/* clock_gettime from the vDSO, the system call where it has none (os.c: a
 * preloaded library may replace glibc's, and allocate in it). */
void hk_os_clock(clockid_t clock, struct timespec *ts);
uint64_t hk_os_now_ms(void);
/* One step of a wait for another thread (*n counts them, from 0): a yield,
 * and after 64 a short sleep (os.c). */
void hk_os_wait_step(unsigned *n);

#endif
