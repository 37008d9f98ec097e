"""numa: the NUMA placement study.

One multi-threaded workload under hakmem, its threads pinned per node
(--pin-nodes), once per HAKMEM_NUMA policy with the policies interleaved in
every repeat.  From hakmem's HAKMEM_STATS=json line it takes, per node, the
sampled placement (of the resident pages of that node's SuperSlabs, how many
the kernel says sit on that node: move_pages at exit), the SuperSlabs, the
cross-node frees and the re-homes; writes numa.csv (one row per run) and
numa.md (one row per policy)."""

import csv
import os
import re
import sys
import time

from . import UsageError, fmt, locate, machine, runner, stats, sweep

DEFAULT_POLICIES = 'local,interleave,off,node:0'
SINGLE_NODE_NOTE = ('single NUMA node: placement is trivially 100%, cross-node traffic 0; '
                    'run inside tests/vm/run-vm.sh or on a multi-node machine for a meaningful study')
NODE_KEYS = ('superslabs', 'bytes_committed', 'cross_node_frees', 'rehomes')
PLACE_KEYS = ('sampled_pages', 'resident', 'on_node')
COLUMNS = ('workload', 'policy', 'threads', 'run', 'order', 'status', 'ops', 'seconds',
           'ops_per_sec', 'wall_s', 'maxrss_kb', 'pinned_nodes', 'nodes', 'policy_reported',
           'free_local', 'free_remote', 'cross_node_frees', 'rehomes', 'sampled_pages',
           'resident', 'on_node', 'placement_share', 'cross_per_mop', 'remote_per_mop')


def parse_policies(text, nodes):
    """'local,node:0' -> ['local', 'node:0']; UsageError for a policy hakmem
    does not know or a node the machine does not have."""
    out = []
    for p in (s.strip() for s in text.split(',')):
        m = re.fullmatch(r'node:(\d+)', p)
        if p in ('local', 'interleave', 'off') or (m and int(m.group(1)) < nodes):
            if p not in out:
                out.append(p)
        elif m:
            raise UsageError(f'numa: policy {p}: this machine has {nodes} NUMA node'
                             f'{"s" if nodes != 1 else ""} (node:0 to node:{nodes - 1})')
        else:
            raise UsageError(f'numa: unknown policy {p!r} (valid: local, interleave, off, node:N)')
    if not out:
        raise UsageError('numa: --policies is empty')
    return out


def numa_fields(st, ops):
    """The study's fields of one run from hakmem's JSON object `st`."""
    num = runner._num
    nodes = st.get('nodes') or []
    f = {'nodes': len(nodes), 'policy_reported': nodes[0].get('policy') if nodes else None,
         'free_local': num(st.get('free_local')), 'free_remote': num(st.get('free_remote'))}
    for n in nodes:
        for k in NODE_KEYS:
            f[f'node{n["node"]}_{k}'] = num(n.get(k))
    for p in st.get('placement') or []:
        i = p['node']
        for k in PLACE_KEYS:
            f[f'node{i}_{k}'] = num(p.get(k))
        res, on = f[f'node{i}_resident'], f[f'node{i}_on_node']
        f[f'node{i}_share'] = round(on / res, 6) if res and on is not None else None
    for k in PLACE_KEYS + ('cross_node_frees', 'rehomes'):
        vals = [f.get(f'node{i}_{k}') for i in range(len(nodes))]
        f[k] = sum(vals) if vals and None not in vals else None
    f['placement_share'] = round(f['on_node'] / f['resident'], 6) if f['resident'] else None
    for k, col in (('cross_node_frees', 'cross_per_mop'), ('free_remote', 'remote_per_mop')):
        f[col] = round(f[k] * 1e6 / ops, 3) if f[k] is not None and ops else None
    return f


def judge(row, policy):
    """A run counts only when the workload passed, pinned its threads, and
    hakmem reported its counters under the policy asked for."""
    if row['status'] != 'ok':
        return row['status']
    if not row.get('pinned_nodes'):
        return 'not-pinned'
    if row.get('nodes') is None:
        return 'no-stats'
    if row['policy_reported'] != policy:
        return f'policy:{row["policy_reported"]}'
    return 'ok'


def complete(row, stderr, policy):
    """Adds the pinning, hakmem's counters and the verdict to a run's row."""
    extra = dict(t.partition('=')[::2] for t in (row.get('extra') or '').split())
    row['pinned_nodes'] = runner._num(extra.get('pinned_nodes'))
    st = runner.parse_stats_json(stderr)
    if st is not None:
        row.update(numa_fields(st, row.get('ops')))
    row['status'] = judge(row, policy)
    return row


