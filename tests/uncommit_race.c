/* A thread refused memory while another thread's uncommit holds the pool
 * (superslab.c: hk_ss_pool_uncommit takes a node's pool whole and puts it
 * back) gets the pooled SuperSlab, not NULL.  Until helper 57 it found the
 * pool empty, was refused a chunk of its own, found nothing to uncommit,
 * and failed with ENOMEM though a SuperSlab was pooled.
 *
 * Made deterministic under a 64 MiB RLIMIT_DATA, in a child: blocks of
 * 1.5 MiB (one SuperSlab each) fill the limit, one is freed, so that the
 * pool holds exactly that SuperSlab, committed.  The main thread's 4 MiB
 * block is refused, and its uncommit pops the SuperSlab; this program's
 * own mmap, which the library's calls reach before libc's, holds that
 * thread in the uncommit's first system call until the other thread's
 * allocation has returned, or for 1 s.  The other thread's allocation
 * needs a SuperSlab: the pool is empty and the kernel refuses a chunk.
 * Fixed, it waits for the uncommit to end and gets the pooled SuperSlab,
 * or a chunk where the body's recommit is refused (so the 1 s passes);
 * before, it returned NULL at once.  A child that thread forks meanwhile
 * does not wait for its parent's uncommit (10 s at most: a signal). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"

#define SKIP 77

enum { BLOCK = 1536 << 10, MAX_BLOCKS = 64, BODY = (2 << 20) - 8192 };

static __thread int hold_here;  /* the thread whose uncommit is held */
static int held, other_done;    /* __atomic: set once each */

/* libhakmem's mmap calls: a SuperSlab body made a reservation (os.c:
 * hk_os_uncommit) by the holding thread waits, once.  No allocation in
 * here: the library calls it from its slow paths. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (hold_here && prot == PROT_NONE && (flags & MAP_FIXED) && len == BODY) {
        hold_here = 0;
        __atomic_store_n(&held, 1, __ATOMIC_RELEASE);
        for (double t0 = tu_now(); !__atomic_load_n(&other_done, __ATOMIC_ACQUIRE) && tu_now() - t0 < 1.0;) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    return r < 0 && r > -4096 ? MAP_FAILED : (void *)r;
}

/* VmData in KiB, read without allocating; -1 if unknown. */
static long vm_data_kb(void)
{
    char b[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
    if (fd >= 0)
        close(fd);
    b[n > 0 ? n : 0] = '\0';
    const char *p = strstr(b, "VmData:");
    return p != NULL ? atol(p + 7) : -1;
}

static int ready, go;
static void *other_block;
static int other_errno, child_waited;

static void *other(void *arg)
{
    (void)arg;
    /* Its heap made, and its SuperSlab given back, before the limit fills. */
    hak_free(hak_malloc(16));
    hak_collect();
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE) || !__atomic_load_n(&held, __ATOMIC_ACQUIRE))
        usleep(1000);
    /* A fork's child, whose copy of the pool lacks what the uncommit held,
     * must not wait for that uncommit: it is not there to end. */
    pid_t child = fork();
    if (child == 0) {
        alarm(10);
        hak_malloc(16);
        _exit(0);
    }
    int status = 0;
    child_waited = child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status);
    errno = 0;
    other_block = hak_malloc(16);
    other_errno = errno;
    __atomic_store_n(&other_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *blocks[MAX_BLOCKS];

static int race(void)
{
#if defined(UNDER_ASAN) || defined(UNDER_TSAN)
    printf("skip: the sanitizer's runtime maps memory of its own under the limit, and has its own mmap\n");
    return SKIP;
#else
    if (!tu_data_limit((size_t)64 << 20)) {
        printf("skip: cannot set a 64 MiB RLIMIT_DATA\n");
        return SKIP;
    }
    void *keep = hak_malloc(16);  /* the main heap's small-block SuperSlab stays out of the pool */
    pthread_attr_t a;
    pthread_t t;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 << 10);  /* a thread's stack counts against the limit too */
    if (keep == NULL || pthread_create(&t, &a, other, NULL) != 0) {
        printf("FAIL: setup: %s\n", strerror(errno));
        return 1;
    }
    while (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
        usleep(1000);
    int n = 0;
    errno = 0;
    while (n < MAX_BLOCKS && (blocks[n] = hak_malloc(BLOCK)) != NULL)
        memset(blocks[n++], 0x5a, 64);
    if (n == MAX_BLOCKS || n < 2 || errno != ENOMEM) {
        printf("FAIL: %d blocks of 1.5 MiB under a 64 MiB limit, then errno %d (not ENOMEM)\n", n, errno);
        return 1;
    }
    /* Linux lets the last chunk take the process past the limit
     * (superslab.c: take).  Made a reservation, the pooled body must bring
     * it back to the limit: the thread, refused that body's recommit,
     * then gets a chunk. */
    long over = vm_data_kb() - (64 << 10);
    if (vm_data_kb() < 0 || over > (long)(BODY >> 10)) {
        printf("skip: VmData %ld KiB over the limit after the fill (unknown, or more than a SuperSlab's body)\n", over);
        return SKIP;
    }
    hak_free(blocks[--n]);
    hak_collect();  /* its SuperSlab: the pool's only one */
    hold_here = 1;
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    double t0 = tu_now();
    void *big = hak_malloc(4 << 20);  /* refused: the uncommit, held */
    long waited = (long)((tu_now() - t0) * 1000);
    pthread_join(t, NULL);
    if (!__atomic_load_n(&held, __ATOMIC_ACQUIRE)) {
        printf("FAIL: the 4 MiB block's refusal made no SuperSlab body a reservation (block %p)\n", big);
        return 1;
    }
    hak_free(big);
    for (int i = 0; i < n; i++)
        hak_free(blocks[i]);
    hak_free(keep);
    if (other_block == NULL) {
        printf("FAIL: a thread refused while another's uncommit held the pool got NULL (errno %d), "
               "the pool's SuperSlab there; the uncommit held %ld ms\n", other_errno, waited);
        return 1;
    }
    hak_free(other_block);
    if (child_waited) {
        printf("FAIL: a child forked while the uncommit held the pool did not return from malloc (or fork failed)\n");
        return 1;
    }
    printf("ok: a thread refused while another's uncommit held the pool waited for it (%ld ms) and got a "
           "SuperSlab (%d blocks of 1.5 MiB filled the limit, %ld KiB over it)\n", waited, n + 1, over);
    return 0;
#endif
}

int main(void)
{
    int rc = tu_in_child(race);
    return rc < 0 ? 1 : rc;
}
