"""Running one child: timeout, rusage from wait4, the result line, hakmem's JSON."""

import json
import os
import signal
import subprocess
import tempfile
import threading
import time

RESULT_PREFIX = 'hakmem-bench-result'
STATS_PREFIX = '{"hakmem":'
LATENCY_KEYS = ('p50_ns', 'p95_ns', 'p99_ns', 'p999_ns')
# Keys of the result line that have their own CSV column.
LINE_KEYS = ('workload', 'threads', 'ops', 'seconds', 'ops_per_sec', 'check') + LATENCY_KEYS


def parse_result_line(text):
    """The key=value fields of the last hakmem-bench-result line, or None."""
    found = None
    for line in text.splitlines():
        if line.startswith(RESULT_PREFIX + ' ') or line == RESULT_PREFIX:
            fields = {}
            for tok in line.split()[1:]:
                k, sep, v = tok.partition('=')
                if sep:
                    fields[k] = v
            found = fields
    return found


def parse_stats_json(text):
    """hakmem's HAKMEM_STATS=json object from stderr, or None."""
    for line in reversed(text.splitlines()):
        if line.startswith(STATS_PREFIX):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def _num(v):
    """A counter as int/float; None for absent, non-numeric or -1 (not counted)."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return None if v == -1 else v
    try:
        f = float(v)
    except ValueError:
        return None
    return int(f) if f.is_integer() else f


def run_vars(preload, extra=None, stats=False):
    """The variables of one run: the allocator's LD_PRELOAD, HAKMEM_STATS for
    hakmem's counters, and the run's own settings."""
    env = {}
    if preload:
        env['LD_PRELOAD'] = preload
    if stats:
        env['HAKMEM_STATS'] = 'json'
    env.update(extra or {})
    return env


# Variables that tune an allocator: each runs at its defaults unless a
# mode sets them for a run (ab's --env), whatever the shell exported.
ALLOCATOR_ENV_PREFIXES = ('HAKMEM_', 'MALLOC_', 'MIMALLOC_', 'TCMALLOC_', 'JE_MALLOC_', 'LD_PRELOAD')
ALLOCATOR_ENV_NAMES = ('GLIBC_TUNABLES', 'MALLOC_CONF', 'HEAPPROFILE', 'HEAPCHECK', 'CPUPROFILE')


def allocator_env(environ=None):
    """The variables of `environ` (ours by default) that tune an allocator."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items()
            if (k.startswith(ALLOCATOR_ENV_PREFIXES) or k in ALLOCATOR_ENV_NAMES)
            and not k.startswith('HAKMEM_BENCH_')}  # the driver's own


def _base_env():
    """Our environment minus anything that would change an allocator."""
    drop = allocator_env()
    return {k: v for k, v in os.environ.items() if k not in drop}


def _parse_rusage(text):
    """The stub's 'rusage k=v ...' line as a dict of floats, or None."""
    for line in text.splitlines():
        if line.startswith('rusage '):
            try:
                return {k: float(v) for k, _, v in (t.partition('=') for t in line.split()[1:])}
            except ValueError:
                return None
    return None


