"""Plots with gnuplot: throughput and peak RSS vs threads, one line per allocator.

Each figure is written as PNG and SVG from a .gp script left beside the data,
so a reader can re-render or restyle it without this tool."""

import os
import shutil
import subprocess

from . import stats, summary

COLORS = {'hakmem': '#d62728', 'glibc': '#7f7f7f', 'mimalloc': '#1f77b4',
          'jemalloc': '#2ca02c', 'tcmalloc': '#ff7f0e'}
EXTRA_COLORS = ('#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22')
WORKLOAD_COLORS = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
                   '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf')


def _color(name, i):
    return COLORS.get(name, EXTRA_COLORS[i % len(EXTRA_COLORS)])


def _point(i):
    """Distinct point shapes, so lines that coincide stay distinguishable."""
    return (7, 5, 9, 13, 11, 15)[i % 6]


def _q(s):
    return "'" + str(s).replace("'", "''") + "'"


def _png_terminal(gnuplot):
    ok = subprocess.run([gnuplot, '-e', 'set terminal pngcairo'],
                        capture_output=True).returncode == 0
    return ("pngcairo size 960,600 font 'Sans,11' noenhanced" if ok
            else 'png size 960,600 noenhanced')


def _axes(threads, cores, values, ratio=False):
    """x on a log2 scale with a tic per measured thread count, the core count marked."""
    lo, hi = min(threads), max(threads)
    lines = ['set logscale x 2',
             f'set xrange [{lo / 1.3}:{hi * 1.3}]',
             'set xtics (' + ', '.join(f'"{t}" {t}' for t in threads) + ')',
             'set grid', 'set key outside right top box', 'set xlabel "threads"']
    pos = [v for v in values if v and v > 0]
    if ratio and pos:
        # Ratios on a log scale: 0.5x and 2x lie equally far from parity.
        lo_y, hi_y = min(min(pos), 1.0) / 1.25, max(max(pos), 1.0) * 1.25
        lines += ['set logscale y 2', f'set yrange [{lo_y}:{hi_y}]', "set ytics format '%.2g×'"]
    elif pos and max(pos) / min(pos) > 30:
        lines.append('set logscale y')
    else:
        lines.append('set yrange [0:*]')
    if cores and lo <= cores < hi:
        lines += [f"set arrow from {cores}, graph 0 to {cores}, graph 1 nohead dt 2 lc rgb 'gray40'",
                  f"set label 'cores = {cores}: oversubscribed to the right' at {cores}, graph 0.04 "
                  "offset 0.5,0 tc rgb 'gray30'"]
    return lines


