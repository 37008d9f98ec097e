"""summary.md: per-workload tables, hakmem-vs-reference ratios (of medians, and
paired by round), the setup header."""

import json
import os

from . import ALLOCATORS, WORKLOADS, fmt, stats

BASELINE = 'mimalloc'   # every ratio column is "to mimalloc", the fastest reference here
BEST = 'best'           # the paired column against the fastest reference of each round
METRICS = {'wall': 'per wall-clock second', 'cpu': 'per CPU second of the timed threads'}


def metric_names(rows):
    """METRICS, with 'cpu' named for what the rows hold: the timed threads'
    CPU time (cpu_timed_s) or, in results from before session 31 and for
    plain programs, the whole process's."""
    names = dict(METRICS)
    if not any(r.get('cpu_timed_s') for r in rows):
        names['cpu'] = 'per CPU second of the process'
    return names


def layout(rows):
    """(workloads, threads, allocators) present in rows, in canonical order."""
    return (stats.ordered([r['workload'] for r in rows], WORKLOADS),
            sorted({r['threads'] for r in rows}),
            stats.ordered([r['allocator'] for r in rows], ALLOCATORS))


def threads_label(t, point):
    return f'{t}*' if point and point['oversubscribed'] else str(t)


def workload_table(points, workload, threads, allocators):
    """The threads x allocator table of one workload, as Markdown."""
    sel = {k: v for k, v in points.items() if k[0] == workload}
    lat = any(p['p50_ns'] is not None for p in sel.values())
    osc = any(p['os_calls_per_mop'] is not None for p in sel.values())
    header = ['threads', 'allocator', 'ops/s (median)', 'spread (min–max)', 'CV',
              f'vs {BASELINE}', 'peak RSS MiB', f'RSS vs {BASELINE}']
    if lat:
        header.append('p50 / p95 / p99 / p99.9 ns')
    if osc:
        header.append('OS calls/Mop')
    header.append('ok/runs')
    body = []
    for t in threads:
        base = sel.get((workload, t, BASELINE))
        for a in allocators:
            p = sel.get((workload, t, a))
            if p is None:
                continue
            row = [threads_label(t, p), a, fmt.si(p['ops_per_sec']),
                   f"{fmt.si(p['min'])}–{fmt.si(p['max'])}" if p['min'] is not None else fmt.DASH,
                   fmt.pct(p['cv']),
                   fmt.ratio(stats.ratio(p['ops_per_sec'], base and base['ops_per_sec'])),
                   fmt.mib(p['maxrss_kb']),
                   fmt.ratio(stats.ratio(p['maxrss_kb'], base and base['maxrss_kb']))]
            if lat:
                row.append(' / '.join(fmt.si(p[k]) for k in
                                      ('p50_ns', 'p95_ns', 'p99_ns', 'p999_ns')))
            if osc:
                row.append(fmt.num(p['os_calls_per_mop']))
            row.append(f"{p['ok']}/{p['runs']}")
            body.append(row)
    return fmt.table(header, body)


def hakmem_ratios(points, workloads, threads, allocators, measure):
    """{(workload, threads, ref): hakmem/ref} of a measure's medians."""
    out = {}
    for w in workloads:
        for t in threads:
            h = points.get((w, t, 'hakmem'))
            for a in allocators:
                ref = points.get((w, t, a))
                if a != 'hakmem' and h and ref:
                    out[(w, t, a)] = stats.ratio(h[measure], ref[measure])
    return out


def ratio_table(points, workloads, threads, allocators, measure):
    refs = [a for a in allocators if a != 'hakmem']
    ratios = hakmem_ratios(points, workloads, threads, allocators, measure)
    body = []
    for w in workloads:
        for t in threads:
            if (w, t, 'hakmem') in points:
                body.append([w, threads_label(t, points[(w, t, 'hakmem')])] +
                            [fmt.ratio(ratios.get((w, t, a))) for a in refs])
    body.append(['geometric mean', 'all'] +
                [fmt.ratio(stats.geomean([v for k, v in ratios.items() if k[2] == a]))
                 for a in refs])
    return fmt.table(['workload', 'threads'] + [f'vs {a}' for a in refs], body)


