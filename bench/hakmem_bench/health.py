"""health: every HAKMEM_PROFILE preset over every workload, quick, at 1 and 4 threads.

A point passes when the workload exits 0 with check=ok and hakmem printed
nothing of its own (no "hakmem: ..." line) on stderr."""

import os
import sys

from . import UsageError, fmt, locate, runner

DEFAULT_PRESETS = ('default', 'fast', 'low-memory', 'numa-interleave')
HEALTH_THREADS = (1, 4)


def presets():
    """The preset names: HAKMEM_PROFILES (comma list) or the built-in list."""
    env = os.environ.get('HAKMEM_PROFILES')
    if env is not None:
        names = [p.strip() for p in env.split(',') if p.strip()]
        if names:
            return names
    return list(DEFAULT_PRESETS)


def exit_and_check(status):
    """A run status as the (exit, check) columns of the health table."""
    if status == 'ok':
        return '0', 'ok'
    if status.startswith('exit:'):
        return status[5:], fmt.DASH
    if status.startswith('check:'):
        return '0', status[6:]
    if status == 'no-result':
        return '0', 'no result line'
    return status, fmt.DASH   # timeout, signal:NAME, spawn:ERROR


def run(opts, log=lambda s: print(s, file=sys.stderr, flush=True)):
    lib = locate.hakmem_lib(opts.lib)
    if not lib:
        raise UsageError('health: libhakmem.so not found (build it, or give --lib PATH or HAKMEM_LIB)')
    bdir = locate.bench_dir(opts.bench_dir)
    workloads = locate.available_workloads(bdir)
    names = presets()
    stub = locate.spawn_stub()
    total = len(names) * len(workloads) * len(HEALTH_THREADS)
    body, bad, n = [], 0, 0
    for p in names:
        for w in workloads:
            for t in HEALTH_THREADS:
                n += 1
                log(f'[{n}/{total}] HAKMEM_PROFILE={p} {w} threads={t}')
                argv = [os.path.join(bdir, w), '--threads', str(t), '--quick']
                row = runner.measure(argv, runner.run_vars(lib, extra={'HAKMEM_PROFILE': p}),
                                     opts.timeout, stub)
                status = row['status']
                exit_code, check = exit_and_check(status)
                # A preset that makes hakmem complain (an unknown name, a
                # bad value) is broken even when the workload passes.
                said = [ln for ln in row['_stderr'].splitlines() if ln.startswith('hakmem:')]
                ok = status == 'ok' and not said
                bad += not ok
                tail = '' if ok else (said or row['_stderr'].strip().splitlines() or [''])[-1][:120]
                body.append([p, w, t, exit_code, check, f"{row['wall_s']:.2f}",
                             'PASS' if ok else 'FAIL ' + tail])
    print(f'health of {lib}: {len(names)} presets x {len(workloads)} workloads x threads '
          f'{",".join(map(str, HEALTH_THREADS))}, --quick')
    print(fmt.table(['preset', 'workload', 'threads', 'exit', 'check', 'wall s', 'result'], body))
    print(f'{total - bad} passed, {bad} failed')
    return 1 if bad else 0
