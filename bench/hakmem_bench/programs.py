"""Real programs under each allocator: interpreters, a compiler, a database,
sort and compressors.

Runs each program found on this machine under every allocator (preloaded),
interleaved, and compares hakmem's CPU time and peak RSS with each reference's,
paired by round.  Several of them are multi-threaded: sort and the compressors
hand buffers between threads, and one Python program passes blocks from a
producer thread to a consumer, so that every one is freed by the thread that
did not allocate it.  A program that is not installed is skipped, and the
report says which package has it.  The inputs are generated from a fixed seed
into DIR/inputs; --scale shrinks or grows them."""

import collections
import os
import random
import shlex
import shutil
import subprocess
import sys
import time

from . import ALLOCATORS, UsageError, fmt, locate, results, stats, sweep

PY_DICTS = '''import json, sys
n = int(sys.argv[1])
tot = 0
for r in range(2):
    d = {}
    for i in range(n):
        d["k%d" % i] = [i, str(i) * (i % 7), {"x": i, "y": [i] * (i % 5)}]
    s = json.dumps(d)
    tot += len(s) + len(json.loads(s))
    tot += len(sorted(d.items(), key=lambda kv: len(kv[1][1])))
print(tot)
'''

# Objects above 512 bytes bypass pymalloc, so each bytes object here is a
# malloc by the producer and a free by the consumer.
PY_QUEUE = '''import queue, sys, threading
n = int(sys.argv[1])
q = queue.Queue(maxsize=64)
def produce():
    for i in range(n // 64):
        q.put([bytes(600 + (i * 37 + k * 101) % 3500) for k in range(64)])
    q.put(None)
def consume(out):
    got = 0
    while True:
        batch = q.get()
        if batch is None:
            break
        got += sum(len(b) for b in batch)
    out.append(got)
out = []
t = threading.Thread(target=consume, args=(out,))
t.start()
produce()
t.join()
print(out[0])
'''

PERL_HASH = '''my $n = shift;
my $tot = 0;
for my $r (1..2) {
  my %h;
  for my $i (1..$n) { $h{"key$i"} = [ $i, "x" x ($i % 50), { a => $i } ]; }
  my @k = sort { length($h{$a}[1]) <=> length($h{$b}[1]) } keys %h;
  my $s = join(",", map { $_ . "=" . $h{$_}[1] } @k[0..$#k / 3]);
  $s =~ s/(\\d+)/<$1>/g;
  $tot += length($s) + scalar(@k);
}
print "$tot\\n";
'''

RUBY_HASH = '''n = ARGV[0].to_i
tot = 0
5.times do
  h = {}
  n.times { |i| h["k#{i}"] = [i, "y" * (i % 40), { a: i }] }
  tot += h.map { |k, v| "#{k}=#{v[1]}" }.join(",").length + h.size
end
puts tot
'''

TCL_LISTS = '''set n [lindex $argv 0]
set tot 0
for {set r 0} {$r < 4} {incr r} {
  array unset h
  for {set i 0} {$i < $n} {incr i} { set h(k$i) [list $i [string repeat z [expr {$i % 30}]]] }
  incr tot [llength [lsort [array names h]]]
}
puts $tot
'''

SQL = '''CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c INTEGER);
CREATE INDEX tb ON t(b);
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x < {rows})
INSERT INTO t SELECT x, hex(randomblob(8 + x % 40)), x % 1000 FROM n;
SELECT c, count(*), max(length(b)) FROM t GROUP BY c ORDER BY 2 DESC LIMIT 3;
SELECT count(*) FROM t t1 JOIN t t2 ON t1.c = t2.c AND t1.a < t2.a WHERE t1.a < {join};
'''

CXX = '''#include <regex>
#include <map>
#include <unordered_map>
#include <vector>
#include <string>
#include <iostream>
#include <sstream>
#include <algorithm>
#include <functional>
#include <set>
#include <deque>
#include <future>
template <int N> struct R { static int f(std::map<std::string, std::vector<int>> &m) { m[std::to_string(N)].push_back(N); return R<N - 1>::f(m) + N; } };
template <> struct R<0> { static int f(std::map<std::string, std::vector<int>> &) { return 0; } };
int main() {
  std::map<std::string, std::vector<int>> m;
  std::regex re("([a-z]+)([0-9]*)");
  std::unordered_map<std::string, std::set<int>> u;
  std::stringstream ss; ss << R<{depth}>::f(m);
  auto fut = std::async(std::launch::async, [&] { return std::regex_match(ss.str(), re); });
  std::deque<std::function<int(int)>> d; d.push_back([](int x) { return x + 1; });
  std::cout << ss.str() << fut.get() << u.size() << d.front()(1) << "\\n";
}
'''


