#!/usr/bin/env python3
"""Writes papers/frontier.md from a hakmem-bench sweep directory.

usage: gen_paper.py RESULTS_DIR PAPERS_DIR

Every number in the paper is computed here from RESULTS_DIR/results.csv and
meta.json; the figures are copied from RESULTS_DIR/plots into
PAPERS_DIR/figures, and the data itself into PAPERS_DIR/data/frontier, so
that the paper ships with what it was computed from (tests/sweep/test-paper-data
regenerates the paper from there).  Nothing is typed in by hand, so `make
paper` after a new sweep rewrites the findings too."""

import glob
import json
import os
import shutil
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'bench'))
from hakmem_bench import fmt, plot, results, stats, summary  # noqa: E402

REFS = ('glibc', 'mimalloc', 'jemalloc', 'tcmalloc')
METRIC_NAMES = dict(summary.METRICS)  # set by render() for the rows at hand


def load(rdir):
    rows = results.read(os.path.join(rdir, 'results.csv'))
    meta = {}
    if os.path.isfile(os.path.join(rdir, 'meta.json')):
        with open(os.path.join(rdir, 'meta.json')) as f:
            meta = json.load(f)
    return rows, meta


def copy_figures(rdir, pdir):
    fig = os.path.join(pdir, 'figures')
    os.makedirs(fig, exist_ok=True)
    if results.kept(rdir, pdir, 'frontier'):
        return {n for n in os.listdir(fig) if n.startswith(plot.SWEEP_PLOTS)}
    # The sweep's own plots only: other studies keep theirs here too
    # (papers/gen_burst.py's burst-*.png).
    for prefix in plot.SWEEP_PLOTS:
        for old in glob.glob(os.path.join(fig, prefix + '*.png')) + glob.glob(os.path.join(fig, prefix + '*.svg')):
            os.remove(old)
    names = []
    for src in sorted(glob.glob(os.path.join(rdir, 'plots', '*.png')) +
                      glob.glob(os.path.join(rdir, 'plots', '*.svg'))):
        shutil.copy(src, fig)
        names.append(os.path.basename(src))
    return set(names)


def pct_diff(r):
    d = abs(r - 1) * 100
    return f'{d:.1f}%' if d < 10 else f'{d:.0f}%'


def plural(n, word):
    return f'{n} {word}' + ('' if n == 1 else 's')


# A lead is called settled only when every allocator of the point has this
# many ok runs: with one run min = max, and any lead would look clear.
SETTLED_RUNS = 3


def settled(points, w, t, lead, allocs):
    """Whether the leader's slowest run beat every other allocator's fastest,
    each with SETTLED_RUNS ok runs or more."""
    ps = [points[(w, t, a)] for a in allocs if (w, t, a) in points and points[(w, t, a)]['ops_per_sec']]
    best = points[(w, t, lead)]
    return len(ps) > 1 and all(p['ok'] >= SETTLED_RUNS for p in ps) and \
        all(best['min'] > p['max'] for p in ps if p is not best)


def clear_leads(points, workloads, threads, allocs):
    """Points whose lead is settled (above)."""
    n = 0
    for w in workloads:
        for t in threads:
            ps = [(points[(w, t, a)]['ops_per_sec'], a) for a in allocs
                  if (w, t, a) in points and points[(w, t, a)]['ops_per_sec']]
            if len(ps) > 1:
                n += settled(points, w, t, max(ps)[1], allocs)
    return n


def leader_sentence(points, w, t, allocs):
    """Who leads at one point, by how much, and whether the runs overlap."""
    ps = sorted(((points[(w, t, a)]['ops_per_sec'], a) for a in allocs
                 if (w, t, a) in points and points[(w, t, a)]['ops_per_sec']), reverse=True)
    if not ps:
        return None
    (best, lead), rest = ps[0], ps[1:]
    text = f'{lead} leads with {fmt.si(best)} ops/s'
    if rest:
        second, who = rest[0]
        text += f', {pct_diff(best / second)} ahead of {who}'
        if not settled(points, w, t, lead, allocs):
            few = [a for _, a in ps if points[(w, t, a)]['ok'] < SETTLED_RUNS]
            text += (f' ({", ".join(few)} {"has" if len(few) == 1 else "have"} fewer than '
                     f'{SETTLED_RUNS} ok runs, so the order is not settled)' if few else
                     ' (the run ranges overlap, so the order is not settled)')
    if lead != 'hakmem' and (w, t, 'hakmem') in points and points[(w, t, 'hakmem')]['ops_per_sec']:
        h = points[(w, t, 'hakmem')]['ops_per_sec']
        rank = 1 + sum(1 for v, _ in ps if v > h)
        text += f'; hakmem is {rank} of {len(ps)} at {fmt.ratio(h / best)} of the leader'
    return text


