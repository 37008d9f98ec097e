"""Same-binary A/B: one workload under hakmem with environment toggles, interleaved.

Every round runs each setting once (order rotated), so a setting is compared
with A round by round: the per-round ratios cancel the machine's drift between
rounds, which on a shared machine is far larger than most changes."""

import os
import shlex
import sys

from . import UsageError, fmt, locate, results, runner, stats, sweep


def parse_env(spec):
    """'A=1;B=2' -> {'A': '1', 'B': '2'}; '' or '-' -> {} (the library's defaults)."""
    env = {}
    for part in spec.split(';'):
        part = part.strip()
        if not part or part == '-':
            continue
        k, sep, v = part.partition('=')
        if not sep or not k:
            raise UsageError(f"--env {spec!r}: expected NAME=VALUE[;NAME=VALUE...] or '-'")
        env[k] = v
    return env


def verdict(ratio, noise, threshold):
    """faster/slower when the change exceeds both the threshold and the noise."""
    if ratio is None:
        return 'unknown', 'no successful runs to compare'
    bar = max(threshold, noise or 0.0)
    change = ratio - 1.0
    why = f'threshold {fmt.pct(threshold)}, noise {fmt.pct(noise)}'
    if change > bar:
        return 'faster', f'faster by {fmt.pct(change)} ({why})'
    if -change > bar:
        return 'slower', f'slower by {fmt.pct(-change)} ({why})'
    text = f'no difference beyond {fmt.pct(bar)} (change {fmt.pct(change)}; {why})'
    if noise and noise > threshold:
        text += ('; the noise exceeds the threshold, so a change of the threshold\'s size '
                 'cannot be resolved with these runs')
    return 'none', text


def run(opts, log=lambda s: print(s, file=sys.stderr, flush=True)):
    if not opts.env or len(opts.env) < 2:
        raise UsageError('ab: give at least two --env settings, e.g. --env HAKMEM_X=1 --env HAKMEM_X=0')
    if opts.runs < 5:
        raise UsageError('ab: --runs must be at least 5 (a median over fewer runs is noise)')
    if opts.threshold <= 0:
        raise UsageError('ab: --threshold must be positive (a fraction: 0.02 = 2%)')
    configs = [(spec, parse_env(spec)) for spec in opts.env]
    lib = locate.hakmem_lib(opts.lib)
    if not lib:
        raise UsageError('ab: libhakmem.so not found (build it, or give --lib PATH or HAKMEM_LIB)')
    if opts.command:
        argv = shlex.split(opts.command.replace('{threads}', str(opts.threads)))
        name = os.path.basename(argv[0])
    else:
        sweep.check_workload(opts.workload)
        bdir = locate.bench_dir(opts.bench_dir)
        argv = [os.path.join(bdir, opts.workload), '--threads', str(opts.threads)]
        argv += (['--quick'] if opts.quick else []) + sweep.workload_args(opts.workload_args, opts.workload)
        name = opts.workload
    stub = locate.stub_or_warn(log)
    writer = None
    if opts.out:
        os.makedirs(opts.out, exist_ok=True)
        writer = results.Writer(os.path.join(opts.out, 'results.csv'))
    rows = {spec: [] for spec, _ in configs}
    total = opts.runs * len(configs)
    n = 0
    for r in range(opts.runs):
        k = r % len(configs)
        for pos, (spec, env) in enumerate(configs[k:] + configs[:k]):
            n += 1
            log(f'[{n}/{total}] {name} threads={opts.threads} env {spec or "-"} run {r + 1}/{opts.runs}')
            row = runner.measure(argv, runner.run_vars(lib, extra=env), opts.timeout, stub,
                                 need_line=not opts.command)
            row.update(workload=name, allocator='hakmem', threads=opts.threads, run=r + 1,
                       order=pos, env=spec, oversubscribed=int(opts.threads > (os.cpu_count() or 1)))
            if row['status'] != 'ok':
                tail = (row['_stderr'].strip().splitlines() or ['(no stderr)'])[-1]
                log(f"hakmem-bench: FAILED env {spec}: run {r + 1}: {row['status']}: {tail[:200]}")
            rows[spec].append(row)
            if writer:
                writer.add(row)
    if writer:
        writer.close()
    return report(name, opts, configs, rows)


def report(name, opts, configs, rows):
    metric = getattr(opts, 'metric', 'wall')
    unit = 'ops/CPU-s' if metric == 'cpu' else 'ops/s'
    print(f'A/B under hakmem: {name}, threads={opts.threads}, {opts.runs} interleaved runs per setting, '
          f'throughput in {unit}')
    agg = {}
    body = []
    for label, (spec, _) in zip('ABCDEFGHIJ', configs):
        ok = [r for r in rows[spec] if r['status'] == 'ok']
        tp = [t for t in (stats.throughput(r, metric) for r in ok) if t is not None]
        rss = [r['maxrss_kb'] for r in ok if r.get('maxrss_kb') is not None]
        agg[spec] = (stats.median(tp), stats.cv(tp), stats.median(rss))
        body.append([f'{label}: {spec or "(defaults)"}', fmt.si(agg[spec][0]),
                     f'{fmt.si(min(tp))}–{fmt.si(max(tp))}' if tp else fmt.DASH,
                     fmt.pct(agg[spec][1]), fmt.mib(agg[spec][2]), f'{len(ok)}/{len(rows[spec])}'])
    print(fmt.table(['setting', f'{unit} (median)', 'spread (min–max)', 'CV', 'peak RSS MiB', 'ok/runs'], body))
    base = configs[0][0]
    failed = any(r['status'] != 'ok' for rs in rows.values() for r in rs)
    for label, (spec, _) in zip('BCDEFGHIJ', configs[1:]):
        ratio, noise, quart = stats.paired(rows[spec], rows[base], metric)
        word, text = verdict(ratio, noise, opts.threshold)
        spread = f' (quartiles {fmt.num(quart[0], 4)}–{fmt.num(quart[1], 4)})' if quart else ''
        print(f'{label}/A: throughput {fmt.num(ratio, 4)}, the median of the per-round ratios{spread}, '
              f'peak RSS {fmt.num(stats.ratio(agg[spec][2], agg[base][2]), 4)}; verdict {label} vs A: {text}')
        print(f'hakmem-bench-ab setting={label} ratio={fmt.num(ratio, 4)} '
              f'noise={fmt.num(noise, 4)} threshold={opts.threshold} verdict={word}')
    if failed:
        print('some runs failed: see the FAILED lines above; medians use the ok runs only')
    return 1 if failed else 0
