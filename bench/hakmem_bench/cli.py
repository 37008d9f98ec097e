"""Command line: sweep, ab, profile, instructions, numa, burst, programs, health, presets, summarize."""

import argparse
import os
import sys

from . import (ALLOCATORS, WORKLOADS, UsageError, ab, burst, health, instructions, numa_study, profile,
               programs, sweep)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _common(p, timeout=120):
    p.add_argument('--bench-dir', metavar='DIR',
                   help='where the workload programs are (default: $HAKMEM_BENCH_DIR, '
                        'the build tree, the installed pkglibexecdir)')
    p.add_argument('--lib', metavar='PATH',
                   help='libhakmem.so to preload (default: $HAKMEM_LIB, the build tree, libdir)')
    p.add_argument('--timeout', type=float, default=timeout, metavar='SECONDS',
                   help=f'kill a run after this long and record it as failed (default {timeout})')


def _one_point(p, threads_help, allocators_default, report):
    """The options of a command that measures one workload at one thread
    count under several allocators (profile, instructions)."""
    p.add_argument('--workload', default='mixed', help='default mixed')
    p.add_argument('--threads', type=int, default=1, help=threads_help)
    p.add_argument('--allocators', metavar='A,...', help=f'default: {allocators_default}')
    p.add_argument('--quick', action='store_true', help='pass --quick to the workload')
    p.add_argument('--workload-args', metavar='ARGS', action='append',
                   help='more arguments for the workload (repeatable)')
    p.add_argument('--out', metavar='DIR', help=f'also write the report to DIR/{report}')
    p.set_defaults(latency=False)  # sweep.workload_argv's field: no latency timing under a profiler


