"""hakmem-bench profile: where a workload's CPU time goes under each allocator.

Instruction counts (callgrind) do not show memory stalls, these machines have
no hardware performance counters, and perf (whose software cpu-clock event does
work) profiles one run of one allocator at a time.  The sampler
(bench/hakmem-bench-sampler.c),
preloaded ahead of the allocator, records every thread's instruction pointer
about every millisecond of its CPU time.  Each sample is put in a category:

- allocator: in the preloaded library (for glibc: libc's malloc functions);
- workload:  in the workload program itself (filling and checking blocks...);
- waiting:   sched_yield, futex and sleep wrappers (a thread with no work);
- other:     everything else (libc's memcpy, the dynamic loader, ...).

Samples are spread evenly over CPU time, so a category's share of the samples
times the run's CPU time estimates its CPU time: per operation, the allocator's
own cost in ns, which is what a ratio of whole-run throughputs cannot show (a
workload that spends 80% of its time in its own code cannot run 1.5x faster
whatever the allocator does)."""

import collections
import os
import shutil
import subprocess
import sys
import tempfile

from . import ALLOCATORS, UsageError, fmt, locate, machine, runner, stats, sweep

CATEGORIES = ('allocator', 'workload', 'waiting', 'other')
WAITING = ('sched_yield', 'futex', 'nanosleep', 'usleep', 'pthread_cond_', 'pthread_barrier_',
           'lll_lock_wait', 'pthread_join', 'clock_nanosleep', 'poll', 'epoll_wait', 'select')
GLIBC_ALLOCATOR = ('malloc', 'free', 'calloc', 'realloc', 'memalign', 'valloc', 'pvalloc', 'int_',
                   'tcache', 'arena', 'consolidate', 'unlink_chunk', 'sysmalloc', 'systrim',
                   'heap_trim', 'munmap_chunk', 'mremap_chunk', 'ptmalloc', 'cfree')


def read_samples(path):
    """(samples taken, [instruction pointers kept], [(start, end, offset, file)])."""
    taken, ips, maps = 0, [], []
    with open(path) as f:
        lines = f.read().splitlines()
    in_maps = False
    for line in lines:
        if in_maps:
            parts = line.split(None, 5)
            if len(parts) == 6 and 'x' in parts[1] and parts[5].startswith('/'):
                start, end = (int(x, 16) for x in parts[0].split('-'))
                maps.append((start, end, int(parts[2], 16), parts[5]))
        elif line == 'maps':
            in_maps = True
        elif line.startswith('taken '):
            taken = int(line.split()[1])
        elif line:
            ips.append(int(line, 16))
    return taken, ips, maps


def _is_exec(path):
    """An ET_EXEC ELF file (addresses are absolute), as opposed to PIE or a library."""
    try:
        with open(path, 'rb') as f:
            head = f.read(18)
        return head[:4] == b'\x7fELF' and int.from_bytes(head[16:18], 'little') == 2
    except OSError:
        return False


class Symbolizer:
    """Function names of (file, address) pairs through addr2line, cached; without
    addr2line every sample of a file is one '?' function."""

    def __init__(self):
        self.tool = shutil.which('addr2line')
        self.cache = {}

    def names(self, path, addrs):
        todo = sorted({a for a in addrs if (path, a) not in self.cache})
        if todo and self.tool:
            try:
                out = subprocess.run([self.tool, '-f', '-C', '-e', path] + [hex(a) for a in todo],
                                     capture_output=True, text=True, timeout=300).stdout.splitlines()
            except (OSError, subprocess.SubprocessError):
                out = []
            for i, a in enumerate(todo):
                fn = out[2 * i] if 2 * i < len(out) else '??'
                self.cache[(path, a)] = fn
        for a in todo:
            self.cache.setdefault((path, a), '??')
        return [self.cache[(path, a)] for a in addrs]


def bare(fn):
    """A libc function's name without glibc's internal prefixes: __GI___libc_malloc -> malloc."""
    n = fn.lstrip('_')
    if n.startswith('GI_'):
        n = n[3:].lstrip('_')
    return n[5:] if n.startswith('libc_') else n


def categorize(obj, fn, allocator_file, workload_file):
    base = os.path.basename(obj)
    if allocator_file and obj == allocator_file:
        return 'allocator'
    if obj == workload_file:
        return 'workload'
    if base.startswith('libc.so') or base.startswith('libpthread'):
        if any(w in fn for w in WAITING):
            return 'waiting'
        if not allocator_file and bare(fn).startswith(GLIBC_ALLOCATOR):
            return 'allocator'
    return 'other'


