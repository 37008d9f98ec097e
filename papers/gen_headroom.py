#!/usr/bin/env python3
"""Writes papers/headroom.md from a directory of hakmem-bench profiles.

usage: gen_headroom.py PROFILES_DIR PAPERS_DIR

PROFILES_DIR holds one directory per point, WORKLOAD-THREADS, each with the
profile.md that `hakmem-bench profile --out` writes (`make headroom` makes
them).  Every number in the paper is computed here from the machine-readable
lines of those reports; nothing is typed in by hand."""

import glob
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'bench'))
from hakmem_bench import fmt, profile  # noqa: E402

# A bound this close to its target (relative) is not told from it.
MARGIN = 0.10

# The speed targets of the issues, as (workload, threads or None for all,
# reference or None for the fastest, ratio), in the paper's order.
TARGETS = [('larson', None, None, 1.2), ('xmalloc', None, None, 1.2), ('ring', None, None, 1.2),
           ('mixed', 1, 'mimalloc', 1.15)]


def parse(path):
    """allocator -> (CPU ns/op, allocator ns/op, workload + other ns/op), from
    the hakmem-bench-profile lines of one report (profile.headroom_bound's
    input)."""
    out = {}
    with open(path) as f:
        for line in f:
            if not line.startswith('hakmem-bench-profile '):
                continue
            kv = dict(x.split('=', 1) for x in line.split()[1:])
            try:
                cpu = float(kv['cpu_ns_per_op'].replace(',', ''))
                share = {k: float(kv[k + '_share']) for k in ('allocator', 'workload', 'other')}
            except (KeyError, ValueError):
                continue   # a run without samples prints '-'
            out[kv['allocator']] = (cpu, cpu * share['allocator'], cpu * (share['workload'] + share['other']))
    return out


def load(pdir):
    """({(workload, threads): parse()}, the hakmem builds measured, the
    lowest and highest load averages the reports give)."""
    points, builds, loads = {}, set(), []
    for report in glob.glob(os.path.join(pdir, '*', 'profile.md')):
        m = re.fullmatch(r'(.+)-(\d+)', os.path.basename(os.path.dirname(report)))
        if m:
            points[(m.group(1), int(m.group(2)))] = parse(report)
            text = open(report).read()
            b = re.search(r'^Measured (hakmem [^;]*);', text, re.M)
            if b:
                builds.add(b.group(1))
            la = re.search(r'load average ([0-9.]+) at the start, ([0-9.]+)', text)
            if la:
                loads += [float(la.group(1)), float(la.group(2))]
    return points, builds, (min(loads), max(loads)) if loads else None


def load_instructions(pdir):
    """[(workload, threads, {allocator: {ops, total, in_allocator,
    in_workload, in_other}}, bound fields or None)] from the instructions-WORKLOAD-THREADS/
    instructions.md reports that `hakmem-bench instructions --out` writes."""
    found = []
    for report in sorted(glob.glob(os.path.join(pdir, 'instructions-*', 'instructions.md'))):
        m = re.fullmatch(r'instructions-(.+)-(\d+)', os.path.basename(os.path.dirname(report)))
        if not m:
            continue
        runs, bound = {}, None
        with open(report) as f:
            for line in f:
                if line.startswith('hakmem-bench-instructions '):
                    kv = dict(x.split('=', 1) for x in line.split()[1:])
                    name = kv.pop('allocator')
                    runs[name] = {k: int(v) for k, v in kv.items()}
                elif line.startswith('hakmem-bench-instructions-bound '):
                    bound = dict(x.split('=', 1) for x in line.split()[1:])
        if runs:
            found.append((m.group(1), int(m.group(2)), runs, bound))
    return found


def render_instructions(found):
    out = []
    for w, t, runs, bound in found:
        ref = bound['reference'] if bound else 'mimalloc'
        ref_total = runs[ref]['total'] if ref in runs else None
        rows = [[a, f'{r["total"] / 1e6:.1f}M', f'{r["total"] / ref_total:.3f}x' if ref_total else fmt.DASH,
                 f'{r["in_allocator"] / 1e6:.1f}M', f'{(r["in_workload"] + r["in_other"]) / 1e6:.1f}M',
                 f'{r["in_allocator"] / r["ops"]:.1f}' if r['ops'] else fmt.DASH] for a, r in runs.items()]
        out += [f'## Instructions: {w} at {t} thread{"s" if t > 1 else ""}', '',
                '`hakmem-bench instructions` (callgrind) splits each allocator\'s run into the '
                'allocator\'s own instructions and the rest (the workload program, libc, the dynamic '
                'loader). The rest differs between allocators only by their start-up and the libc '
                'functions they call (memset, locks): a few million instructions at most.', '',
                fmt.table(['allocator', 'instructions', f'vs {ref}', 'in the allocator', 'the rest',
                           'allocator per operation'], rows), '']
        if bound:
            target, allowed = float(bound['target']), float(bound['allowed_per_op'])
            hk = runs.get('hakmem')
            out += [f'A target of {target:.2f}x {ref}\'s instructions leaves an allocator at most '
                    f'{allowed:.1f} instructions per operation (one malloc and one free, with their calls), '
                    f'given the fewest instructions outside the allocator of any run ({int(bound["least_rest"]) / 1e6:.1f}M, '
                    f'under {bound["under"]}). An allocator of no instructions at all would come to '
                    f'{float(bound["floor"]):.3f}x.' +
                    (f' hakmem spends {hk["in_allocator"] / hk["ops"]:.1f}, {ref} '
                     f'{runs[ref]["in_allocator"] / runs[ref]["ops"]:.1f}.' if hk and hk['ops'] and runs[ref]['ops'] else ''),
                    '']
    return out