def run(opts, log=lambda s: print(s, file=sys.stderr, flush=True)):
    if opts.from_log:
        return from_log(opts, log)
    if opts.runs < 1:
        raise UsageError('numa: --runs must be at least 1')
    machine_nodes = machine.numa_nodes()
    policies = parse_policies(opts.policies, machine_nodes)
    threads = opts.threads if opts.threads is not None else max(2, 2 * machine_nodes)
    if threads < 1:
        raise UsageError('numa: --threads must be positive')
    sweep.check_workload(opts.workload)
    lib = locate.hakmem_lib(opts.lib)
    if not lib:
        raise UsageError('numa: libhakmem.so not found (build it, or give --lib PATH or HAKMEM_LIB)')
    bdir = locate.bench_dir(opts.bench_dir)
    argv = [os.path.join(bdir, opts.workload), '--threads', str(threads), '--pin-nodes']
    argv += (['--quick'] if opts.quick else []) + sweep.workload_args(opts.workload_args, opts.workload)
    if not os.access(argv[0], os.X_OK):
        raise UsageError(f'numa: workload {opts.workload} is not built in {bdir}')
    outdir = opts.out or os.path.join('results', 'numa-' + time.strftime('%Y%m%d-%H%M%S'))
    os.makedirs(outdir, exist_ok=True)
    stub = locate.stub_or_warn(log)
    rows, total = [], opts.runs * len(policies)
    for r in range(opts.runs):
        k = r % len(policies)
        for pos, pol in enumerate(policies[k:] + policies[:k]):
            log(f'[{len(rows) + 1}/{total}] {opts.workload} threads={threads} '
                f'HAKMEM_NUMA={pol} run {r + 1}/{opts.runs}')
            env = runner.run_vars(lib, extra={'HAKMEM_NUMA': pol}, stats=True)
            row = runner.measure(argv, env, opts.timeout, stub)
            row.update(workload=opts.workload, policy=pol, threads=threads, run=r + 1, order=pos)
            rows.append(complete(row, row['_stderr'], pol))
            if row['status'] != 'ok':
                name = f'{pol.replace(":", "-")}-r{r + 1}.stderr'
                os.makedirs(os.path.join(outdir, 'logs'), exist_ok=True)
                with open(os.path.join(outdir, 'logs', name), 'w') as f:
                    f.write(row['_stderr'])
                tail = (row['_stderr'].strip().splitlines() or ['(no stderr)'])[-1]
                log(f"hakmem-bench: FAILED HAKMEM_NUMA={pol} run {r + 1}: {row['status']}: {tail[:200]}")
    cmd = (f'HAKMEM_NUMA=<policy> HAKMEM_STATS=json LD_PRELOAD={lib} '
           f'{" ".join([os.path.basename(argv[0])] + argv[1:])}')
    info = dict(workload=opts.workload, threads=threads, runs=opts.runs, command=cmd,
                machine_nodes=machine_nodes, where='in sysfs', policies=policies,
                cores=os.cpu_count())
    return finish(outdir, info, rows)


def _fields(line):
    return dict(t.partition('=')[::2] for t in line.split()[1:])


def parse_log(text):
    """The header and the runs of a log of tests/vm/numa-study-driver.c (the
    serial console of a VM): ({key: value}, [(run fields, status, text)])."""
    head, runs, cur = {}, [], None
    for line in text.splitlines():
        if line.startswith('NUMA-STUDY '):
            head = _fields(line)
        elif line.startswith('NUMA-STUDY-RUN '):
            cur = (_fields(line), [])
        elif line.startswith('NUMA-STUDY-END ') and cur:
            runs.append((cur[0], _fields(line).get('status', ''), '\n'.join(cur[1])))
            cur = None
        elif cur:
            cur[1].append(line)
    if cur:
        runs.append((cur[0], 'unfinished', '\n'.join(cur[1])))
    return head, runs


def from_log(opts, log):
    """The study's tables from a driver log instead of runs of our own."""
    with open(opts.from_log, errors='replace') as f:
        head, runs = parse_log(f.read())
    if not runs:
        raise UsageError(f'numa: {opts.from_log}: no NUMA-STUDY-RUN blocks '
                         '(a log of tests/vm/numa-study-vm.sh?)')
    rows, policies = [], []
    for fields, status, text in runs:
        pol = fields.get('policy', '?')
        policies += [pol] if pol not in policies else []
        line = runner.parse_result_line(text)
        row = {'status': 'ok' if status == '0' else status, 'workload': head.get('workload'),
               'policy': pol, 'threads': head.get('threads'), 'run': fields.get('run'),
               'order': fields.get('order')}
        if line is not None:
            for k in ('ops', 'seconds', 'ops_per_sec'):
                row[k] = runner._num(line.get(k))
            row['extra'] = ' '.join(f'{k}={v}' for k, v in line.items() if k not in runner.LINE_KEYS)
            if row['status'] == 'ok' and line.get('check', 'ok') != 'ok':
                row['status'] = 'check:' + line['check']
        elif row['status'] == 'ok':
            row['status'] = 'no-result'
        rows.append(complete(row, text, pol))
        if row['status'] != 'ok':
            log(f"hakmem-bench: FAILED HAKMEM_NUMA={pol} run {row['run']}: {row['status']}")
    nruns = max(int(r['run']) for r in rows if str(r['run']).isdigit()) if rows else 0
    info = dict(workload=head.get('workload', '?'), threads=int(head.get('threads', 0)),
                runs=nruns, command=f'from {opts.from_log} (tests/vm/numa-study-driver.c)',
                machine_nodes=int(head.get('nodes', 0)), where='in the log\'s machine',
                policies=policies, cores=None)
    outdir = opts.out or os.path.join('results', 'numa-' + time.strftime('%Y%m%d-%H%M%S'))
    os.makedirs(outdir, exist_ok=True)
    return finish(outdir, info, rows)


