"""hakmem-bench burst: does memory go back to the OS after a burst, once the
program slows down?

bench/burst allocates --mb MiB of blocks, has them freed by another thread
(freer remote: they go back to the allocating thread's heap) or by their
owner (local), then allocates one block --rate times a second (0: none) and
samples its resident set.  Per scenario (freer x rate) every allocator runs
once per repeat, the order rotated from one repeat to the next.  The report
gives, per allocator, the resident set at the peak, just after the frees, 1 s
later and at the end, and how long it took to give back half of what the
burst added (medians over the repeats); DIR/samples.csv
holds every sample, DIR/results.csv every run, and gnuplot (when installed)
draws one plot per scenario."""

import csv
import itertools
import json
import os
import sys
import time

from . import ALLOCATORS, UsageError, fmt, locate, machine, plot, runner, stats, sweep

PROGRAM = 'burst'
RESULT_FIELDS = ('freer', 'rate', 'allocator', 'run', 'status', 'baseline_kb', 'filled_kb', 'freed_kb',
                 'end_kb', 'allocs', 'returned_ms')
SAMPLE_FIELDS = ('freer', 'rate', 'allocator', 'run', 't_ms', 'rss_kb')


def parse_output(text):
    """(samples [(t_ms, rss_kb)], result fields or None) of one run."""
    samples, result = [], None
    for line in text.splitlines():
        kind, _, rest = line.partition(' ')
        if kind not in ('burst-rss', 'burst-result'):
            continue
        fields = dict(t.partition('=')[::2] for t in rest.split())
        if kind == 'burst-rss':
            try:
                samples.append((int(fields['t_ms']), int(fields['rss_kb'])))
            except (KeyError, ValueError):
                continue
        else:
            result = fields
    return samples, result


def returned_ms(samples, baseline_kb, freed_kb):
    """The first sample's time at which half of what the burst added to the
    resident set (as it stood once the frees were done) had gone back; None
    if it never did."""
    limit = (baseline_kb + freed_kb) / 2
    for t, rss in samples:
        if rss <= limit:
            return t
    return None


def _at(samples, t_ms):
    """The resident set of the last sample at or before t_ms."""
    before = [rss for t, rss in samples if t <= t_ms]
    return before[-1] if before else None


def scenarios(freers, rates):
    return list(itertools.product(freers, rates))


