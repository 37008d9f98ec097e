"""Aggregates over repeated runs: median, spread, coefficient of variation,
and ratios paired by round."""

import math
import statistics


def median(xs):
    return statistics.median(xs) if xs else None


def cv(xs):
    """Sample standard deviation over mean; None below two values."""
    if len(xs) < 2:
        return None
    m = statistics.fmean(xs)
    return statistics.stdev(xs) / m if m else None


def ratio(a, b):
    return a / b if a is not None and b else None


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(statistics.fmean(math.log(x) for x in xs)) if xs else None


def throughput(row, metric):
    """ops per wall-clock second ('wall'), or per CPU second ('cpu'): the
    workers' CPU time in the timed part where the workload reports it
    (cpu_timed_s), else the whole process's (a plain program, or results
    from before session 31)."""
    if row['status'] != 'ok':
        return None
    if metric == 'cpu':
        ops, cpu = row.get('ops'), row.get('cpu_timed_s') or row.get('cpu_s')
        return ops / cpu if ops and cpu else None
    return row.get('ops_per_sec')


def paired(rows_b, rows_a, metric):
    """Median of the per-round ratios B/A (rows_b[i] and rows_a[i] ran in the
    same round), their spread: half the interquartile range over the median
    (None below two rounds), and the quartiles.  Rounds with a failed run are
    left out.  The machine's drift between rounds cancels in each ratio; what
    is left shows in the quartiles."""
    rs = []
    for rb, ra in zip(rows_b, rows_a):
        b, a = throughput(rb, metric), throughput(ra, metric)
        if b is not None and a:
            rs.append(b / a)
    if not rs:
        return None, None, None
    med = statistics.median(rs)
    if len(rs) < 2:
        return med, None, (min(rs), max(rs))
    q1, _, q3 = statistics.quantiles(rs, n=4, method='inclusive')
    return med, (q3 - q1) / 2 / med, (q1, q3)


def best(rows, metric):
    """Of the rows of one round, the one of the highest throughput; a failed
    one if any failed, so that paired() leaves the round out: the best of the
    rest need not have been the best of the round."""
    failed = [r for r in rows if throughput(r, metric) is None]
    return failed[0] if failed else max(rows, key=lambda r: throughput(r, metric))


def aggregate(rows):
    """Group ok runs by (workload, threads, allocator).

    Returns {key: point} where point has runs, ok, median/min/max/cv of
    ops_per_sec, median RSS (KiB) and the medians of the other measures."""
    groups = {}
    for r in rows:
        key = (r['workload'], r['threads'], r['allocator'])
        g = groups.setdefault(key, {'runs': 0, 'ok': 0, 'rows': [],
                                    'oversubscribed': bool(r.get('oversubscribed'))})
        g['runs'] += 1
        if r['status'] == 'ok':
            g['ok'] += 1
            g['rows'].append(r)
    for g in groups.values():
        ok = g.pop('rows')

        def col(name):
            return [r[name] for r in ok if isinstance(r.get(name), (int, float))]
        tp = col('ops_per_sec')
        g['ops_per_sec'] = median(tp)
        g['min'] = min(tp) if tp else None
        g['max'] = max(tp) if tp else None
        g['cv'] = cv(tp)
        for name in ('maxrss_kb', 'wall_s', 'cpu_s', 'cpu_timed_s', 'minflt', 'os_calls_per_mop', 'os_calls_timed',
                     'p50_ns', 'p95_ns', 'p99_ns', 'p999_ns'):
            g[name] = median(col(name))
    return groups


def ordered(values, preferred):
    """values sorted with the names of `preferred` first, in its order."""
    rank = {v: i for i, v in enumerate(preferred)}
    return sorted(set(values), key=lambda v: (rank.get(v, len(rank)), str(v)))