def _text(path, lines, seed):
    """A text file of `lines` lines of random hex keys and numbers."""
    rng = random.Random(seed)
    with open(path, 'w') as f:
        for i in range(lines):
            f.write('%012x %d %s\n' % (rng.getrandbits(48), i, 'abcdefgh'[i % 8] * (i % 23)))


def _write(path, text):
    with open(path, 'w') as f:
        f.write(text)


# What a program does, its threads, the executables it needs, the Debian
# package that has them, and setup(inputs, scale) -> its argv.  Setups
# write only into inputs/, and the argv names its files by their absolute
# paths.
Program = collections.namedtuple('Program', 'what threads needs package setup')


def _py(script, n):
    def setup(d, scale):
        path = os.path.join(d, script[0])
        _write(path, script[1])
        return [_python(), path, str(max(1, int(n * scale)))]
    return setup


def _python():
    """The system Python: a pyenv or venv shim would run under the preload too."""
    for p in ('/usr/bin/python3', shutil.which('python3') or ''):
        if p and os.access(p, os.X_OK):
            return p
    return 'python3'


def _interp(exe, name, text, n):
    def setup(d, scale):
        path = os.path.join(d, name)
        _write(path, text)
        return [exe, path, str(max(1, int(n * scale)))]
    return setup


def _sql(d, scale):
    path = os.path.join(d, 'load.sql')
    _write(path, SQL.format(rows=max(1000, int(300000 * scale)), join=max(100, int(3000 * scale))))
    return ['sqlite3', ':memory:', '.read ' + shlex.quote(path)]


def _sort(d, scale):
    path = os.path.join(d, 'sort.txt')
    _text(path, max(1000, int(1500000 * scale)), 2)
    return ['sort', '-S', '64M', '--parallel=2', path, '-o', '/dev/null']


def _cxx(d, scale):
    path = os.path.join(d, 'big.cpp')
    _write(path, CXX.replace('{depth}', str(max(10, int(300 * scale)))))
    return ['g++', '-O2', '-c', path, '-o', '/dev/null']


def _compress(cmd, lines):
    def setup(d, scale):
        path = os.path.join(d, f'text{lines}.txt')
        _text(path, max(1000, int(lines * scale)), 3)
        return ['sh', '-c', cmd.format(f=shlex.quote(path))]
    return setup


def _git(d, scale):
    """A repository of generated history (git fast-import), repacked from
    scratch with 2 threads on every run."""
    repo = os.path.join(d, 'repo')
    if os.path.isdir(repo):
        shutil.rmtree(repo)
    subprocess.run(['git', 'init', '-q', '--bare', repo], check=True)
    rng = random.Random(4)
    files = [[f'line {i} {rng.getrandbits(32):08x}\n' for i in range(400)] for _ in range(20)]
    out = []
    for c in range(max(20, int(3000 * scale))):
        f = files[c % 20]
        for _ in range(8):
            f[rng.randrange(len(f))] = f'changed {c} {rng.getrandbits(40):010x}\n'
        f.append(f'added {c}\n')
        body = ''.join(f).encode()
        msg = f'commit {c}\n'.encode()
        out.append(b'commit refs/heads/main\n')
        out.append(b'committer t <t@t> %d +0000\n' % (1700000000 + c))
        out.append(b'data %d\n%s' % (len(msg), msg))
        out.append(b'M 644 inline f%d.txt\ndata %d\n%s\n' % (c % 20, len(body), body))
    subprocess.run(['git', '-C', repo, 'fast-import', '--quiet'], input=b''.join(out), check=True)
    return ['git', '-C', repo, 'repack', '-a', '-d', '-f', '-q', '--threads=2', '--window=50']