def finish(outdir, info, rows):
    """numa.csv, numa.md and the table on stdout; exit 1 when a run failed."""
    nodes = max([r['nodes'] for r in rows if r['status'] == 'ok'] or [info['machine_nodes']])
    write_csv(os.path.join(outdir, 'numa.csv'), rows, nodes)
    text = report(info, nodes, rows)
    with open(os.path.join(outdir, 'numa.md'), 'w') as f:
        f.write(text)
    print(text, end='')
    print(f'results: {os.path.join(outdir, "numa.md")}, {os.path.join(outdir, "numa.csv")}')
    return 0 if all(r['status'] == 'ok' for r in rows) else 1


def write_csv(path, rows, nodes):
    cols = list(COLUMNS) + [f'node{i}_{k}' for i in range(nodes)
                            for k in NODE_KEYS + PLACE_KEYS + ('share',)]
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction='ignore')
        w.writeheader()
        for r in rows:
            w.writerow({k: '' if r.get(k) is None else r[k] for k in cols})


def _share(rows, on_key, res_key):
    """Pooled over runs: all on-node pages over all resident ones, as text."""
    on = [r.get(on_key) for r in rows]
    res = [r.get(res_key) for r in rows]
    if not rows or None in on or None in res:
        return fmt.DASH
    return f'{fmt.pct(sum(on) / sum(res))} of {sum(res)}' if sum(res) else 'no pages'


def _median(rows, key):
    return stats.median([r[key] for r in rows if isinstance(r.get(key), (int, float))])


def report(info, nodes, rows):
    policies, threads, runs, mn = info['policies'], info['threads'], info['runs'], info['machine_nodes']
    out = [f'# NUMA placement study: `{info["workload"]}`', '',
           f'- {threads} threads pinned over the NUMA nodes (`--pin-nodes`: thread i on node '
           f'i mod nodes); {runs} run{"s" if runs != 1 else ""} per policy, '
           'the policies interleaved' + (' (oversubscribed: more threads than cores)'
                                         if info['cores'] and threads > info['cores'] else ''),
           f'- command: `{info["command"]}`',
           f'- machine: {mn} NUMA node{"s" if mn != 1 else ""} {info["where"]}; '
           f'hakmem reported {nodes}',
           '- placement: of the sampled resident pages of each node\'s SuperSlabs (hakmem '
           'samples them with move_pages at exit), the share on that node, pooled over runs; '
           'SuperSlabs and rehomes: medians per run; frees per million operations (Mop) of '
           'the workload', '']
    if nodes == 1:
        out += [f'**{SINGLE_NODE_NOTE}**', '']
    first = None
    header = (['policy', 'ok/runs', 'ops/s (median)', 'spread (min–max)', f'vs {policies[0]}',
               'placement (all nodes)'] + [f'node {i}' for i in range(nodes)] +
              ['SuperSlabs per node', 'cross-node frees /Mop', 'remote frees /Mop', 'rehomes'])
    body = []
    for pol in policies:
        mine = [r for r in rows if r['policy'] == pol]
        ok = [r for r in mine if r['status'] == 'ok']
        tp = [r['ops_per_sec'] for r in ok if r.get('ops_per_sec') is not None]
        med = stats.median(tp)
        first = med if pol == policies[0] else first
        ss = [_median(ok, f'node{i}_superslabs') for i in range(nodes)]
        body.append([pol, f'{len(ok)}/{len(mine)}', fmt.si(med),
                     f'{fmt.si(min(tp))}–{fmt.si(max(tp))}' if tp else fmt.DASH,
                     fmt.ratio(stats.ratio(med, first)), _share(ok, 'on_node', 'resident')] +
                    [_share(ok, f'node{i}_on_node', f'node{i}_resident') for i in range(nodes)] +
                    [' / '.join(fmt.num(s) for s in ss), fmt.num(_median(ok, 'cross_per_mop')),
                     fmt.num(_median(ok, 'remote_per_mop')), fmt.num(_median(ok, 'rehomes'))])
    out += [fmt.table(header, body), '']
    bad = [r for r in rows if r['status'] != 'ok']
    if bad:
        out.append(f'{len(bad)} of {len(rows)} runs failed (stderr in logs/): ' +
                   ', '.join(f'{r["policy"]} run {r["run"]}: `{r["status"]}`' for r in bad))
        out.append('')
    return '\n'.join(out)
