"""Aggregates over repeated runs: median, spread, coefficient of variation."""

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
        for name in ('maxrss_kb', 'wall_s', 'cpu_s', 'minflt', 'os_calls_per_mop',
                     'p50_ns', 'p95_ns', 'p99_ns', 'p999_ns'):
            g[name] = median(col(name))
    return groups


def ordered(values, preferred):
    """values sorted with the names of `preferred` first, in its order."""
    rank = {v: i for i, v in enumerate(preferred)}
    return sorted(set(values), key=lambda v: (rank.get(v, len(rank)), str(v)))
