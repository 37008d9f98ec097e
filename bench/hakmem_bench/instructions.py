"""hakmem-bench instructions: a workload's instructions under each allocator,
split into the allocator's own and the rest (callgrind).

A target on instructions ("at most 0.85x mimalloc's count") is a target on
the whole run, and most of a run is the workload's own code, which no
allocator changes.  Callgrind counts every instruction by the object and
function it ran in, so each run splits into the allocator's instructions
(its library; glibc's malloc functions for glibc), the workload program's and
the rest (libc's memcpy, the dynamic loader).  An allocator that reaches
`target` times the reference's count can spend at most target x that count,
less the fewest non-allocator instructions any allocator's run needed, on
itself: the bound, per operation, against what each allocator spends.

Callgrind runs one thread at a time, in long slices: with several threads,
which blocks are freed remotely depends on the slices, so counts of
multi-threaded runs move between runs (README: Instruction counts)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

from . import ALLOCATORS, UsageError, fmt, locate, machine, profile, runner, sweep

PARTS = ('allocator', 'workload', 'other')
_COST = re.compile(r'^[-+*0-9]')


def _name(table, rest):
    """Callgrind's name compression: '(id) name' defines id, '(id)' reuses it."""
    m = re.match(r'\((\d+)\)\s*(.*)', rest)
    if not m:
        return rest
    if m.group(2):
        table[m.group(1)] = m.group(2)
    return table.get(m.group(1), m.group(2))


def split_costs(path):
    """{(object, function): self instructions} from one callgrind output file
    (events Ir only, the default).  A call's inclusive cost (the line after
    calls=) is the callee's, counted where the callee's own lines are."""
    obs, fns, out = {}, {}, {}
    ob = fn = ''
    skip = False
    with open(path) as f:
        for line in f:
            if _COST.match(line):
                if skip:
                    skip = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    key = (ob, fn)
                    out[key] = out.get(key, 0) + int(parts[1])
                continue
            tag, eq, rest = line.rstrip('\n').partition('=')
            if not eq:
                continue
            if tag == 'ob':
                ob = _name(obs, rest)
            elif tag == 'fn':
                fn = _name(fns, rest)
            elif tag in ('cob', 'cfn'):
                _name(obs if tag == 'cob' else fns, rest)
            elif tag == 'calls':
                skip = True
    return out


def categorize_costs(costs, allocator_file, workload_file):
    """Instructions per part (PARTS) of one run."""
    parts = dict.fromkeys(PARTS, 0)
    for (ob, fn), n in costs.items():
        real = os.path.realpath(ob) if ob.startswith('/') else ob
        cat = profile.categorize(real, fn, allocator_file, workload_file)
        if not ob.startswith('/') and allocator_file and profile.bare(fn).startswith(profile.GLIBC_ALLOCATOR):
            cat = 'allocator'   # valgrind names no object for tcmalloc's malloc and free
        parts[cat if cat in parts else 'other'] += n   # waiting is spinning here: other
    return parts


def bound(parts, ops, target, ref):
    """The allocator instructions per operation that a run within `target`
    times ref's count could spend at most, given the fewest non-allocator
    instructions of any run measured: (allowed per op, least rest, under
    which allocator), or None."""
    if ref not in parts or not ops:
        return None
    least = min(parts, key=lambda a: parts[a]['workload'] + parts[a]['other'])
    rest = parts[least]['workload'] + parts[least]['other']
    total_ref = sum(parts[ref].values())
    return (target * total_ref - rest) / ops, rest, least