def vs_best(paired, w, t):
    """hakmem / the best reference of each round at one point, per metric."""
    got = [(metric, r.get((w, t, summary.BEST))) for metric, r in paired.items()]
    got = [f'{fmt.ratio_quartiles(v[0], v[2])} {METRIC_NAMES[metric]}'
           for metric, v in got if v and v[0] is not None]
    return ('; paired by round, hakmem / the best reference is ' + ' and '.join(got)) if got else ''


def workload_findings(points, paired, w, threads, allocs):
    lines = []
    for t in threads:
        s = leader_sentence(points, w, t, allocs)
        if s:
            over = ' (oversubscribed)' if any(points.get((w, t, a), {}).get('oversubscribed')
                                               for a in allocs) else ''
            lost = [f'{a} {points[(w, t, a)]["ok"]} of {points[(w, t, a)]["runs"]}' for a in allocs
                    if (w, t, a) in points and points[(w, t, a)]['ok'] < points[(w, t, a)]['runs']]
            if lost:
                s += f' (runs ok: {", ".join(lost)}; the medians are of those)'
            s += vs_best(paired, w, t)
            lines.append(f'- {plural(t, "thread")}{over}: {s}.')
    rss = [(points[(w, t, a)]['maxrss_kb'], a, t) for t in threads for a in allocs
           if (w, t, a) in points and points[(w, t, a)]['maxrss_kb']]
    if rss:
        lo, hi = min(rss), max(rss)
        lines.append(f'- Peak RSS ranges from {fmt.mib(lo[0])} MiB ({lo[1]}, {plural(lo[2], "thread")}) '
                     f'to {fmt.mib(hi[0])} MiB ({hi[1]}, {plural(hi[2], "thread")}).')
    osc = [points[(w, t, 'hakmem')]['os_calls_per_mop'] for t in threads
           if (w, t, 'hakmem') in points and points[(w, t, 'hakmem')]['os_calls_per_mop'] is not None]
    if osc:
        timed = all(points[(w, t, 'hakmem')].get('os_calls_timed') for t in threads if (w, t, 'hakmem') in points)
        lines.append(f'- hakmem made {fmt.num(min(osc))}–{fmt.num(max(osc))} OS calls '
                     '(mmap + munmap + madvise) per million operations across thread counts' +
                     (' in the timed part of the runs.' if timed else
                      ', start-up\'s included (spread over the run\'s length).'))
    return lines


def rss_above_ratios(points, workloads, threads, ref, empty):
    """hakmem / ref of the peak RSS above each allocator's empty run, per
    point where both are above it (the start-up footprints, which differ by
    megabytes, cancel)."""
    if not empty or 'hakmem' not in empty or ref not in empty:
        return []
    out = []
    for w in workloads:
        for t in threads:
            h, o = points.get((w, t, 'hakmem')), points.get((w, t, ref))
            if h and o and h['maxrss_kb'] and o['maxrss_kb']:
                dh, do = h['maxrss_kb'] - empty['hakmem'], o['maxrss_kb'] - empty[ref]
                if dh > 0 and do > 0:
                    out.append(dh / do)
    return out