def spawn(argv, run_env, timeout, stub=None):
    """Run argv with run_env added; return (status, stdout, stderr, usage).

    usage: wall_s, utime_s, stime_s, maxrss_kb, minflt, nvcsw, nivcsw (or {}).
    With the stub (hakmem-bench-spawn) the rusage is the workload's own; without
    it, that of a fork of this interpreter, whose peak RSS it carries.
    status: 'ok' | 'timeout' | 'exit:N' | 'signal:NAME' | 'spawn:ERROR'."""
    env = _base_env()
    rfd = None
    if stub:
        rfd, wfd = os.pipe()
        full = [stub, str(wfd)] + [f'{k}={v}' for k, v in run_env.items()] + ['--'] + list(argv)
        pass_fds = (wfd,)
    else:
        env.update(run_env)
        full, pass_fds = list(argv), ()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        try:
            p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env=env, start_new_session=True, pass_fds=pass_fds)
        except OSError as e:
            return f'spawn:{e.strerror}', '', str(e), {}
        finally:
            if stub:
                os.close(wfd)
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        # Wait without reaping first, so the timer can never signal a
        # recycled pid; then reap with wait4 for the child's rusage.
        os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
        wall = time.monotonic() - t0
        timer.cancel()
        timer.join()
        _, wstatus, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(wstatus)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode('utf-8', 'replace')
        stderr = err.read().decode('utf-8', 'replace')
    usage = None
    if rfd is not None:
        with os.fdopen(rfd, 'r') as f:
            usage = _parse_rusage(f.read())
    if usage is None:
        usage = {'wall_s': wall, 'utime_s': ru.ru_utime, 'stime_s': ru.ru_stime,
                 'maxrss_kb': ru.ru_maxrss, 'minflt': ru.ru_minflt,
                 'nvcsw': ru.ru_nvcsw, 'nivcsw': ru.ru_nivcsw}
    if timed_out.is_set():
        status = 'timeout'
    elif p.returncode < 0:
        try:
            status = 'signal:' + signal.Signals(-p.returncode).name
        except ValueError:
            status = f'signal:{-p.returncode}'
    elif p.returncode > 0:
        status = f'exit:{p.returncode}'
    else:
        status = 'ok'
    return status, stdout, stderr, usage


def measure(argv, run_env, timeout, stub=None, need_line=True):
    """One run as a dict of CSV fields, plus '_stderr' for failure logs."""
    status, stdout, stderr, u = spawn(argv, run_env, timeout, stub)
    wall = u.get('wall_s', 0.0)
    row = {'status': status, 'wall_s': round(wall, 6), '_stderr': stderr}
    if u:
        row.update(cpu_s=round(u['utime_s'] + u['stime_s'], 6), maxrss_kb=int(u['maxrss_kb']),
                   minflt=int(u['minflt']), vcsw=int(u['nvcsw']), ivcsw=int(u['nivcsw']))
    line = parse_result_line(stdout)
    if line is not None:
        for k in ('ops', 'seconds', 'ops_per_sec') + LATENCY_KEYS:
            if k in line:
                row[k] = _num(line[k])
        # The workers' CPU time between the start and end barriers: the
        # process's (cpu_s) adds start-up, set-up and teardown, which are
        # not the allocator's work per operation.
        row['cpu_timed_s'] = _num(line.get('cpu_seconds'))
        row['extra'] = ' '.join(f'{k}={v}' for k, v in line.items() if k not in LINE_KEYS)
        if status == 'ok' and line.get('check', 'ok') != 'ok':
            row['status'] = 'check:' + line['check']
    elif status == 'ok':
        if need_line:
            row['status'] = 'no-result'
        elif wall > 0:
            # A plain program: one whole run is the operation, so that its
            # throughput per CPU second is 1 / its CPU time.
            row['ops'] = 1
            row['ops_per_sec'] = round(1.0 / wall, 6)
    stats = parse_stats_json(stderr)
    if stats is not None:
        osc = stats.get('os') or {}
        for k in ('mmap', 'munmap', 'madvise'):
            row[k] = _num(osc.get(k))
        for k in ('free_remote', 'bytes_committed', 'peak_committed'):
            row[k] = _num(stats.get(k))
        # Per operation, the calls made in the timed part (the harness's
        # timed_* fields), so that start-up's fixed calls are not spread
        # over the run's length; the whole process's for a program without.
        timed = [_num(line.get('timed_' + k)) for k in ('mmap', 'munmap', 'madvise')] if line else []
        calls = [row[k] for k in ('mmap', 'munmap', 'madvise')]
        if timed and all(c is not None for c in timed):
            row['os_calls_timed'] = 1
            calls = timed
        ops = row.get('ops')
        if all(c is not None for c in calls) and ops and line is not None:
            row['os_calls_per_mop'] = round(sum(calls) * 1e6 / ops, 3)
        row['_hakmem'] = stats.get('hakmem')
    return row