def run(opts, log=lambda s: print(s, file=sys.stderr, flush=True)):
    valgrind = shutil.which('valgrind')
    if not valgrind:
        raise UsageError('instructions: valgrind is not installed (Debian package valgrind)')
    names = sweep.select(opts.allocators, ALLOCATORS, 'allocator') if opts.allocators else ['hakmem', 'mimalloc']
    sweep.check_workload(opts.workload)
    if opts.target is not None and not 0 < opts.target:
        raise UsageError('instructions: --target must be above 0')
    bdir = locate.bench_dir(opts.bench_dir)
    prog = os.path.join(bdir, opts.workload)
    if not os.access(prog, os.X_OK):
        raise UsageError(f'instructions: {prog} is not built')
    libs = locate.resolve_allocators(names, opts.lib, log)
    if not libs:
        raise UsageError('instructions: none of the allocators is available')
    if opts.reference not in libs:
        raise UsageError(f'instructions: the reference {opts.reference} is not among those measured')
    argv = sweep.workload_argv(bdir, opts.workload, opts.threads, opts)
    parts, ops, failed = {}, {}, []
    work = tempfile.mkdtemp(prefix='hakmem-bench-instructions.')
    try:
        for a, lib in libs.items():
            out = os.path.join(work, f'{a}.out')
            env = dict(os.environ)
            env.pop('LD_PRELOAD', None)
            if lib:
                env['LD_PRELOAD'] = lib   # valgrind puts its own preloads ahead of it
            log(f'{opts.workload} threads={opts.threads} {a} (callgrind)')
            try:
                p = subprocess.run([valgrind, '--tool=callgrind', f'--callgrind-out-file={out}'] + argv,
                                   env=env, capture_output=True, text=True, timeout=opts.timeout)
            except subprocess.TimeoutExpired:
                failed.append(f'{a}: timed out after {opts.timeout} s')
                continue
            line = runner.parse_result_line(p.stdout)
            if p.returncode != 0 or not line or not os.path.exists(out):
                tail = (p.stderr.strip().splitlines() or ['(no stderr)'])[-1]
                failed.append(f'{a}: exit {p.returncode}: {tail[:200]}')
                continue
            ops[a] = int(float(line.get('ops', 0)))
            parts[a] = categorize_costs(split_costs(out), os.path.realpath(lib) if lib else '',
                                        os.path.realpath(prog))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for f in failed:
        log(f'hakmem-bench: FAILED {f}')
    report = make_report(opts, parts, ops, machine.hakmem_version(libs.get('hakmem')) if 'hakmem' in libs else None)
    print(report)
    if opts.out:
        os.makedirs(opts.out, exist_ok=True)
        with open(os.path.join(opts.out, 'instructions.md'), 'w') as f:
            f.write(report + '\n')
    return 1 if failed else 0


def make_report(opts, parts, ops, hakmem):
    ref = opts.reference
    out = [f'## Instructions of {opts.workload}, threads={opts.threads} (callgrind)', '',
           (f'Measured {hakmem}. ' if hakmem else '') +
           'Each allocator\'s run, split by where its instructions ran: the allocator itself, the '
           'workload program, the rest (libc, the dynamic loader).', '']
    rows, lines = [], []
    for a in parts:
        total = sum(parts[a].values())
        n = ops.get(a) or 0
        rows.append([a, f'{total:,}', f'{total / sum(parts[ref].values()):.3f}x' if ref in parts else fmt.DASH] +
                    [f'{parts[a][p]:,}' for p in PARTS] +
                    [f'{parts[a]["allocator"] / n:.1f}' if n else fmt.DASH])
        lines.append(f'hakmem-bench-instructions allocator={a} ops={n} total={total} ' +
                     ' '.join(f'in_{p}={parts[a][p]}' for p in PARTS))
    out += [fmt.table(['allocator', 'instructions', f'vs {ref}'] + [f'{p}' for p in PARTS] +
                      ['allocator per op'], rows), '']
    n = ops.get(ref) or 0
    b = bound(parts, n, opts.target, ref) if opts.target is not None else None
    if b is not None:
        allowed, rest, least = b
        floor = rest / sum(parts[ref].values())
        spent = min(parts[a]['allocator'] / ops[a] for a in parts if ops.get(a))
        out += [f'Bound: a run at {opts.target:.2f}x {ref}\'s instructions could spend at most '
                f'**{allowed:.1f}** instructions per operation in the allocator, with the fewest '
                f'instructions outside it of any run here ({rest:,}, under {least}); an allocator '
                f'of no instructions at all would come to {floor:.3f}x. The fewest any allocator '
                f'here spends is {spent:.1f} per operation.', '']
        lines.append(f'hakmem-bench-instructions-bound reference={ref} target={opts.target} '
                     f'allowed_per_op={allowed:.2f} least_rest={rest} under={least} floor={floor:.4f} '
                     f'fewest_per_op={spent:.2f}')
    return '\n'.join(out + lines)