def target_of(w, t):
    for tw, tt, ref, ratio in TARGETS:
        if tw == w and tt in (None, t):
            return ref, ratio
    return None


def render(points, builds, loads, instructions=()):
    order = [w for w, *_ in TARGETS]
    workloads = sorted({w for w, _ in points}, key=lambda w: (order.index(w) if w in order else len(order), w))
    rows, verdicts = [], []
    for w in workloads:
        for t in sorted(t for ww, t in points if ww == w):
            p = points[(w, t)]
            tgt = target_of(w, t)
            b = profile.headroom_bound(p, tgt[0] if tgt else None)
            if b is None:
                continue
            ref, ref_ns, rest, least, lim = b
            hk = p.get('hakmem')
            ratio = ref_ns / hk[0] if hk else None
            cells = [w, str(t), ref, fmt.num(ref_ns), fmt.num(p[ref][1]),
                     f'{fmt.num(rest)} ({least})', f'{lim:.2f}x',
                     f'{ratio:.2f}x' if ratio else fmt.DASH,
                     fmt.num(hk[1]) if hk else fmt.DASH,
                     f'{tgt[1]:.2f}x' if tgt else fmt.DASH]
            rows.append(cells)
            if tgt:
                verdicts.append((w, t, ref, lim, tgt[1]))
    out = ['# Headroom: how much faster any allocator could run these workloads', '',
           'Each workload point was profiled under every allocator (`make headroom`: '
           '`hakmem-bench profile`, interleaved runs, about one sample per kernel tick of each '
           'thread\'s CPU time). A profile splits the CPU time per operation into the allocator\'s '
           'own code, the workload\'s own code, waiting (sched_yield, futex) and the rest.', '',
           'An allocator that cost nothing would still run the workload\'s own code and the rest. '
           'Its CPU time per operation would be at least the least such time measured under any '
           'allocator at that point (waiting is left out, which favours the bound). The bound is '
           'the reference\'s CPU time per operation over that least time: no allocator can run the '
           'point faster than that, short of making the workload\'s own code run faster than any '
           'allocator measured makes it run. The workload\'s own time does depend on the allocator '
           '(where blocks sit, whether their lines are in this core\'s cache), which is why the '
           'least over all allocators is taken.', '',
           'Measured: ' + (', '.join(sorted(builds)) or 'hakmem (build not recorded)') +
           (f'; 1-minute load average {loads[0]:.2f} to {loads[1]:.2f}' if loads else '') +
           '. This machine is shared: whole runs move by tens of percent with its load, so compare '
           'the allocators within a row, not rows with other measurements.', '',
           'Columns: the reference (the fastest one measured, or the one the target names); its '
           'CPU ns per operation and the part in itself; the least non-allocator time (and under '
           'which allocator); the bound; hakmem\'s ratio to the reference (CPU time); hakmem\'s '
           'own ns per operation; the issues\' target for the point.', '',
           fmt.table(['workload', 'threads', 'reference', 'ref. ns/op', 'ref. in itself',
                      'least rest ns/op', 'bound', 'hakmem', 'hakmem in itself', 'target'], rows), '']
    out += ['## What the bounds say', '',
            f'A bound within a factor of {1 + MARGIN:.2g} of its target, either way, is too close to call: the bounds of one point '
            'move by that much between runs on this shared machine (its CPU time per operation '
            'moves by more).', '']

    def listing(vs):
        return '; '.join(f'{w} at {t} thread{"s" if t > 1 else ""} (bound {lim:.2f}x {ref}, target {tg:.2f}x)'
                         for w, t, ref, lim, tg in vs) + '.'
    # Three groups that part the points: a bound within a factor 1 + MARGIN
    # of its target, either way, is too close to call.
    out_of_reach = [v for v in verdicts if v[3] * (1 + MARGIN) < v[4]]
    room = [v for v in verdicts if v[3] > v[4] * (1 + MARGIN)]
    groups = [('Targets out of reach of any allocator at these points', out_of_reach),
              ('Too close to call', [v for v in verdicts if v not in out_of_reach and v not in room]),
              ('Targets the bound leaves room for (not that any allocator reaches them)', room)]
    for title, vs in groups:
        if vs:
            out += [f'{title}: {listing(vs)}', '']
    out += ['The shares come from samples (a few hundred per allocator and point), so each bound '
            'also carries a sampling error of a few percent; taking the least time over five '
            'allocators leans the bound upward.', '']
    out += render_instructions(instructions)
    return '\n'.join(out)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    points, builds, loads = load(argv[1])
    if not points:
        print(f'gen_headroom.py: no WORKLOAD-THREADS/profile.md under {argv[1]}', file=sys.stderr)
        return 1
    os.makedirs(argv[2], exist_ok=True)
    with open(os.path.join(argv[2], 'headroom.md'), 'w') as f:
        f.write(render(points, builds, loads, load_instructions(argv[1])))
    print(f'wrote {os.path.join(argv[2], "headroom.md")} from {len(points)} points')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
