"""The sweep: workloads x threads x allocators x repeats, interleaved, to results.csv."""

import json
import os
import random
import shlex
import sys
import time

from . import ALLOCATORS, MIN_THREADS, WORKLOADS, UsageError, locate, machine, plot, results, runner, stats, summary


def default_threads(cores):
    """Powers of two up to 4 x cores."""
    out, t = [], 1
    while t <= 4 * cores:
        out.append(t)
        t *= 2
    return out


# The empty run: each allocator's resident set with next to no work (mixed,
# one block), at the start of each round, to empty.csv, so that peak RSS can
# be read above each allocator's own start-up footprint.
EMPTY = '(empty)'


def empty_argv(bdir):
    return [os.path.join(bdir, 'mixed'), '--threads', '1', '--iters', '1', '--ws', '1']


def plan(workloads, threads, allocators, runs, seed=0, min_threads=MIN_THREADS, empty=False):
    """Repeat-major order: every point runs once before any runs twice, and the
    allocators of one point run back to back, in an order drawn at random
    for each point and repeat (seeded: the plan is reproducible), so that no
    allocator always follows the same one.  Points a workload cannot run
    (MIN_THREADS) are left out."""
    rng = random.Random(seed)
    items = []
    for r in range(runs):
        if empty:
            order = list(allocators)
            rng.shuffle(order)
            items += [(EMPTY, 1, a, r + 1, pos) for pos, a in enumerate(order)]
        for w in workloads:
            for t in threads:
                if t < min_threads.get(w, 0):
                    continue
                order = list(allocators)
                rng.shuffle(order)
                items += [(w, t, a, r + 1, pos) for pos, a in enumerate(order)]
    return items


def skipped_points(workloads, threads):
    """The (workload, threads) points plan() leaves out, as text for the summary."""
    return [f'{w} at {t} thread{"s" if t > 1 else ""} (runs at least {MIN_THREADS[w]})'
            for w in workloads for t in threads if t < MIN_THREADS.get(w, 1)]


def round_seed(base, r):
    """The workloads' --seed in repeat r (1-based): every round draws other
    sizes and orders, and all allocators of a round the same ones."""
    return base + r - 1


def command_argv(template, threads):
    return [arg.replace('{threads}', str(threads)) for arg in template]


def workload_argv(bdir, w, threads, opts, seed=None):
    argv = [os.path.join(bdir, w), '--threads', str(threads)]
    if seed is not None:
        argv += ['--seed', str(seed)]
    if opts.quick:
        argv.append('--quick')
    if opts.latency:
        argv.append('--latency')
    return argv + workload_args(opts.workload_args, w)


def workload_args(specs, w):
    """The extra arguments for workload w: every 'ARGS' spec, then every 'w: ARGS' one."""
    common, own = [], []
    for spec in specs or []:
        name, sep, rest = spec.partition(':')
        if sep and name.strip() and ' ' not in name.strip() and not name.startswith('-'):
            if name.strip() == w:
                own += shlex.split(rest)
        else:
            common += shlex.split(spec)
    return common + own


def _eta(seconds):
    s = int(seconds + 0.5)
    return f'{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}' if s >= 3600 else f'{s // 60:02d}:{s % 60:02d}'


def _env_text(preload, stats):
    parts = ([f'LD_PRELOAD={preload}'] if preload else []) + (['HAKMEM_STATS=json'] if stats else [])
    return ' '.join(parts)


