/* libFuzzer entry point of the API fuzzer.  An input is one header byte and
 * then records of FZ_OP_BYTES bytes (fuzz_ops.c decodes them); a record runs
 * on thread op[0] % FZ_THREADS: the libFuzzer thread (0) or one of two
 * persistent workers, all at once.  The header says, per worker, who frees
 * its blocks at the end (itself, or the main thread: remote frees), and
 * whether it exits after the input (its heap is abandoned with blocks still
 * live, for hak_collect's sweep or the next worker to take over).  Once
 * every block is freed, every thread collects, and the allocator must hold
 * no block in use. */
#include "fuzz.h"
#include "hakmem.h"
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>

enum { LEAVE = 1, RETIRE = 2 };  /* the header's two bits per worker */

static struct fz_thread th[FZ_THREADS];

static struct worker {
    pthread_t tid;
    bool alive;
    bool collect;  /* this round: only hak_collect, after the main thread's frees */
    unsigned mode;
    sem_t go, done;
} wk[FZ_THREADS];  /* [0] stands for the main thread and is unused */

/* The current input; the semaphores order these writes before the workers' reads. */
static const uint8_t *input;
static size_t input_len;

static void run_ops(struct fz_thread *t)
{
    t->gen = 0;
    t->budget = FZ_BUDGET;
    for (size_t i = 1; i + FZ_OP_BYTES <= input_len; i += FZ_OP_BYTES)
        if (input[i] % FZ_THREADS == t->id)
            fz_run_op(t, input + i);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct fz_thread *t = &th[w - wk];
    for (;;) {
        while (sem_wait(&w->go) != 0)
            ;  /* EINTR */
        if (w->collect) {
            hak_collect();
            sem_post(&w->done);
            continue;
        }
        run_ops(t);
        if (!(w->mode & LEAVE))
            fz_free_all(t);
        hak_collect();
        if (w->mode & RETIRE)
            return NULL;  /* joined by the main thread */
        sem_post(&w->done);
    }
}

static void start(struct worker *w)
{
    if (pthread_create(&w->tid, NULL, worker_main, w) != 0)
        fz_fail("pthread_create failed");
    w->alive = true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (unsigned i = 0; i < FZ_THREADS; i++) {
        th[i].id = i;
        if (i > 0 && (sem_init(&wk[i].go, 0, 0) != 0 || sem_init(&wk[i].done, 0, 0) != 0))
            fz_fail("sem_init failed");
    }
    return 0;
}

static void wait_done(struct worker *w)
{
    while (sem_wait(&w->done) != 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    input = data;
    input_len = size;
    for (unsigned i = 1; i < FZ_THREADS; i++) {
        wk[i].mode = (data[0] >> (2 * (i - 1))) & 3;
        wk[i].collect = false;
        if (!wk[i].alive)
            start(&wk[i]);
        sem_post(&wk[i].go);
    }
    run_ops(&th[0]);
    for (unsigned i = 1; i < FZ_THREADS; i++) {
        if (wk[i].mode & RETIRE) {
            pthread_join(wk[i].tid, NULL);
            wk[i].alive = false;
        } else {
            wait_done(&wk[i]);
        }
    }
    /* What the workers left and what the mailboxes hold: remote frees. */
    for (unsigned i = 0; i < FZ_THREADS; i++)
        fz_free_all(&th[i]);
    fz_drain_boxes(&th[0]);
    hak_collect();
    for (unsigned i = 1; i < FZ_THREADS; i++) {
        if (wk[i].alive) {
            wk[i].collect = true;
            sem_post(&wk[i].go);
            wait_done(&wk[i]);
        }
    }
    fz_check_idle(&th[0]);
    return 0;
}