def paired_ratios(rows, points, workloads, threads, allocators, metric):
    """{(workload, threads, ref): stats.paired of hakmem/ref} over the rounds
    (the run column) of each point, and under the key BEST hakmem / the best
    reference of each round: a round counts there only when every reference
    of the point ran ok in it."""
    refs = [a for a in allocators if a != 'hakmem']
    rounds = {}
    for r in rows:
        rounds.setdefault((r['workload'], r['threads']), {}).setdefault(r['run'], {})[r['allocator']] = r
    out = {}
    for w in workloads:
        for t in threads:
            here = [a for a in refs if (w, t, a) in points]
            if (w, t, 'hakmem') not in points or not here:
                continue
            rs = [g for _, g in sorted(rounds[(w, t)].items()) if 'hakmem' in g]
            for a in here:
                both = [g for g in rs if a in g]
                out[(w, t, a)] = stats.paired([g['hakmem'] for g in both], [g[a] for g in both], metric)
            full = [g for g in rs if all(a in g for a in here)]
            out[(w, t, BEST)] = stats.paired([g['hakmem'] for g in full],
                                             [stats.best([g[a] for a in here], metric) for g in full],
                                             metric)
    return out


def paired_metrics(rows):
    """The throughput metrics the rows can give: CPU time only where it was recorded."""
    return ['wall'] + (['cpu'] if any(r.get('cpu_s') for r in rows) else [])


def paired_table(rows, points, workloads, threads, allocators, metric):
    cols = [a for a in allocators if a != 'hakmem'] + [BEST]
    ratios = paired_ratios(rows, points, workloads, threads, allocators, metric)

    def cell(key):
        med, _, quart = ratios.get(key, (None, None, None))
        return fmt.ratio_quartiles(med, quart)
    body = []
    for w in workloads:
        for t in threads:
            if (w, t, 'hakmem') in points:
                body.append([w, threads_label(t, points[(w, t, 'hakmem')])] +
                            [cell((w, t, a)) for a in cols])
    body.append(['geometric mean', 'all'] +
                [fmt.ratio(stats.geomean([v[0] for k, v in ratios.items() if k[2] == a]))
                 for a in cols])
    return fmt.table(['workload', 'threads'] + [f'vs {a}' for a in cols], body)


def failures(rows):
    bad = [r for r in rows if r['status'] != 'ok']
    if not bad:
        return f'None: all {len(rows)} runs exited 0 with check=ok.'
    body = [[r['workload'], r['threads'], r['allocator'], r['run'], f"`{r['status']}`"]
            for r in bad]
    return (f'{len(bad)} of {len(rows)} runs failed; they are left out of the medians '
            '(stderr of each is in logs/):\n\n' +
            fmt.table(['workload', 'threads', 'allocator', 'run', 'status'], body))


def setup(meta, rows):
    m = meta.get('machine', {})
    cores = m.get('cores', '?')
    lines = ['| | |', '|:---|:---|']

    def add(k, v):
        if v not in (None, ''):
            lines.append(f'| {k} | {v} |')
    add('CPU', m.get('cpu'))
    add('cores this process may use' if 'cores_online' in m else 'cores (os.cpu_count)', cores)
    if m.get('cores_online') not in (None, cores):
        add('cores online', m['cores_online'])
    add('NUMA nodes', m.get('numa_nodes'))
    add('kernel', m.get('kernel'))
    add('transparent huge pages', m.get('thp'))
    sums = meta.get('preload_sha256') or {}
    for a, v in (meta.get('versions') or {}).items():
        add(f'allocator {a}', f"{v} (`{meta.get('preloads', {}).get(a) or 'no preload'}`"
            + (f", sha256 {sums[a][:16]}" if sums.get(a) else '') + ')')
    if meta.get('allocators_missing'):
        add('allocators asked for, not found', ', '.join(meta['allocators_missing']))
    if meta.get('hakmem_stats_version'):
        add('hakmem build (its stats)', f"`{json.dumps(meta['hakmem_stats_version'])}`")
    add('command', f"`{meta['command']}`" if meta.get('command') else None)
    for w, cmd in (meta.get('children') or {}).items():
        add(f'run of {w}', f'`{cmd}`')
    add('runs per point', meta.get('runs'))
    if meta.get('empty_rss_kb'):
        add('peak RSS of an empty run (median)',
            ', '.join(f"{a} {fmt.mib(v)} MiB" for a, v in meta['empty_rss_kb'].items()) +
            f" (`{meta.get('empty_run', '')}`; runs: empty.csv)")
    if meta.get('round_seeds'):
        seeds = sorted(meta['round_seeds'].values())
        add('workload seeds', f"{seeds[0]}–{seeds[-1]} (round r: {meta.get('seed')} + r − 1)"
            if len(seeds) > 1 else seeds[0])
    if meta.get('ignored_env'):
        add('not passed on from the environment',
            ' '.join(f'`{k}={v}`' for k, v in sorted(meta['ignored_env'].items())))
    add('timeout per run', f"{meta['timeout']} s" if meta.get('timeout') else None)
    add('started', meta.get('started'))
    add('finished', meta.get('finished'))
    if meta.get('load_start') is not None:
        add('1-min load average, start / end', f"{meta['load_start']} / {meta.get('load_end', '?')}")
    notes = []
    runs = meta.get('runs') or max((r['run'] or 0 for r in rows), default=0)
    if isinstance(runs, int) and runs < 5:
        notes.append(f'Only {runs} run(s) per point, fewer than the 5 a median needs to be '
                     'robust' + (f": {meta['note']}" if meta.get('note') else '.'))
    elif meta.get('note'):
        notes.append(meta['note'])
    if any(r.get('oversubscribed') for r in rows):
        notes.append(f'Thread counts marked `*` exceed the {cores} cores: those points '
                     'oversubscribe the CPU and measure time-slicing as much as the allocator.')
    if meta.get('skipped_points'):
        notes.append('Left out: ' + '; '.join(meta['skipped_points']) + '.')
    order = ('in an order drawn at random for each point and repeat (seeded)' if 'seed' in meta
             else 'the order rotated from one repeat to the next')
    notes.append(f'Allocators run interleaved within each repeat, {order}, '
                 'so machine drift falls on all of them alike. '
                 'Throughput: median of the ok runs; spread: min–max; CV: sample standard '
                 'deviation / mean. Peak RSS: ru_maxrss of the child (median). '
                 'Ratios divide medians, except in the tables paired by round.')
    if meta and not meta.get('rusage_stub'):
        notes.append('hakmem-bench-spawn was not found: peak RSS and faults include those '
                     'of the forked Python interpreter (about 14 MiB), not just the workload.')
    if not meta:
        notes.append('No meta.json beside results.csv: machine facts unknown.')
    return '\n'.join(lines) + '\n\n' + '\n'.join('- ' + n for n in notes)


