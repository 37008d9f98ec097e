/* A thread that allocates slowly gets its freed memory back too.  In each
 * round the main thread makes up to 48 MB of 1000-byte blocks, which
 * another thread frees (they wait in the main thread's inbox) or it frees
 * itself (their units wait for the decommit delay).  After a pause longer
 * than the delay, the main thread allocates and frees one block a
 * millisecond.  Only a tick of its allocation ticker takes the inbox and
 * gives back memory that has waited out its delay (reclaim.c), and the
 * ticker counted HK_TICK (4096) allocations a period: the memory stayed
 * until the period was over, however long that took.  A heap whose last
 * tick is older than the delay now ticks at the next hand-over of a slab's
 * count (128 allocations of a class) while memory or blocks wait, so the
 * committed bytes must fall back near where they started within 1024
 * allocations (a second or so).  The rounds' sizes differ so that each
 * starts at another point of the ticker's period.
 * The spread rounds allocate slowly over SPREAD classes in turn: a class
 * made its 128th allocation after SPREAD * 128, and the memory stayed
 * through all of them.  Since session 28 memory that starts to wait makes
 * every current slab hand over at its next allocation (reclaim.c:
 * look_soon); blocks another thread freed start their wait when a tick
 * takes them from the inbox, which the hand-overs of the first round's
 * classes, still early, bring soon.
 * A standalone program: the test needs a process whose threads are all
 * its own. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "hakmem.h"
#include "testutil.h"

enum { SIZE = 1000, MAX = 48 << 10, WITHIN = 1024, TRICKLE = 4096, SLACK = 8 << 20, SPREAD = 24 };
static const struct round {
    int count;
    bool remote;  /* another thread frees the blocks */
    bool spread;  /* the slow phase cycles through SPREAD classes */
} rounds[] = {
    { 40000, true, true }, { MAX, true, false }, { 40000, false, false }, { 33333, true, false },
    { 45678, false, false }, { 40000, false, true }, { 45678, false, true }, { 33333, true, true },
};
enum { ROUNDS = sizeof rounds / sizeof rounds[0] };

/* The slow phase's n-th size: SIZE, or in the spread rounds one of SPREAD
 * classes from 16 to 512 B in turn. */
static size_t slow_size(bool spread, int n)
{
    return spread ? 16 + (size_t)(n % SPREAD) * 21 : SIZE;
}
static void *blocks[MAX];
static int count;

static void free_all(void)
{
    for (int i = 0; i < count; i++)
        hak_free(blocks[i]);
}

static void *freer(void *arg)
{
    (void)arg;
    free_all();
    return NULL;
}

int main(void)
{
    if (getenv("HAKMEM_DECOMMIT_DELAY_MS") || getenv("HAKMEM_PROFILE") || getenv("HAKMEM_SS_CACHE")) {
        printf("slow_return: SKIP: a HAKMEM_ option that changes memory return is set; the test needs its defaults\n");
        return 77;
    }
    for (int n = 0; n < SPREAD; n++)  /* each spread class has a current slab, counting */
        hak_free(hak_malloc(slow_size(true, n)));
    long long start = tu_stat("bytes_committed");
    int failed = 0;
    for (int r = 0; r < ROUNDS; r++) {
        count = rounds[r].count;
        for (int i = 0; i < count; i++) {
            blocks[i] = hak_malloc(SIZE);
            if (blocks[i] == NULL)
                return 99;
            tu_fill(blocks[i], 16, (uint64_t)i);
        }
        long long filled = tu_stat("bytes_committed");
        bool remote = rounds[r].remote;
        if (remote) {
            pthread_t t;
            if (pthread_create(&t, NULL, freer, NULL) != 0 || pthread_join(t, NULL) != 0)
                return 99;
        } else {
            free_all();
        }
        /* One class: longer than the 250 ms delay since our last tick.
         * Spread: none, as a server slows down right after a burst. */
        if (!rounds[r].spread)
            usleep(400 * 1000);
        int n = 0;
        long long now = tu_stat("bytes_committed");
        for (; n < TRICKLE && now > start + SLACK; n++) {
            void *p = hak_malloc(slow_size(rounds[r].spread, n));
            if (p == NULL)
                return 99;
            hak_free(p);
            usleep(1000);
            now = tu_stat("bytes_committed");
        }
        printf("slow_return: round %d, %d blocks freed by %s: committed %lld bytes at the start, %lld after the "
               "fill, %lld after %d slow allocations (%s)\n",
               r, count, remote ? "another thread" : "their owner", start, filled, now, n,
               rounds[r].spread ? "24 classes in turn" : "one class");
        if (now > start + SLACK || n > WITHIN) {
            fprintf(stderr, "slow_return: FAIL: round %d: the freed memory %s after %d allocations, one a "
                    "millisecond (at most %d: a tick at the next hand-over)\n",
                    r, now > start + SLACK ? "was still committed" : "came back only", n, WITHIN);
            failed = 1;
        }
    }
    if (failed)
        return 1;
    printf("slow_return: ok\n");
    return 0;
}