def _render(gnuplot, term, plotdir, name, body):
    """Write <name>.gp and run it; return the PNG path or None on failure."""
    gp = os.path.join(plotdir, name + '.gp')
    with open(gp, 'w') as f:
        f.write('\n'.join([f'set terminal {term}', f'set output {_q(name + ".png")}'] + body +
                          ["set terminal svg size 960,600 dynamic font 'Sans,11' noenhanced",
                           f'set output {_q(name + ".svg")}', 'replot', 'unset output']) + '\n')
    p = subprocess.run([gnuplot, name + '.gp'], cwd=plotdir, capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip()
    return os.path.join(plotdir, name + '.png'), ''


def _workload(gnuplot, term, plotdir, points, w, threads, allocators, cores, runs):
    dat = f'{w}.dat'
    present = [a for a in allocators
               if any(points.get((w, t, a), {}).get('ops_per_sec') for t in threads)]
    with open(os.path.join(plotdir, dat), 'w') as f:
        f.write('# threads median_ops_per_sec min max median_maxrss_kb; one block per allocator\n')
        for a in present:
            f.write(f'# {a}\n')
            for t in threads:
                p = points.get((w, t, a))
                if p and p['ops_per_sec']:
                    f.write(f"{t} {p['ops_per_sec']} {p['min']} {p['max']} {p['maxrss_kb'] or 'NaN'}\n")
            f.write('\n\n')
    if not present:
        return []
    ts = [t for t in threads if any((w, t, a) in points for a in present)]
    tp = [points[(w, t, a)]['ops_per_sec'] for a in present for t in ts if (w, t, a) in points]
    rss = [points[(w, t, a)]['maxrss_kb'] for a in present for t in ts if (w, t, a) in points]
    out = []
    for kind, values, ylabel, using, style in (
            ('throughput', tp, 'throughput (Mops/s)', '1:($2/1e6):($3/1e6):($4/1e6)', 'yerrorlines'),
            ('rss', rss, 'peak RSS (MiB)', '1:($5/1024)', 'linespoints')):
        if kind == 'throughput':
            title = f'{w}: throughput vs threads (median of {runs} run(s), bars min–max)'
        else:
            title = f'{w}: peak RSS vs threads (median ru_maxrss)'
        body = _axes(ts, cores, values) + [
            f'set title {_q(title)}',
            f'set ylabel {_q(ylabel)}',
            # Drawn in reverse so the first allocator (hakmem) lies on top;
            # 'key invert' lists them in the table's order all the same.
            'set key invert',
            'plot ' + ', \\\n     '.join(
                f"{_q(dat)} index {i} using {using} with {style} lw 2 pt {_point(i)} ps 1.3 "
                f"lc rgb {_q(_color(a, i))} title {_q(a)}"
                for i, a in reversed(list(enumerate(present))))]
        out.append((kind, _render(gnuplot, term, plotdir, f'{kind}-{w}', body)))
    return out


def _ratio(gnuplot, term, plotdir, points, workloads, threads, cores):
    """hakmem / mimalloc throughput vs threads, one line per workload."""
    ratios = summary.hakmem_ratios(points, workloads, threads, ['mimalloc'], 'ops_per_sec')
    ws = [w for w in workloads if any((w, t, 'mimalloc') in ratios for t in threads)]
    if not ws:
        return []
    with open(os.path.join(plotdir, 'ratio-hakmem.dat'), 'w') as f:
        f.write('# threads hakmem/mimalloc; one block per workload\n')
        for w in ws:
            f.write(f'# {w}\n')
            for t in threads:
                if ratios.get((w, t, 'mimalloc')):
                    f.write(f"{t} {ratios[(w, t, 'mimalloc')]}\n")
            f.write('\n\n')
    ts = [t for t in threads if any((w, t, 'mimalloc') in ratios for w in ws)]
    body = _axes(ts, cores, [v for v in ratios.values() if v], ratio=True) + [
        "set title 'hakmem throughput relative to mimalloc (1 = parity)'",
        "set ylabel 'hakmem / mimalloc (median / median)'",
        "set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 1.5 lc rgb 'black'",
        'plot ' + ', \\\n     '.join(
            f"'ratio-hakmem.dat' index {i} using 1:2 with linespoints lw 2 pt {_point(i)} "
            f"lc rgb {_q(WORKLOAD_COLORS[i % len(WORKLOAD_COLORS)])} title {_q(w)}" for i, w in enumerate(ws))]
    return [('ratio', _render(gnuplot, term, plotdir, 'ratio-hakmem', body))]


# Name prefixes of the plots render_all draws (papers/gen_paper.py replaces
# only these).
SWEEP_PLOTS = ('throughput-', 'rss-', 'ratio-')


def _gnuplot(log):
    """The gnuplot to run, or None (said on log).  HAKMEM_BENCH_GNUPLOT picks
    another one; set empty, it turns plots off."""
    gnuplot = shutil.which(os.environ.get('HAKMEM_BENCH_GNUPLOT', 'gnuplot') or '/nonexistent')
    if not gnuplot:
        log('hakmem-bench: gnuplot not found: no plots (apt-get install gnuplot-nox)')
    return gnuplot


def render_burst(series, allocators, plotdir, log):
    """hakmem-bench burst's plots, one per scenario: the resident set over the
    slow phase, a line per allocator.  series: {(freer, rate): {allocator:
    [(t_ms, rss_kb)]}}.  Returns {(freer, rate): PNG file name in plotdir}."""
    gnuplot = _gnuplot(log)
    if not gnuplot:
        return {}
    term = _png_terminal(gnuplot)
    made = {}
    for (freer, rate), per in series.items():
        name = f'burst-{freer}-{rate}'
        present = [a for a in allocators if per.get(a)]
        with open(os.path.join(plotdir, name + '.dat'), 'w') as f:
            f.write('# seconds rss_mib; one block per allocator\n')
            for a in present:
                f.write(f'# {a}\n' + ''.join(f'{t / 1000} {rss / 1024}\n' for t, rss in per[a]) + '\n\n')
        who = 'another thread' if freer == 'remote' else 'their owner'
        body = ['set grid', 'set key outside right top box', 'set yrange [0:*]',
                f'set title {_q(f"freed by {who}, then {rate} allocations/s")}',
                "set xlabel 'seconds after the frees'", "set ylabel 'resident set (MiB)'",
                'plot ' + ', \\\n     '.join(
                    f"{_q(name + '.dat')} index {i} with lines lw 2 lc rgb {_q(_color(a, i))} title {_q(a)}"
                    for i, a in enumerate(present))]
        png, err = _render(gnuplot, term, plotdir, name, body)
        if png:
            made[(freer, rate)] = os.path.basename(png)
        else:
            log(f'hakmem-bench: gnuplot failed on {name}: {err}')
    return made


def render_all(rows, meta, outdir, log):
    """Render every plot into outdir/plots; return the PNG paths made."""
    gnuplot = _gnuplot(log)
    if not gnuplot:
        return []
    plotdir = os.path.join(outdir, 'plots')
    os.makedirs(plotdir, exist_ok=True)
    points = stats.aggregate(rows)
    workloads, threads, allocators = summary.layout(rows)
    cores = (meta.get('machine') or {}).get('cores')
    runs = meta.get('runs') or max((r['run'] or 0 for r in rows), default=0)
    term = _png_terminal(gnuplot)
    made = []
    results = []
    for w in workloads:
        results += _workload(gnuplot, term, plotdir, points, w, threads, allocators, cores, runs)
    if 'hakmem' in allocators and 'mimalloc' in allocators:
        results += _ratio(gnuplot, term, plotdir, points, workloads, threads, cores)
    for kind, (png, err) in results:
        if png:
            made.append(png)
        else:
            log(f'hakmem-bench: gnuplot failed on a {kind} plot: {err}')
    return made