def headline(points, paired, rows, workloads, threads, allocs, cores, empty=None):
    out = []
    if 'hakmem' not in allocs:
        return ['- hakmem was not part of this sweep.']
    for ref in [a for a in REFS if a in allocs]:
        r = summary.hakmem_ratios(points, workloads, threads, [ref], 'ops_per_sec')
        inside = [v for k, v in r.items() if k[1] <= cores]
        m = summary.hakmem_ratios(points, workloads, threads, [ref], 'maxrss_kb')
        above = rss_above_ratios(points, workloads, threads, ref, empty)
        if r:
            wins = sum(1 for v in r.values() if v and v > 1)
            out.append(f'- Against {ref}: hakmem\'s throughput is {fmt.ratio(stats.geomean(r.values()))} '
                       f'(geometric mean over {len(r)} points; {fmt.ratio(stats.geomean(inside))} '
                       f'over the {len(inside)} points with at most {cores} threads), faster at '
                       f'{wins} of {len(r)}; peak RSS {fmt.ratio(stats.geomean(m.values()))}' +
                       (f', {fmt.ratio(stats.geomean(above))} above each one\'s empty run' if above else '') + '.')
    best = [(metric, [v[0] for k, v in r.items() if k[2] == summary.BEST and v[0] is not None])
            for metric, r in paired.items()]
    best = [(metric, v) for metric, v in best if v]
    if best:
        out.append('- Against the best reference of each round (paired by round): hakmem\'s throughput is ' +
                   ' and '.join(f'{fmt.ratio(stats.geomean(v))} {METRIC_NAMES[metric]} (faster than every '
                                f'reference at {sum(1 for x in v if x > 1)} of {len(v)} points)'
                                for metric, v in best) +
                   '; geometric means of the per-point medians.')
    leads = {}
    for w in workloads:
        for t in threads:
            ps = [(points[(w, t, a)]['ops_per_sec'], a) for a in allocs
                  if (w, t, a) in points and points[(w, t, a)]['ops_per_sec']]
            if ps:
                leads[max(ps)[1]] = leads.get(max(ps)[1], 0) + 1
    total = sum(leads.values())
    out.append('- Fastest allocator per (workload, threads) point: ' +
               ', '.join(f'{a} {n} of {total}' for a, n in
                         sorted(leads.items(), key=lambda x: -x[1])) +
               f'. At {clear_leads(points, workloads, threads, allocs)} of the {total} points '
               'the leader\'s slowest run beat every other allocator\'s fastest run; '
               'elsewhere the run ranges overlap and the order is not settled.')
    bad = [r for r in rows if r['status'] != 'ok']
    if bad:
        who = sorted({(r['allocator'], r['workload']) for r in bad})
        out.append(f'- {len(bad)} of {len(rows)} runs failed (' +
                   ', '.join(f'{a} on {w}' for a, w in who) + '); see "Failed runs".')
    else:
        out.append(f'- All {len(rows)} runs exited 0 and their workloads\' own checks passed.')
    return out


# How each workload differs from the published program of its name, as read
# in their sources (bench/*.c headers say more).
WORKLOAD_NOTES = {
    'larson': 'after Larson and Krishnan\'s server benchmark, with one slot array shared by all '
              'threads (about (T−1)/T of frees are remote) where the original gives each thread '
              'its own array and hands it to the next thread; sizes are the run line\'s.',
    'xmalloc': 'after xmalloc-test (Lever and Boreham): producers pass batches of 64 blocks to '
               'consumers over one bounded channel per producer, where the original uses one '
               'locked queue and batches of 4096, and blocks are not filled; `--threads` counts '
               'producers and consumers together, at least one of each.',
    'threadtest': 'Hoard\'s threadtest: each thread allocates and frees rounds of objects of '
                  'one size.',
    'cache-scratch': 'Hoard\'s cache-scratch, with iterations split across threads, each byte '
                     'incremented (read and written), and, in make sweep, 100 objects handed '
                     'to each thread where the original hands one.',
    'cache-thrash': 'Hoard\'s cache-thrash, with iterations split across threads and each byte '
                    'incremented (read and written).',
    'mixed': 'hakmem\'s own: one thread replaces random blocks of a working set of 400.',
    'ring': 'hakmem\'s own: every block is freed by the next thread of a ring.',
}


def load_sentence(meta, cores):
    """What else the machine was doing, from the load average the sweep recorded."""
    a, b = meta.get('load_start'), meta.get('load_end')
    if a is None:
        return ''
    busy = max(a, b or 0) > 0.5 * (cores or 1)
    return (f'The 1-minute load average was {a} when the sweep started and {b} when it '
            f'ended (the sweep\'s own threads included), on {plural(cores, "core")}: ' +
            ('the machine was busy, which widens every spread below.'
             if busy else 'the machine was otherwise quiet.')) + '\n'