def parser():
    top = Parser(prog='hakmem-bench',
                 description='Benchmark sweeps of hakmem against glibc, mimalloc, jemalloc '
                             'and tcmalloc, all preloaded into the same workload programs.')
    sub = top.add_subparsers(dest='cmd', metavar='COMMAND', parser_class=Parser)

    s = sub.add_parser('sweep', help='workloads x threads x allocators x repeats -> DIR')
    s.add_argument('--workloads', metavar='W,...',
                   help=f'default: every built one of {",".join(WORKLOADS)}')
    s.add_argument('--threads', metavar='N,...', help='default: powers of two up to 4 x cores')
    s.add_argument('--allocators', metavar='A,...', help=f'default: {",".join(ALLOCATORS)}')
    s.add_argument('--runs', type=int, default=5, help='repeats per point (default 5)')
    s.add_argument('--seed', type=int, default=42,
                   help='round r passes --seed SEED+r-1 to the workloads; also seeds the '
                        'order of the allocators in each round (default 42)')
    s.add_argument('--out', metavar='DIR', help='default: results/<timestamp>')
    s.add_argument('--quick', action='store_true', help='pass --quick to the workloads')
    s.add_argument('--latency', action='store_true', help='pass --latency to the workloads')
    s.add_argument('--workload-args', metavar="'[W:] ARGS'", action='append',
                   help="more arguments for every workload, or with 'W:' for workload W "
                        "only (repeatable), e.g. 'mixed: --iters 5000000'")
    s.add_argument('--command', metavar="'PROG ARGS {threads}'",
                   help='sweep your own program instead of the workloads')
    s.add_argument('--name', help='the workload name of --command (default: its basename)')
    s.add_argument('--note', help='a sentence for the summary, e.g. why --runs is below 5')
    s.add_argument('--no-stats', action='store_true',
                   help='do not set HAKMEM_STATS=json for hakmem runs')
    _common(s)

    a = sub.add_parser('ab', help='same-binary A/B of environment settings under hakmem')
    a.add_argument('--env', action='append', metavar="'NAME=V[;NAME=V]'",
                   help="one setting per --env, at least two; '-' for the defaults")
    a.add_argument('--workload', default='mixed', help='default mixed')
    a.add_argument('--threads', type=int, default=1, help='default 1')
    a.add_argument('--runs', type=int, default=5, help='interleaved runs per setting (>= 5)')
    a.add_argument('--threshold', type=float, default=0.02,
                   help='smallest change that counts, as a fraction (default 0.02)')
    a.add_argument('--quick', action='store_true', help='pass --quick to the workload')
    a.add_argument('--workload-args', metavar='ARGS', action='append',
                   help='more arguments for the workload (repeatable)')
    a.add_argument('--command', metavar="'PROG ARGS {threads}'", help='A/B your own program')
    a.add_argument('--out', metavar='DIR', help='also write the runs to DIR/results.csv')
    a.add_argument('--metric', choices=('wall', 'cpu'), default='wall',
                   help='throughput per wall-clock second (default) or per CPU second of the '
                        'timed threads (steadier on a shared machine)')
    _common(a)

    f = sub.add_parser(
        'profile', help='where the CPU time of a workload goes under each allocator',
        description='Runs one workload under each allocator with a sampling profiler preloaded '
                    '(every thread\'s instruction pointer about every millisecond of its CPU time; '
                    'no hardware counters needed), interleaved, and prints per allocator the CPU '
                    'ns per operation spent in the allocator, in the workload\'s own code, waiting '
                    '(sched_yield, futex) and elsewhere, and the functions that take most samples.  '
                    'Function names need addr2line (binutils).  Exit 0, 1 when a run failed, 2 on '
                    'a usage error.')
    _one_point(f, 'default 1', ",".join(ALLOCATORS), 'profile.md')
    f.add_argument('--runs', type=int, default=3, help='interleaved runs per allocator (default 3)')
    f.add_argument('--top', type=int, default=8, help='functions listed per allocator (default 8)')
    _common(f)

    i = sub.add_parser(
        'instructions', help='a workload\'s instructions under each allocator, split (callgrind)',
        description='Runs one workload under each allocator in valgrind --tool=callgrind and '
                    'splits each run\'s instructions into the allocator\'s own (its library; '
                    'glibc\'s malloc functions), the workload program\'s and the rest.  With '
                    '--target R: the most instructions per operation an allocator could spend '
                    'for its run to come within R times the reference\'s count, given the fewest '
                    'instructions outside the allocator of any run.  Needs valgrind.  Exit 0, 1 '
                    'when a run failed, 2 on a usage error.')
    _one_point(i, 'default 1 (see README: Instruction counts)', 'hakmem,mimalloc', 'instructions.md')
    i.add_argument('--reference', default='mimalloc', help='the allocator ratios are taken to (default mimalloc)')
    i.add_argument('--target', type=float, help='a ratio of instructions to the reference, e.g. 0.85')
    _common(i, timeout=1200)

    n = sub.add_parser(
        'numa', help='NUMA placement study: per HAKMEM_NUMA policy, placement and cross-node traffic',
        description='Runs one multi-threaded workload under hakmem with its threads pinned per '
                    'NUMA node (--pin-nodes: thread i on node i mod nodes), once per HAKMEM_NUMA '
                    'policy in every repeat (interleaved), with HAKMEM_STATS=json.  Per policy: '
                    'throughput, placement share (of the sampled resident pages of each '
                    "node's SuperSlabs, the share the kernel reports on that node), "
                    'SuperSlabs per node, cross-node and remote frees per million operations, '
                    'rehomes.  Writes DIR/numa.csv (one row per run) and DIR/numa.md (one row '
                    'per policy) and prints the table.  On a one-node machine the numbers are '
                    'trivial (it says so): run it inside a multi-node kernel, e.g. the VMs of '
                    'tests/vm/run-vm.sh.  Exit 0, 1 when a run failed, 2 on a usage error.')
    n.add_argument('--workload', default='larson', help='default larson')
    n.add_argument('--threads', type=int, help='default 2 x NUMA nodes, at least 2')
    n.add_argument('--policies', default=numa_study.DEFAULT_POLICIES, metavar='P,...',
                   help=f'HAKMEM_NUMA values: local, interleave, off, node:N '
                        f'(default {numa_study.DEFAULT_POLICIES})')
    n.add_argument('--runs', type=int, default=3, help='runs per policy (default 3)')
    n.add_argument('--out', metavar='DIR', help='default: results/numa-<timestamp>')
    n.add_argument('--quick', action='store_true', help='pass --quick to the workload')
    n.add_argument('--workload-args', metavar='ARGS', action='append',
                   help='more arguments for the workload (repeatable)')
    n.add_argument('--from-log', metavar='FILE',
                   help='make the tables from the log of tests/vm/numa-study-vm.sh (a study '
                        'run inside multi-node VMs) instead of running the workload here')
    _common(n)

    b = sub.add_parser(
        'burst', help='memory after a burst of frees, while the program slows down',
        description=burst.__doc__.split('\n\n', 1)[1].replace('\n', ' ') +
        '  Exit 0, 1 when a run failed, 2 on a usage error.')
    b.add_argument('--allocators', metavar='A,...', help='default: ' + ','.join(ALLOCATORS))
    b.add_argument('--freers', default='remote,local', metavar='F,...',
                   help='who frees the burst: remote (another thread), local (the owner); default both')
    b.add_argument('--rates', default='0,10,100', metavar='R,...',
                   help='allocations a second after the frees (0: none); default 0,10,100')
    b.add_argument('--mb', type=int, default=256, help='MiB of blocks in the burst (default 256)')
    b.add_argument('--min-size', type=int, default=16, help='smallest block (default 16)')
    b.add_argument('--max-size', type=int, default=512, help='largest block (default 512)')
    b.add_argument('--seconds', type=int, default=10, help='length of the slow phase (default 10)')
    b.add_argument('--every-ms', type=int, default=100, help='sampling interval (default 100)')
    b.add_argument('--runs', type=int, default=1, help='interleaved runs per allocator and scenario (default 1)')
    b.add_argument('--out', metavar='DIR', help='write burst.md, results.csv, samples.csv, meta.json and plots')
    _common(b)

    g = sub.add_parser(
        'programs', help='real programs (interpreters, g++, sqlite, sort, compressors) per allocator',
        description=programs.__doc__.split('\n\n', 1)[1].replace('\n', ' ') +
        '  Writes DIR/results.csv, DIR/programs.md and meta.json.  Exit 0, 1 when a run '
        'failed, 2 on a usage error.')
    g.add_argument('--programs', metavar='P,...', help='default: ' + ','.join(programs.PROGRAMS))
    g.add_argument('--allocators', metavar='A,...', help='default: ' + ','.join(ALLOCATORS))
    g.add_argument('--runs', type=int, default=5, help='interleaved runs per program and allocator (default 5)')
    g.add_argument('--scale', type=float, default=1.0,
                   help='input sizes relative to the defaults (default 1: about 1-4 s a run)')
    g.add_argument('--out', metavar='DIR', help='default: results/programs-<timestamp>')
    g.add_argument('--note', help='a sentence for the report')
    _common(g, timeout=300)

    h = sub.add_parser('health', help='every preset x workload at 1 and 4 threads, --quick')
    _common(h, timeout=60)

    sub.add_parser('presets', help='list the HAKMEM_PROFILE presets')

    m = sub.add_parser('summarize', help='regenerate summary.md and plots from DIR/results.csv')
    m.add_argument('dir', metavar='DIR')
    return top


def main(argv=None):
    try:
        opts = parser().parse_args(argv)
        if opts.cmd == 'sweep':
            return sweep.run(opts)
        if opts.cmd == 'ab':
            return ab.run(opts)
        if opts.cmd == 'profile':
            return profile.run(opts)
        if opts.cmd == 'instructions':
            return instructions.run(opts)
        if opts.cmd == 'numa':
            return numa_study.run(opts)
        if opts.cmd == 'burst':
            return burst.run(opts)
        if opts.cmd == 'programs':
            return programs.run(opts)
        if opts.cmd == 'health':
            return health.run(opts)
        if opts.cmd == 'presets':
            print('\n'.join(health.presets()))
            return 0
        if opts.cmd == 'summarize':
            path = sweep.summarize(opts.dir, lambda s: print(s, file=sys.stderr))
            print(path)
            return 0
        parser().print_help()
        return 2
    except UsageError as e:
        print(f'hakmem-bench: {e}', file=sys.stderr)
        print("hakmem-bench: try 'hakmem-bench COMMAND --help'", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f'hakmem-bench: {e}', file=sys.stderr)
        return 2
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
