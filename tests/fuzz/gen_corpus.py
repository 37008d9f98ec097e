#!/usr/bin/env python3
"""Write the API fuzzer's seed inputs (tests/fuzz/corpus/seed-*).

Each seed is a small program in fuzz_api's input format, aimed at one part
of the API, so a short run starts from every entry point and size range
instead of rediscovering them.  The encoding mirrors fuzz.h and fuzz_ops.c
(FZ_THREADS, the optab order, size_of and align_of): change them together.

usage: gen_corpus.py DIR
"""
import os
import random
import sys

THREADS = 3
# Index of each operation in fuzz_ops.c's optab (first occurrence).
OP = dict(malloc=0, calloc=3, realloc=4, reallocarray=6, posix_memalign=7,
          aligned_alloc=8, memalign=9, valloc=10, pvalloc=11, usable=12,
          free=13, xchg=16, collect=18, stats=19, check=20)
LEAVE, RETIRE = 1, 2  # per-worker header bits


def header(w1=0, w2=0):
    return bytes([w1 | w2 << 2])


def rec(thread, op, slot=0, v=0, aux=0, variant=0):
    """One record: thread and operation, slot and free variant, size, aux."""
    return bytes([thread + THREADS * OP[op], slot | variant << 6, v & 0xff, v >> 8, aux])


# Size selectors (fuzz_ops.c size_of): range in the top 4 bits.
def tiny(n): return n                                 # 0..15
def small(n): return 0x1000 | (n - 1)                 # 1..256
def cls(i, d=1): return 0x3000 | d << 8 | i           # class i: -1, exact, +1, half
def mid(k): return 0x5000 | k                         # 9 * k, k < 4096
def large(k): return 0x7000 | k                       # 32768 + 1021 * k
def edge(i, d=1): return 0x9000 | d << 4 | i          # boundary i: -1, exact, +1, +2
def huge(i): return 0xa000 | i                        # must fail: ENOMEM


def seed_classes():
    """Every size class, each thread, exact and one past, through realloc."""
    out = header()
    for i in range(80):
        t, s = i % THREADS, i % 64
        out += rec(t, 'malloc', s, cls(i, 1))
        out += rec(t, 'usable', s)
        out += rec(t, 'realloc', s, cls(i, 2))
        out += rec(t, 'realloc', s, cls(i, 3))
        out += rec(t, 'free', s, variant=1)
    return out


def seed_aligned():
    """Every alignment selector with small and large sizes, page allocations."""
    out = header()
    for a in range(32):
        t, s = a % THREADS, a
        out += rec(t, 'posix_memalign', s, small(24), a)
        out += rec(t, 'aligned_alloc', s + 32, mid(100 + a), a)
        out += rec(t, 'free', s + 32, variant=2)
        out += rec(t, 'memalign', s, large(a), a)
        out += rec(t, 'aligned_alloc', s, tiny(a % 16), a)
        out += rec(t, 'free', s, variant=2)
    for i in range(16):
        out += rec(i % THREADS, 'valloc', i, edge(i, 0))
        out += rec(i % THREADS, 'pvalloc', i + 16, small(i * 16 + 1))
        out += rec(i % THREADS, 'realloc', i, small(100))
    return out


def seed_huge():
    """Impossible sizes through every allocating call, live blocks kept intact."""
    out = header()
    for i in range(16):
        t = i % THREADS
        out += rec(t, 'malloc', 1, small(64))
        for op in ('malloc', 'calloc', 'posix_memalign', 'aligned_alloc', 'memalign',
                   'valloc', 'pvalloc'):
            out += rec(t, op, 2, huge(i), aux=i * 3)
        out += rec(t, 'realloc', 1, huge(i))
        out += rec(t, 'reallocarray', 1, huge(i), aux=i | 16 * (i & 1))
        out += rec(t, 'calloc', 3, huge(i), aux=32 | i)
        out += rec(t, 'check', 1)
    return out


def seed_remote():
    """Blocks change threads through the mailboxes; the main thread frees leftovers."""
    out = header(LEAVE, 0)
    for i in range(48):
        out += rec(1, 'malloc', i, small(8 + 8 * i))
        out += rec(1, 'xchg', i, aux=i)
        out += rec(2, 'xchg', i, aux=i)
        out += rec(2, 'realloc', i, mid(i * 7))
        out += rec(0, 'xchg', i, aux=i + 3)
        out += rec(0, 'free', i, variant=i % 3)
    return out


def seed_retire():
    """Workers exit with live blocks: their heaps are abandoned, then adopted."""
    out = header(LEAVE | RETIRE, RETIRE)
    for i in range(40):
        out += rec(1, 'malloc', i, cls(i, 1))
        out += rec(2, 'calloc', i, cls(i + 40, 1), aux=i % 16)
        out += rec(1, 'xchg', i + 1, aux=i)
        out += rec(0, 'xchg', i, aux=i)
    return out


def seed_stats():
    """hak_stats_json into every small length, collect and usable size between."""
    out = header()
    for n in range(41):
        t = n % THREADS
        out += rec(t, 'malloc', n, small(n + 1))
        out += rec(t, 'stats', aux=n)
        out += rec(t, 'collect')
        out += rec(t, 'usable', n)
        out += rec(t, 'free', n)
    return out


def seed_large():
    """Large blocks grown and shrunk in place and moved, calloc over reused ones."""
    out = header()
    for k in range(12):
        t = k % THREADS
        out += rec(t, 'malloc', k, large(k * 300))
        out += rec(t, 'realloc', k, large(k * 300 + 150))
        out += rec(t, 'realloc', k, edge(k))
        out += rec(t, 'realloc', k, mid(k * 100))
        out += rec(t, 'free', k)
        out += rec(t, 'calloc', k, large(k * 300), aux=k)
        out += rec(t, 'check', k)
    return out


def seed_random():
    """A long mixed program: 4 KiB of uniformly random records."""
    rnd = random.Random(20251122)
    return bytes([rnd.randrange(256) for _ in range(1 + 5 * 819)])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, fn in sorted(globals().items()):
        if name.startswith('seed_'):
            with open(os.path.join(sys.argv[1], name.replace('_', '-')), 'wb') as f:
                f.write(fn())


if __name__ == '__main__':
    main()
