/* Large blocks (above the biggest size class): one SuperSlab-aligned mapping
 * each, whose header the same map lookup recognises, with a small cache of
 * recently freed mappings. */
#ifndef HK_LARGE_H
#define HK_LARGE_H

#include "hk_superslab.h"

/* Alignments up to this come from the block's offset in its mapping; larger
 * ones are served too, through the big-alignment registry. */
#define HK_LARGE_MAX_OFFSET_ALIGN (HK_SS_SIZE / 2)

/* A block for a thread homed on `home`: bound to the node the NUMA policy
 * picks, before first touch.  `room`: a fresh mapping reserves half as much
 * again to grow into (realloc's blocks), if the kernel grants it. */
void *hk_large_alloc(size_t size, size_t align, bool zero, bool room, unsigned home);
void hk_large_free(struct hk_ss *ss, void *p, const char *fn);
/* Usable size of p (validated, aborting with `fn` when p is not ours). */
size_t hk_large_usable(struct hk_ss *ss, const void *p, const char *fn);
/* Resize in place when the mapping allows; NULL when the caller must move. */
void *hk_large_resize(struct hk_ss *ss, void *p, size_t size);
/* Grow ss's block (validated) beyond its mapping for `size` bytes without
 * copying it: in place into the cached mapping right after it, else moved
 * by mremap into a cached mapping (its pages resident: no page faults), the
 * rest of either split off back into the cache; else the mapping grows
 * where it is or moves whole, header and all, by mremap, reserving half as
 * much again as a fresh block of realloc's does.  A buffer grown in steps
 * (a pipe read into a realloc'd buffer) was once copied at each step and
 * every old copy stayed resident in the mapping cache.  Returns the block, moved or not;
 * NULL when it cannot (a block aligned beyond a page, or no address
 * space): the caller copies.  Mappings below 1 MiB are copied too:
 * cheaper. */
void *hk_large_grow(struct hk_ss *ss, size_t size);
/* A pointer whose chunk is not in the map: one of our big-aligned blocks? */
struct hk_ss *hk_large_lookup_big(const void *p);
uint64_t hk_large_cached_bytes(void);
/* Unmap every cached mapping (hak_collect, malloc_trim, and a mapping the
 * kernel refused); returns how many there were. */
unsigned hk_large_cache_flush(void);
/* Unmap the cached mappings cached at least a decommit delay before `now`
 * (a ticker pass of any thread): a freed table, say, stayed resident until
 * the next large block took it or hak_collect().  At most 2 MiB a pass,
 * from the ends of the mappings: true when aged ones are left, for the
 * caller's next hand-overs (hk_large_cache_aged).  Younger ones, or aged
 * ones left, keep the flag below set. */
bool hk_large_cache_age(uint64_t now);
/* Whether the last pass left aged mappings (a hint). */
bool hk_large_cache_aged(void);
/* Whether cached mappings wait for an ager (a hint, read on the ticker's
 * hand-overs: relaxed). */
extern hk_hidden uint32_t hk_large_young;
hk_inline bool hk_large_cache_waits(void) { return ck_pr_load_32(&hk_large_young) != 0; }
uint64_t hk_large_live_bytes(void);
uint64_t hk_large_live_count(void);

#endif