def render(rows, meta, figures):
    global METRIC_NAMES
    METRIC_NAMES = summary.metric_names(rows)
    points = stats.aggregate(rows)
    workloads, threads, allocs = summary.layout(rows)
    m = meta.get('machine', {})
    cores = m.get('cores') or 0
    runs = meta.get('runs') or max(r['run'] or 0 for r in rows)
    paired = {metric: summary.paired_ratios(rows, points, workloads, threads, allocs, metric)
              for metric in summary.paired_metrics(rows)} if 'hakmem' in allocs else {}
    cvs = [p['cv'] for p in points.values() if p['cv'] is not None]
    over = [t for t in threads if cores and t > cores]
    refs = [a for a in allocs if a != 'hakmem']
    missing = meta.get('allocators_missing') or []
    p = [f"# hakmem against {' and '.join(filter(None, [', '.join(refs[:-1]), refs[-1] if refs else 'nothing']))}: "
         'a thread-count sweep', '']
    if missing:
        p += [f"*Not in this sweep, though asked for: {', '.join(missing)} (not found on the machine).*", '']
    p += [
         f"*Generated by `papers/gen_paper.py` from the sweep of {meta.get('started', '?')} "
         f"(results.csv, meta.json). Every number and every sentence of the findings is "
         f"computed from that data; `make paper` regenerates this file.*", '',
         '## Findings', '']
    p += headline(points, paired, rows, workloads, threads, allocs, cores, meta.get('empty_rss_kb'))
    p += ['', '## Setup and method', '',
          f"One machine: {m.get('cpu', '?')}, {plural(cores, 'core')}, "
          f"{plural(m.get('numa_nodes', 0), 'NUMA node')}, {m.get('kernel', '?')}. "
          + (f"With {plural(cores, 'core')}, the points at {' and '.join(map(str, over))} threads "
             'oversubscribe the CPU: they measure how an allocator copes with time-slicing '
             '(lock holders preempted, remote frees queued) more than parallel scaling. '
             if over else '')
          + ('With a single NUMA node, none of hakmem\'s NUMA placement is exercised here: '
             'every allocation is node-local whatever the policy.' if m.get('numa_nodes') == 1 else ''),
          '',
          load_sentence(meta, cores),
          'All allocators run the same workload binaries; the reference allocators are '
          'preloaded (`LD_PRELOAD`), glibc is the default, each at its defaults (allocator '
          'variables of the environment are not passed on). In each repeat every allocator runs '
          'once per point, back to back, '
          + ('in an order drawn at random for each point and repeat (seeded, so the plan is '
             'reproducible), so that no allocator always follows the same one and '
             if 'seed' in meta else 'the order rotated from one repeat to the next, so ')
          + 'slow drift of the machine falls on all of them alike. '
          + (f"Repeat r runs the workloads with seed {meta['seed']} + r − 1: each round draws other "
             'sizes and orders, all allocators of a round the same ones. ' if meta.get('round_seeds') else '')
          + f'Each point has '
          f'{plural(runs, "run")}; tables give the median, the min–max spread and the coefficient of '
          f'variation (median CV over all points: {fmt.pct(stats.median(cvs))}). Only ratios '
          'from the same sweep are compared: ratios of medians, and ratios paired by round, '
          'the median over rounds of hakmem / the reference within the round with its quartiles, '
          'in which the drift of the machine between rounds cancels. Peak RSS is the workload process\'s '
          '`ru_maxrss`, taken by a small fork/exec stub so the Python driver\'s own memory is '
          'not counted.', '']
    if meta.get('note'):
        p += [f"Sweep note: {meta['note']}", '']
    for sk in meta.get('skipped_points') or []:
        p += [f'Left out: {sk}.', '']
    p += ['| | |', '|:---|:---|']
    sums = meta.get('preload_sha256') or {}
    for a, v in (meta.get('versions') or {}).items():
        p.append(f'| {a} | {v}' + (f' (sha256 {sums[a][:16]}…)' if sums.get(a) else '') + ' |')
    if m.get('thp'):
        p.append(f"| transparent huge pages | {m['thp']} |")
    if meta.get('ignored_env'):
        p.append('| not passed on from the environment | ' +
                 ' '.join(f'`{k}={v}`' for k, v in sorted(meta['ignored_env'].items())) + ' |')
    if meta.get('hakmem_stats_version'):
        p.append(f"| hakmem build (from its stats) | `{json.dumps(meta['hakmem_stats_version'])}` |")
    p.append(f"| sweep command | `{meta.get('command', '?')}` |")
    for w, cmd in (meta.get('children') or {}).items():
        p.append(f'| {w} run | `{cmd}` |')
    p += ['', 'The workload paths are those of the build that ran the sweep; `{threads}` is '
          'the thread count of the point.', '']
    if 'ratio-hakmem.png' in figures:
        p += ['## hakmem relative to mimalloc', '',
              '![hakmem / mimalloc throughput per workload](figures/ratio-hakmem.png)', '']
    for w in workloads:
        p += [f'## Workload `{w}`', '']
        figs = [f'![{k} of {w}](figures/{k}-{w}.png)' for k in ('throughput', 'rss')
                if f'{k}-{w}.png' in figures]
        if figs:
            p += [' '.join(figs), '']
        p += workload_findings(points, paired, w, threads, allocs)
        p += ['', summary.workload_table(points, w, threads, allocs), '']
    if 'hakmem' in allocs and len(allocs) > 1:
        p += ['## hakmem / reference ratios', '', 'Throughput (above 1: hakmem faster):', '',
              summary.ratio_table(points, workloads, threads, allocs, 'ops_per_sec'), '',
              'Peak RSS (below 1: hakmem smaller):', '',
              summary.ratio_table(points, workloads, threads, allocs, 'maxrss_kb'), '']
        for metric in paired:
            p += [f'Throughput paired by round, {METRIC_NAMES[metric]} (median of the per-round '
                  'ratios, quartiles in parentheses; "vs best": the fastest reference of each round):', '',
                  summary.paired_table(rows, points, workloads, threads, allocs, metric), '']
    p += ['## Failed runs', '', summary.failures(rows), '',
          '## Limits of this study', '',
          f'- {plural(cores, "core")} and {plural(m.get("numa_nodes", 0), "NUMA node")}: the scaling and NUMA '
          'claims a many-core, multi-socket machine could test are out of reach here.',
          f'- {plural(runs, "run")} per point' + (' (fewer than the 5 the method asks for)' if runs < 5 else '') +
          '; whole-process timings on this shared virtual machine move by tens of percent '
          'between runs, so differences inside the spreads above are not findings.',
          '- The workloads are synthetic (random sizes, producer/consumer, rings, '
          'allocate-all/free-all); real programs mix these patterns differently.',
          '- Peak RSS includes the workload harness and the C runtime (about 1–2 MiB), and '
          'each allocator\'s own start-up footprint, which differ by several MiB: the working '
          'sets here are small, so the RSS ratios say more about those fixed costs than about '
          'how each allocator holds a large live set (papers/burst.md measures that)' +
          ('; each allocator\'s empty run (' + ', '.join(f'{a} {fmt.mib(v)} MiB' for a, v in
                                                         meta['empty_rss_kb'].items()) +
           '; median peak RSS of `' + meta.get('empty_run', '') + '`) is subtracted in the '
           '"above each one\'s empty run" ratios of the findings.' if meta.get('empty_rss_kb') else '.'),
          '- The workloads follow their published namesakes loosely (below), so their numbers '
          'are not comparable with those of other suites.', '',
          '## The workloads against their published namesakes', '']
    p += [f'- `{w}`: {WORKLOAD_NOTES[w]}' for w in workloads if w in WORKLOAD_NOTES]
    p += ['', '## Reproduce', '',
          'The sweep\'s data is kept beside this paper, in `papers/data/frontier` (`results.csv`: '
          'one row per run; `meta.json`: the machine, versions and command; `empty.csv`: the empty '
          'runs), and `python3 papers/gen_paper.py papers/data/frontier papers` rewrites this file '
          'from it unchanged. '
          'The sweep command in the setup table reruns this sweep on the same build; then '
          f"`python3 papers/gen_paper.py RESULTS_DIR papers`. `make sweep` runs a shorter "
          'default (README: Using it).', '']
    return '\n'.join(p)


def main(argv):
    if len(argv) != 3:
        print('usage: gen_paper.py RESULTS_DIR PAPERS_DIR', file=sys.stderr)
        return 2
    rdir, pdir = argv[1], argv[2]
    try:
        rows, meta = load(rdir)
    except FileNotFoundError as e:
        print(f'gen_paper: {e} (run make sweep first)', file=sys.stderr)
        return 2
    if not rows:
        print(f'gen_paper: {rdir}/results.csv has no runs', file=sys.stderr)
        return 2
    figures = copy_figures(rdir, pdir)
    results.keep(rdir, pdir, 'frontier', ('results.csv', 'meta.json', 'empty.csv'))
    out = os.path.join(pdir, 'frontier.md')
    with open(out, 'w') as f:
        f.write(render(rows, meta, figures))
    print(f'gen_paper: wrote {out} and {len(figures)} figure files from {rdir}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