def _write_meta(outdir, meta):
    with open(os.path.join(outdir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)


def _log_failure(outdir, w, t, a, r, row, log):
    logs = os.path.join(outdir, 'logs')
    os.makedirs(logs, exist_ok=True)
    path = os.path.join(logs, f'{w}-t{t}-{a}-r{r}.stderr')
    with open(path, 'w') as f:
        f.write(row.get('_stderr', ''))
    tail = (row.get('_stderr') or '').strip().splitlines()[-1:] or ['(no stderr)']
    log(f"hakmem-bench: FAILED {w} threads={t} {a} run {r}: {row['status']}: "
        f"{tail[0][:200]} (log: {path})")


def select(names, valid, what):
    """Split a comma list and reject names outside `valid` (UsageError, exit 2)."""
    chosen = [n.strip() for n in names.split(',') if n.strip()]
    bad = [n for n in chosen if n not in valid]
    if bad:
        raise UsageError(f"unknown {what}{'s' if len(bad) > 1 else ''}: {', '.join(bad)} "
                         f"(valid: {', '.join(valid)})")
    if not chosen:
        raise UsageError(f'no {what} given (valid: {", ".join(valid)})')
    return chosen


def check_workload(name):
    """Reject a workload name outside WORKLOADS (UsageError, exit 2)."""
    if name not in WORKLOADS:
        raise UsageError(f"unknown workload: {name} (valid: {', '.join(WORKLOADS)})")


def int_list(text, what):
    """Distinct positive integers, in the order given."""
    try:
        vals = [int(x) for x in text.split(',') if x.strip()]
    except ValueError:
        raise UsageError(f'{what}: expected comma-separated integers, got {text!r}')
    if not vals or any(v < 1 for v in vals):
        raise UsageError(f'{what}: expected positive integers, got {text!r}')
    return list(dict.fromkeys(vals))


def run(opts, log=lambda s: print(s, file=sys.stderr, flush=True)):
    cores = machine.usable_cores()
    asked = select(opts.allocators, ALLOCATORS, 'allocator') if opts.allocators else list(ALLOCATORS)
    allocs = asked
    threads = int_list(opts.threads, '--threads') if opts.threads else default_threads(cores)
    if opts.runs < 1:
        raise UsageError('--runs: at least 1')
    if opts.command:
        template = shlex.split(opts.command)
        if not template:
            raise UsageError('--command: empty')
        workloads = [opts.name or os.path.basename(template[0])]
        bdir = None
    else:
        if opts.workloads:
            workloads = select(opts.workloads, WORKLOADS, 'workload')
        bdir = locate.bench_dir(opts.bench_dir)
        have = locate.available_workloads(bdir)
        if opts.workloads:
            missing = [w for w in workloads if w not in have]
            if missing:
                raise UsageError(f"workload program(s) not built in {bdir}: {', '.join(missing)}")
        else:
            workloads = have
    allocs, preloads = available_allocators(allocs, opts.lib, log)
    seed = opts.seed
    stub = locate.stub_or_warn(log)
    outdir = opts.out or os.path.join('results', time.strftime('%Y%m%d-%H%M%S'))
    os.makedirs(outdir, exist_ok=True)
    stats_on = not opts.no_stats
    children = {w: shlex.join(command_argv(template, 'THREADS') if opts.command
                              else workload_argv(bdir, w, 'THREADS', opts, 'SEED'))
                .replace('THREADS', '{threads}').replace('SEED', '{seed}')
                for w in workloads}
    meta = {'mode': 'sweep', 'command': shlex.join(sys.argv), 'children': children,
            'note': opts.note or '', 'runs': opts.runs, 'timeout': opts.timeout,
            'threads': threads, 'workloads': workloads, 'allocators': allocs, 'bench_dir': bdir,
            'allocators_missing': [a for a in asked if a not in allocs],
            'skipped_points': [] if opts.command else skipped_points(workloads, threads),
            'seed': seed, 'round_seeds': None if opts.command else
            {str(r): round_seed(seed, r) for r in range(1, opts.runs + 1)},
            **meta_common(preloads, stub, log)}
    _write_meta(outdir, meta)

    argv_of = ((lambda w, t, r: command_argv(template, t)) if opts.command
               else (lambda w, t, r: empty_argv(bdir) if w == EMPTY
                     else workload_argv(bdir, w, t, opts, round_seed(seed, r))))
    empty = not opts.command and 'mixed' in locate.available_workloads(bdir)
    items = plan(workloads, threads, allocs, opts.runs, seed, {} if opts.command else MIN_THREADS, empty)
    failed, interrupted = execute(items, argv_of, preloads, stub, opts, outdir, meta,
                                  plain=bool(opts.command), stats_on=stats_on, log=log)
    path = summarize(outdir, log)
    log(f'hakmem-bench: {len(items)} runs planned, {failed} failed; summary: {path}')
    return exit_status(failed, interrupted)


def available_allocators(allocs, lib, log):
    """The chosen allocators found here, in their order, and their preloads
    (UsageError when none is)."""
    preloads = locate.resolve_allocators(allocs, lib, log)
    allocs = [a for a in allocs if a in preloads]
    if not allocs:
        raise UsageError('none of the requested allocators is available')
    return allocs, preloads


def meta_common(preloads, stub, log=None):
    """The fields of meta.json that every run of execute() records: the
    preloads, their versions and checksums, the machine, the allocator
    variables of our environment that the runs do not get, the start and
    its load."""
    ignored = runner.allocator_env()
    if ignored and log:
        log('hakmem-bench: every allocator runs at its defaults; not passed on from the '
            'environment: ' + ' '.join(f'{k}={v}' for k, v in sorted(ignored.items())))
    return {'preloads': preloads, 'versions': machine.allocator_versions(preloads),
            'preload_sha256': {a: machine.sha256(p) for a, p in preloads.items() if p},
            'machine': machine.facts(), 'rusage_stub': stub, 'ignored_env': ignored,
            'started': time.strftime('%Y-%m-%d %H:%M:%S %z'), 'finished': None,
            'load_start': round(os.getloadavg()[0], 2)}


def exit_status(failed, interrupted):
    """130 when interrupted, 1 when a run failed, else 0."""
    if interrupted:
        return 130
    return 1 if failed else 0


def execute(items, argv_of, preloads, stub, opts, outdir, meta, plain, stats_on, log):
    """Run the planned items (workload, threads, allocator, repeat, slot) to
    outdir/results.csv, keeping meta.json up to date; return (failed, interrupted).
    plain: the programs print no result line (one whole run is the operation)."""
    cores = machine.usable_cores()
    writer = results.Writer(os.path.join(outdir, 'results.csv'))
    empty_writer = None
    if any(w == EMPTY for w, *_ in items):
        empty_writer = results.Writer(os.path.join(outdir, 'empty.csv'))
    empty_rss = {}
    t0 = time.monotonic()
    failed = 0
    interrupted = False
    try:
        for i, (w, t, a, r, pos) in enumerate(items):
            if i:
                eta = _eta((time.monotonic() - t0) / i * (len(items) - i))
            else:
                eta = '--:--'
            log(f'[{i + 1}/{len(items)}] {w} threads={t} {a} run {r}/{opts.runs} — ETA {eta}')
            with_stats = stats_on and a == 'hakmem'
            argv = argv_of(w, t, r)
            row = runner.measure(argv, runner.run_vars(preloads[a], stats=with_stats),
                                 opts.timeout, stub, need_line=not plain)
            row.update(workload=w, allocator=a, threads=t, run=r, order=pos,
                       oversubscribed=int(t > cores), env=_env_text(preloads[a], with_stats))
            if row['status'] != 'ok':
                failed += 1
                _log_failure(outdir, w, t, a, r, row, log)
            if row.get('_hakmem') is not None:
                meta.setdefault('hakmem_stats_version', row['_hakmem'])
            if w == EMPTY:
                empty_writer.add(row)
                if row['status'] == 'ok' and row.get('maxrss_kb'):
                    empty_rss.setdefault(a, []).append(row['maxrss_kb'])
            else:
                writer.add(row)
    except KeyboardInterrupt:
        interrupted = True
        log('hakmem-bench: interrupted: summarising the runs made so far')
    finally:
        writer.close()
        if empty_writer:
            empty_writer.close()
    if empty_rss:
        meta['empty_rss_kb'] = {a: stats.median(v) for a, v in empty_rss.items()}
        meta['empty_run'] = 'mixed --threads 1 --iters 1 --ws 1, at the start of each round'
        meta['empty_runs'] = {a: len(v) for a, v in empty_rss.items()}
    meta['finished'] = time.strftime('%Y-%m-%d %H:%M:%S %z')
    meta['load_end'] = round(os.getloadavg()[0], 2)
    if interrupted:
        meta['note'] = (meta['note'] + ' ' if meta['note'] else '') + 'Interrupted before the end.'
    _write_meta(outdir, meta)
    return failed, interrupted


def summarize(outdir, log):
    rows = results.read(os.path.join(outdir, 'results.csv'))
    meta = {}
    mpath = os.path.join(outdir, 'meta.json')
    if os.path.isfile(mpath):
        with open(mpath) as f:
            meta = json.load(f)
    if not rows:
        raise UsageError(f'{outdir}/results.csv has no runs')
    plot.render_all(rows, meta, outdir, log)
    return summary.write(rows, meta, outdir)