def attribute(files, sym, allocator_file, workload_file):
    """Counts of samples per (category, object, function) over the sample files,
    and the samples taken (some may not have been kept)."""
    counts = collections.Counter()
    taken_all = 0
    for path in files:
        taken, ips, maps = read_samples(path)
        taken_all += taken
        by_obj = collections.defaultdict(list)
        for ip in ips:
            for start, end, off, obj in maps:
                if start <= ip < end:
                    by_obj[obj].append(ip if _is_exec(obj) else ip - start + off)
                    break
            else:
                by_obj['[unknown]'].append(ip)
        for obj, addrs in by_obj.items():
            names = sym.names(obj, addrs) if obj.startswith('/') else ['??'] * len(addrs)
            real = os.path.realpath(obj) if obj.startswith('/') else obj
            for fn in names:
                counts[(categorize(real, fn, allocator_file, workload_file), real, fn)] += 1
    return counts, taken_all


def run(opts, log=lambda s: print(s, file=sys.stderr, flush=True)):
    if opts.runs < 1:
        raise UsageError('profile: --runs must be at least 1')
    names = sweep.select(opts.allocators, ALLOCATORS, 'allocator') if opts.allocators else list(ALLOCATORS)
    sweep.check_workload(opts.workload)
    bdir = locate.bench_dir(opts.bench_dir)
    prog = os.path.join(bdir, opts.workload)
    if not os.access(prog, os.X_OK):
        raise UsageError(f'profile: {prog} is not built')
    sampler = locate.sampler()
    if not sampler:
        raise UsageError(f'profile: {locate.SAMPLER} not found (build it with make, or give '
                         'HAKMEM_BENCH_SAMPLER)')
    libs = locate.resolve_allocators(names, opts.lib, log)
    if not libs:
        raise UsageError('profile: none of the allocators is available')
    argv = sweep.workload_argv(bdir, opts.workload, opts.threads, opts)
    stub = locate.stub_or_warn(log)
    sym = Symbolizer()
    if not sym.tool:
        log('hakmem-bench: addr2line not found (Debian package binutils): samples are '
            'attributed to libraries, not functions; glibc has no allocator share')
    order = list(libs)
    rows = {a: [] for a in order}
    files = {a: [] for a in order}
    work = tempfile.mkdtemp(prefix='hakmem-bench-profile.')
    measured = {'hakmem': machine.hakmem_version(libs.get('hakmem')) if 'hakmem' in libs else None,
                'load_start': os.getloadavg()[0]}
    try:
        for r in range(opts.runs):
            k = r % len(order)
            for a in order[k:] + order[:k]:
                prefix = os.path.join(work, f'{a}.{r}')
                env = {'LD_PRELOAD': f'{sampler} {libs[a]}'.strip(), 'HAKMEM_BENCH_SAMPLES': prefix}
                log(f'[{r + 1}/{opts.runs}] {opts.workload} threads={opts.threads} {a}')
                row = runner.measure(argv, env, opts.timeout, stub)
                if row['status'] != 'ok':
                    tail = (row['_stderr'].strip().splitlines() or ['(no stderr)'])[-1]
                    log(f"hakmem-bench: FAILED {a}: run {r + 1}: {row['status']}: {tail[:200]}")
                    continue
                rows[a].append(row)
                files[a] += [os.path.join(work, n) for n in os.listdir(work) if n.startswith(f'{a}.{r}.')]
        measured['load_end'] = os.getloadavg()[0]
        report = make_report(opts, order, libs, rows, files, sym, os.path.realpath(prog), measured)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report)
    if opts.out:
        os.makedirs(opts.out, exist_ok=True)
        with open(os.path.join(opts.out, 'profile.md'), 'w') as f:
            f.write(report + '\n')
    return 0 if all(len(rows[a]) == opts.runs for a in order) else 1