PROGRAMS = {
    'python-dicts': Program('CPython: dicts of lists, JSON round trip, sort', 1, [_python()], 'python3',
                     _py(('dicts.py', PY_DICTS), 120000)),
    'python-queue': Program('CPython: a producer thread passes 600-4100 byte objects to a consumer',
                     2, [_python()], 'python3', _py(('handoff.py', PY_QUEUE), 2000000)),
    'perl-hash': Program('Perl: a hash of arrays, sort, join, regex', 1, ['perl'], 'perl',
                  _interp('perl', 'hash.pl', PERL_HASH, 150000)),
    'ruby-hash': Program('Ruby: a hash of arrays, map, join', 1, ['ruby'], 'ruby',
                  _interp('ruby', 'hash.rb', RUBY_HASH, 150000)),
    'tcl-lists': Program('Tcl: an array of lists, lsort', 1, ['tclsh'], 'tcl',
                  _interp('tclsh', 'lists.tcl', TCL_LISTS, 150000)),
    'sqlite': Program('SQLite in memory: a table with an index, group by, self-join', 1, ['sqlite3'],
               'sqlite3', _sql),
    'sort': Program('GNU sort of a text file, 2 threads', 2, ['sort'], 'coreutils', _sort),
    'g++': Program('g++ -O2 of a C++ file of STL templates', 1, ['g++'], 'g++', _cxx),
    'git-repack': Program('git repack -adf of a generated history, 2 threads', 2, ['git'], 'git',
                   _git),
    'xz': Program('xz -6, 2 threads, and back, compared with the input', 2, ['xz', 'cmp'], 'xz-utils',
           _compress('xz -T2 -6 -c {f} | xz -d -c | cmp - {f}', 100000)),
    'zstd': Program('zstd -3, 2 threads, and back, compared with the input', 2, ['zstd', 'cmp'], 'zstd',
             _compress('zstd -T2 -q -3 -c {f} | zstd -d -q -c | cmp - {f}', 1500000)),
    'pigz': Program('pigz, 2 threads, and back, compared with the input', 2, ['pigz', 'cmp'], 'pigz',
             _compress('pigz -p 2 -c {f} | pigz -d -c | cmp - {f}', 1500000)),
}


def available(names):
    """(chosen programs found here, {skipped: reason})."""
    have, skipped = [], {}
    for n in names:
        missing = [x for x in PROGRAMS[n].needs if shutil.which(x) is None]
        if missing:
            skipped[n] = f"needs {', '.join(missing)} (Debian package {PROGRAMS[n].package})"
        else:
            have.append(n)
    return have, skipped