def plot_links(outdir, workload):
    links = []
    for kind in ('throughput', 'rss'):
        rel = f'plots/{kind}-{workload}.png'
        if os.path.isfile(os.path.join(outdir, rel)):
            links.append(f'![{kind} of {workload}]({rel})')
    return ' '.join(links)


def render(rows, meta, outdir):
    points = stats.aggregate(rows)
    workloads, threads, allocators = layout(rows)
    parts = [f"# hakmem-bench {meta.get('mode', 'sweep')} results", '',
             '## Setup', '', setup(meta, rows), '', '## Failed runs', '', failures(rows)]
    for w in workloads:
        parts += ['', f'## Workload `{w}`', '']
        links = plot_links(outdir, w)
        if links:
            parts += [links, '']
        parts.append(workload_table(points, w, threads, allocators))
    if 'hakmem' in allocators and len(allocators) > 1:
        parts += ['', '## hakmem vs each reference', '',
                  'Throughput, hakmem / reference (above 1: hakmem is faster):', '',
                  ratio_table(points, workloads, threads, allocators, 'ops_per_sec'), '',
                  'Peak RSS, hakmem / reference (below 1: hakmem uses less memory):', '',
                  ratio_table(points, workloads, threads, allocators, 'maxrss_kb'),
                  '', '## hakmem vs each reference, paired by round', '',
                  'Throughput, the median over rounds of hakmem / reference within the round '
                  '(quartiles in parentheses); "vs best" divides by the fastest reference of '
                  'each round. Every allocator of a point runs in each round, back to back, so '
                  'the drift of this shared machine between rounds, often larger than the '
                  'differences sought, cancels in each ratio; what remains shows in the '
                  'quartiles. Rounds where either side (for "vs best", any allocator) failed '
                  'are left out.']
        for m in paired_metrics(rows):
            why = (' (ops / cpu_timed_s, the workers\' CPU time between the start and end '
                   'barriers: time spent waiting for a core while other work runs does not '
                   'count, nor do start-up, set-up and teardown; a plain program\'s whole '
                   'CPU time, cpu_s)') if m == 'cpu' else ''
            name = metric_names(rows)[m]
            parts += ['', f'{name[0].upper()}{name[1:]}{why}:', '',
                      paired_table(rows, points, workloads, threads, allocators, m)]
    return '\n'.join(parts) + '\n'


def write(rows, meta, outdir):
    path = os.path.join(outdir, 'summary.md')
    with open(path, 'w') as f:
        f.write(render(rows, meta, outdir))
    return path