def make_report(opts, order, libs, rows, files, sym, workload_file, measured):
    head = [f'## Profile of {opts.workload}, threads={opts.threads}, {opts.runs} interleaved run(s) per '
            'allocator', '',
            'Samples of each thread\'s CPU time (about one per kernel tick of it). A category\'s '
            'CPU ns per operation is its share of the samples times the run\'s CPU time, over '
            'its operations (medians over the runs).', '',
            (f'Measured {measured["hakmem"]}; ' if measured['hakmem'] else 'Measured ') +
            f'1-minute load average {measured["load_start"]:.2f} at the start, '
            f'{measured["load_end"]:.2f} at the end.', '']
    table, tops, lines, cost = [], [], [], {}
    for a in order:
        alloc_file = os.path.realpath(libs[a]) if libs[a] else ''
        counts, taken = attribute(files[a], sym, alloc_file, workload_file)
        kept = sum(counts.values())
        share = {c: sum(v for (cat, _, _), v in counts.items() if cat == c) / kept if kept else None
                 for c in CATEGORIES}
        cpu = stats.median([r['cpu_s'] for r in rows[a] if r.get('cpu_s') is not None])
        ops = stats.median([r['ops'] for r in rows[a] if r.get('ops')])
        ns = cpu * 1e9 / ops if cpu and ops else None
        per = {c: ns * share[c] if ns is not None and share[c] is not None else None for c in CATEGORIES}
        if ns is not None and share['allocator'] is not None:
            cost[a] = (ns, per['allocator'], per['workload'] + per['other'])
        table.append([a, fmt.num(cpu), f'{taken:,}', fmt.num(ns)] +
                     [f'{fmt.num(per[c])} ({fmt.pct(share[c])})' for c in CATEGORIES])
        lines.append(f'hakmem-bench-profile allocator={a} runs={len(rows[a])} samples={taken} '
                     f'cpu_ns_per_op={fmt.num(ns, 4)} ' +
                     ' '.join(f'{c}_share={share[c]:.4f}' if share[c] is not None else f'{c}_share=-'
                              for c in CATEGORIES))
        top = counts.most_common(opts.top)
        tops.append(f'**{a}**: ' + ('; '.join(
            f'{fmt.pct(v / kept)} {cat} {os.path.basename(obj)}:{fn}' for (cat, obj, fn), v in top)
            if kept else 'no samples'))
    out = head + [fmt.table(['allocator', 'CPU s', 'samples', 'CPU ns/op'] +
                            [f'{c} ns/op (share)' for c in CATEGORIES], table), '']
    room = headroom(cost)
    if room is not None:
        out += [room[0], '']
        lines.append(room[1])
    out += [f'Top {opts.top} functions by share of each allocator\'s samples:', '']
    return '\n'.join(out + [t + '\n' for t in tops] + lines)


def headroom_bound(cost, ref=None):
    """How much faster than reference ref (None: the fastest reference
    measured) any allocator could run a point.

    cost: allocator -> (CPU ns/op, allocator ns/op, workload + other ns/op).
    An allocator that cost nothing would still run the workload's own code
    and everything else outside the allocator; with the least such time
    measured under any allocator (waiting left out: an allocator could in
    principle remove it), its CPU time per operation would be at least that.
    Returns (ref, ref CPU ns/op, least rest ns/op, allocator of the least
    rest, bound = the first over the second), or None."""
    refs = [a for a in cost if a != 'hakmem']
    if ref is None and refs:
        ref = min(refs, key=lambda a: cost[a][0])
    if ref not in cost:
        return None
    least = min(cost, key=lambda a: cost[a][2])
    rest = cost[least][2]
    if rest <= 0:
        return None
    return ref, cost[ref][0], rest, least, cost[ref][0] / rest


def headroom(cost):
    """The report's headroom paragraph and machine-readable line, or None
    without a reference measured (see headroom_bound)."""
    b = headroom_bound(cost)
    if b is None:
        return None
    best, ns, rest, least, bound = b
    alloc = cost[best][1]
    hk = cost.get('hakmem')
    ratio = ns / hk[0] if hk else None
    text = (f'Headroom: the fastest reference here, {best}, takes {fmt.num(ns)} CPU ns per operation, '
            f'{fmt.num(alloc)} of them in itself. An allocator that cost nothing would still run the '
            f'workload\'s own code and the rest: at least {fmt.num(rest)} ns per operation, the least '
            f'measured here (under {least}; time spent waiting left out). So no allocator can run this '
            f'point more than **{bound:.2f}x** as fast as {best}, short of making the workload\'s own '
            f'code faster than any allocator here does.')
    if ratio is not None:
        text += f' hakmem runs at {ratio:.2f}x {best} ({fmt.num(hk[1])} ns per operation in itself).'
    line = (f'hakmem-bench-headroom fastest={best} cpu_ns_per_op={fmt.num(ns, 4)} '
            f'allocator_ns_per_op={fmt.num(alloc, 4)} least_rest_ns_per_op={fmt.num(rest, 4)} '
            f'under={least} bound={bound:.4f} hakmem_vs_fastest=' +
            (f'{ratio:.4f} hakmem_allocator_ns_per_op={fmt.num(hk[1], 4)}' if ratio is not None else '-'))
    return text, line