def version(exe):
    """The first line `exe --version` prints, or '?'."""
    try:
        p = subprocess.run([exe, '--version'], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return '?'
    line = (p.stdout or p.stderr).strip().splitlines()
    return line[0][:100] if line else '?'


def run(opts, log=lambda s: print(s, file=sys.stderr, flush=True)):
    names = sweep.select(opts.programs, list(PROGRAMS), 'program') if opts.programs else list(PROGRAMS)
    allocs = sweep.select(opts.allocators, ALLOCATORS, 'allocator') if opts.allocators else list(ALLOCATORS)
    if opts.runs < 1:
        raise UsageError('--runs: at least 1')
    if not opts.scale > 0:
        raise UsageError('--scale: a positive number')
    have, skipped = available(names)
    for n, why in skipped.items():
        log(f'hakmem-bench: skipping {n}: {why}')
    if not have:
        raise UsageError('none of the chosen programs is installed')
    allocs, preloads = sweep.available_allocators(allocs, opts.lib, log)
    stub = locate.stub_or_warn(log)
    outdir = opts.out or os.path.join('results', 'programs-' + time.strftime('%Y%m%d-%H%M%S'))
    inputs = os.path.abspath(os.path.join(outdir, 'inputs'))
    os.makedirs(inputs, exist_ok=True)
    argvs, threads = {}, {}
    for n in have:
        log(f'hakmem-bench: preparing {n}')
        argvs[n], threads[n] = PROGRAMS[n].setup(inputs, opts.scale), PROGRAMS[n].threads
    meta = {'mode': 'programs', 'command': shlex.join(sys.argv), 'note': opts.note or '',
            'children': {n: shlex.join(a) for n, a in argvs.items()},
            'programs': {n: {'what': PROGRAMS[n].what, 'threads': threads[n]} for n in have},
            'program_versions': {n: version(PROGRAMS[n].needs[0]) for n in have},
            'skipped': skipped, 'scale': opts.scale, 'runs': opts.runs, 'timeout': opts.timeout,
            'threads': sorted(set(threads.values())), 'workloads': have, 'allocators': allocs,
            **sweep.meta_common(preloads, stub, log)}
    # The plan of a sweep at one thread count, each program at its own.
    items = [(w, threads[w], a, r, pos) for (w, _, a, r, pos) in sweep.plan(have, [0], allocs, opts.runs, min_threads={})]
    failed, interrupted = sweep.execute(items, lambda w, t, r: argvs[w], preloads, stub, opts, outdir,
                                        meta, plain=True, stats_on=True, log=log)
    rows = results.read(os.path.join(outdir, 'results.csv'))
    path = os.path.join(outdir, 'programs.md')
    with open(path, 'w') as f:
        f.write('\n'.join(report(rows, meta)) + '\n')
    log(f'hakmem-bench: {len(items)} runs planned, {failed} failed; report: {path}')
    print(path)
    return sweep.exit_status(failed, interrupted)


def _by_round(rows, program, alloc):
    return sorted((r for r in rows if r['workload'] == program and r['allocator'] == alloc),
                  key=lambda r: r['run'])


def compare(rows, meta):
    """Per program: {reference: (CPU time ratio hakmem / reference paired by
    round: median, (q1, q3)), peak RSS ratio of the medians}, and the
    allocator of the least median CPU time."""
    out = {}
    refs = [a for a in meta['allocators'] if a != 'hakmem']
    for p in meta['workloads']:
        hk = _by_round(rows, p, 'hakmem')
        entry = {'refs': {}, 'fastest': None}
        pts = stats.aggregate([r for r in rows if r['workload'] == p])
        cpu = {a: g['cpu_s'] for (w, t, a), g in pts.items() if g['cpu_s']}
        rss = {a: g['maxrss_kb'] for (w, t, a), g in pts.items() if g['maxrss_kb']}
        if cpu:
            entry['fastest'] = min(cpu, key=cpu.get)
        for a in refs:
            # paired() takes throughputs: per CPU second, the inverse of the
            # time, so hakmem's time over the reference's is ref / hakmem.
            med, _, q = stats.paired(_by_round(rows, p, a), hk, 'cpu')
            entry['refs'][a] = (med, q, stats.ratio(rss.get('hakmem'), rss.get(a)))
        entry['cpu'], entry['rss'] = cpu, rss
        entry['remote'] = stats.median([r['free_remote'] for r in hk if r['status'] == 'ok'
                                        and isinstance(r.get('free_remote'), (int, float))])
        out[p] = entry
    return out


def report(rows, meta):
    """The programs table as Markdown lines."""
    refs = [a for a in meta['allocators'] if a != 'hakmem']
    cmp = compare(rows, meta)
    lines = ['## CPU time and peak RSS of real programs', '',
             "hakmem's CPU time (user + system, of the program and its children) over each "
             "reference's, paired by round: the median of the rounds' ratios, below 1 where "
             "hakmem took less. Peak RSS: the ratio of the medians of the largest process's "
             "resident set. Remote frees: hakmem's count of frees by a thread other than the "
             "block's owner (`HAKMEM_STATS`; of the last process to exit, in a pipeline).", '',
             '| program | threads | hakmem CPU s | ' + ' | '.join(f'CPU vs {a}' for a in refs) +
             ' | ' + ' | '.join(f'RSS vs {a}' for a in refs) + ' | remote frees | least CPU |',
             '|:---|---:|---:|' + '---:|' * (2 * len(refs) + 1) + ':---|']
    for p in meta['workloads']:
        e = cmp[p]
        cells = []
        for a in refs:
            med, q, _ = e['refs'][a]
            cells.append(fmt.ratio_quartiles(med, q))
        cells += ['—' if e['refs'][a][2] is None else fmt.ratio(e['refs'][a][2]) for a in refs]
        hk = e['cpu'].get('hakmem')
        lines.append(f"| {p} | {meta['programs'][p]['threads']} | "
                     f"{'—' if hk is None else f'{hk:.3f}'} | " + ' | '.join(cells) +
                     f" | {'—' if e['remote'] is None else fmt.si(e['remote'])} | {e['fastest'] or '—'} |")
    lines.append('')
    for p in meta['workloads']:
        v = (meta.get('program_versions') or {}).get(p, '?')
        lines.append(f"- `{p}`: {meta['programs'][p]['what']} ({v}); `{meta['children'][p]}`")
    for p, why in (meta.get('skipped') or {}).items():
        lines.append(f'- `{p}`: not run here: {why}')
    return lines