def run(opts, log=lambda s: print(s, file=sys.stderr, flush=True)):
    if opts.runs < 1:
        raise UsageError('burst: --runs must be at least 1')
    if opts.seconds < 1 or opts.mb < 1 or opts.every_ms < 1:
        raise UsageError('burst: --seconds, --mb and --every-ms must be at least 1')
    names = sweep.select(opts.allocators, ALLOCATORS, 'allocator') if opts.allocators else list(ALLOCATORS)
    freers = sweep.select(opts.freers, ('remote', 'local'), 'freer')
    try:
        rates = [int(x) for x in opts.rates.split(',') if x.strip()]
    except ValueError:
        rates = []
    if not rates or any(r < 0 for r in rates):
        raise UsageError(f'burst: --rates: expected comma-separated integers of 0 or more, got {opts.rates!r}')
    bdir = locate.bench_dir(opts.bench_dir)
    prog = os.path.join(bdir, PROGRAM)
    if not os.access(prog, os.X_OK):
        raise UsageError(f'burst: {prog} is not built')
    libs = locate.resolve_allocators(names, opts.lib, log)
    if not libs:
        raise UsageError('burst: none of the allocators is available')
    order = list(libs)
    meta = machine.facts()
    meta.update(command='hakmem-bench ' + ' '.join(sys.argv[1:]), allocators=order, allocator_versions=machine.allocator_versions(libs),
                hakmem=machine.hakmem_version(libs.get('hakmem')) if 'hakmem' in libs else None,
                mb=opts.mb, seconds=opts.seconds, every_ms=opts.every_ms, runs=opts.runs,
                sizes=[opts.min_size, opts.max_size], load_start=os.getloadavg()[0],
                started=time.strftime('%Y-%m-%d %H:%M:%S %z'))
    results, samples = [], []
    plan = scenarios(freers, rates)
    total, done = opts.runs * len(plan) * len(order), 0
    failed = 0
    for r in range(opts.runs):
        for i, (freer, rate) in enumerate(plan):
            k = (r + i) % len(order)
            for a in order[k:] + order[:k]:
                done += 1
                argv = [prog, '--mb', str(opts.mb), '--min-size', str(opts.min_size), '--max-size',
                        str(opts.max_size), '--freer', freer, '--rate', str(rate), '--seconds',
                        str(opts.seconds), '--every-ms', str(opts.every_ms)]
                log(f'[{done}/{total}] burst freer={freer} rate={rate} {a}')
                status, out, err, _ = runner.spawn(argv, runner.run_vars(libs[a]), opts.timeout)
                series, res = parse_output(out)
                if status == 'ok' and (res is None or res.get('check') != 'ok'):
                    status = 'no-result' if res is None else 'check:' + res.get('check', '?')
                row = {'freer': freer, 'rate': rate, 'allocator': a, 'run': r, 'status': status}
                if status != 'ok':
                    tail = (err.strip().splitlines() or ['(no stderr)'])[-1]
                    log(f'hakmem-bench: FAILED {a}: burst freer={freer} rate={rate}: {status}: {tail[:200]}')
                    failed += 1
                    results.append(row)
                    continue
                for k2 in ('baseline_kb', 'filled_kb', 'freed_kb', 'end_kb', 'allocs'):
                    row[k2] = int(res[k2])
                row['returned_ms'] = returned_ms(series, row['baseline_kb'], row['freed_kb'])
                results.append(row)
                samples += [{'freer': freer, 'rate': rate, 'allocator': a, 'run': r, 't_ms': t, 'rss_kb': rss}
                            for t, rss in series]
    meta['load_end'] = os.getloadavg()[0]
    text = report(results, samples, meta)
    print(text)
    if opts.out:
        save(opts.out, results, samples, meta)
        with open(os.path.join(opts.out, 'burst.md'), 'w') as f:
            f.write(report(results, samples, meta, plots(opts.out, samples, meta, log)) + '\n')
    return 1 if failed else 0


