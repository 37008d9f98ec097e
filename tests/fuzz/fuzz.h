/* The API fuzzer's shared state: a table of slots per thread, each slot a
 * live block with what the fuzzer knows about it, and the operations that
 * one input byte record drives (fuzz_ops.c, fuzz_stats.c). */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Threads running operations: the libFuzzer thread and two workers. */
#define FZ_THREADS 3
#define FZ_SLOTS 64
/* Mailboxes through which blocks change threads (their frees turn remote). */
#define FZ_BOXES 8
/* One operation: opcode+thread, slot+free variant, size (2 bytes), aux. */
#define FZ_OP_BYTES 5
/* Bytes a thread may fill per input: bounds an input's time and memory,
 * whatever sizes the fuzzer asks for. */
#define FZ_BUDGET ((size_t)8 << 20)

/* Which sized free a block admits (C23: free_sized for malloc, calloc and
 * realloc; free_aligned_sized for aligned_alloc). */
enum fz_origin { FZ_PLAIN, FZ_ALIGNED_ALLOC, FZ_OTHER };

struct fz_block {
    unsigned char *p;  /* NULL: the slot is empty */
    size_t req;        /* the size asked for */
    size_t usable;     /* hak_malloc_usable_size at allocation: all of it is filled */
    uint64_t seed;     /* the fill pattern's seed */
    size_t align;      /* aligned_alloc's alignment (free_aligned_sized's argument) */
    enum fz_origin origin;
};

struct fz_thread {
    unsigned id;
    uint64_t gen;      /* allocations so far in this input: part of each seed */
    size_t budget;     /* bytes this thread may still fill in this input */
    struct fz_block slot[FZ_SLOTS];
    char json[16384];  /* hak_stats_json's large buffer */
};

/* Run one operation record on thread t's slots. */
void fz_run_op(struct fz_thread *t, const uint8_t op[FZ_OP_BYTES]);
/* Check and free every block of t's slots. */
void fz_free_all(struct fz_thread *t);
/* Check and free the blocks left in the mailboxes (from the calling thread). */
void fz_drain_boxes(struct fz_thread *t);
/* hak_stats_json into a buffer of aux % 41 bytes and into t->json: snprintf's
 * contract, nothing written past the length, one well-formed object. */
void fz_stats(struct fz_thread *t, unsigned aux);
/* With every block freed and every thread collected since: the malloc and
 * free counters agree and no byte is in use. */
void fz_check_idle(struct fz_thread *t);

/* Print "fuzz_api: ..." and abort: libFuzzer reports the input. */
__attribute__((noreturn, format(printf, 1, 2))) void fz_fail(const char *fmt, ...);

#endif