def save(outdir, results, samples, meta):
    os.makedirs(outdir, exist_ok=True)
    for name, fields, rows in (('results.csv', RESULT_FIELDS, results), ('samples.csv', SAMPLE_FIELDS, samples)):
        with open(os.path.join(outdir, name), 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore')
            w.writeheader()
            for row in rows:
                w.writerow({k: ('' if row.get(k) is None else row.get(k)) for k in fields})
    with open(os.path.join(outdir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)


def load(outdir):
    """(results, samples, meta) as run() made them, from save()'s files."""
    def rows(name, ints):
        with open(os.path.join(outdir, name), newline='') as f:
            out = []
            for row in csv.DictReader(f):
                out.append({k: (int(v) if k in ints and v != '' else (None if v == '' else v))
                            for k, v in row.items()})
            return out
    results = rows('results.csv', {'rate', 'run', 'baseline_kb', 'filled_kb', 'freed_kb', 'end_kb', 'allocs',
                                   'returned_ms'})
    samples = rows('samples.csv', {'rate', 'run', 't_ms', 'rss_kb'})
    with open(os.path.join(outdir, 'meta.json')) as f:
        meta = json.load(f)
    return results, samples, meta


def _series(samples, freer, rate, a, run):
    return [(s['t_ms'], s['rss_kb']) for s in samples
            if s['freer'] == freer and s['rate'] == rate and s['allocator'] == a and s['run'] == run]


def summary(results, samples, meta):
    """{(freer, rate): {allocator: medians}}, in run order."""
    out = {}
    for row in results:
        key = (row['freer'], row['rate'])
        out.setdefault(key, {}).setdefault(row['allocator'], []).append(row)
    table = {}
    for key, per in out.items():
        table[key] = {}
        for a, rows in per.items():
            ok = [r for r in rows if r['status'] == 'ok']
            at1 = [_at(_series(samples, key[0], key[1], a, r['run']), 1000) for r in ok]
            back = [r['returned_ms'] for r in ok]
            kept = sum(1 for b in back if b is None)
            table[key][a] = {
                'runs': len(ok), 'failed': len(rows) - len(ok),
                'filled_kb': stats.median([r['filled_kb'] for r in ok]),
                'freed_kb': stats.median([r['freed_kb'] for r in ok]),
                'at_1s_kb': stats.median([x for x in at1 if x is not None]),
                'end_kb': stats.median([r['end_kb'] for r in ok]),
                # The median time back, None when most runs never came back.
                'returned_ms': (stats.median([b for b in back if b is not None])
                                if ok and kept * 2 < len(ok) else None),
                'kept_runs': kept,
            }
    return table


def report(results, samples, meta, plotted=None):
    seconds = meta.get('seconds')
    head = [f'## Memory after a burst: {meta.get("mb")} MiB freed, then a slow phase of {seconds} s', '',
            f'bench/burst allocates {meta.get("mb")} MiB of blocks of {meta["sizes"][0]} to {meta["sizes"][1]} '
            'bytes, which another thread (remote) or their owner (local) then frees; for '
            f'{seconds} s after that the program allocates and frees one block `rate` times a second '
            '(0: none, an idle program) and samples its resident set every '
            f'{meta.get("every_ms")} ms. Medians over {meta.get("runs")} interleaved run(s) per '
            'allocator. "Half back" is the time until half of what the burst added to the resident '
            'set had gone back to the OS; "kept" means it had not by the end.', '',
            (f'Measured {meta["hakmem"]}; ' if meta.get('hakmem') else 'Measured ') +
            f'1-minute load average {meta.get("load_start", 0):.2f} at the start, '
            f'{meta.get("load_end", 0):.2f} at the end.', '']
    out, lines = list(head), []
    table = summary(results, samples, meta)
    for (freer, rate), per in table.items():
        who = 'another thread' if freer == 'remote' else 'their owner'
        pace = 'no allocations' if rate == 0 else f'{rate} allocations a second'
        out += [f'### Freed by {who}, then {pace}', '']
        failures = any(m['failed'] for m in per.values())
        rows = []
        for a in [x for x in meta.get('allocators', []) if x in per] + [x for x in per if x not in meta.get('allocators', [])]:
            m = per[a]
            back = (fmt.DASH if m['runs'] == 0 else f'kept ({m["kept_runs"]}/{m["runs"]} runs)'
                    if m['returned_ms'] is None else f'{m["returned_ms"] / 1000:.2f} s')
            rows.append([a, fmt.mib(m['filled_kb']), fmt.mib(m['freed_kb']), fmt.mib(m['at_1s_kb']),
                         fmt.mib(m['end_kb']), back] + ([str(m['failed'])] if failures else []))
            lines.append(f'hakmem-bench-burst freer={freer} rate={rate} allocator={a} runs={m["runs"]} '
                         f'filled_kb={m["filled_kb"]} freed_kb={m["freed_kb"]} end_kb={m["end_kb"]} '
                         f'returned_ms={"-" if m["returned_ms"] is None else m["returned_ms"]}')
        out += [fmt.table(['allocator', 'peak MiB', 'after the frees', 'at 1 s', f'at {seconds} s', 'half back'] +
                          (['failed runs'] if failures else []), rows), '']
        if plotted and (freer, rate) in plotted:
            out += [f'![resident set over time]({plotted[(freer, rate)]})', '']
    return '\n'.join(out + lines)


def plots(outdir, samples, meta, log):
    """One plot per scenario of the first run's resident set over time
    (plot.render_burst); {(freer, rate): file name relative to outdir}."""
    keys = sorted({(s['freer'], s['rate']) for s in samples}, key=lambda k: (k[0] != 'remote', k[1]))
    allocators = meta.get('allocators', [])
    series = {k: {a: _series(samples, k[0], k[1], a, 0) for a in allocators} for k in keys}
    return plot.render_burst(series, allocators, outdir, log)
