"""Number formatting shared by the summary, the A/B report and the paper."""

DASH = '—'


def si(x):
    """3 significant digits with a k/M/G suffix: 1.23M."""
    if x is None:
        return DASH
    for div, suffix in ((1e9, 'G'), (1e6, 'M'), (1e3, 'k')):
        if abs(x) >= div:
            return f'{x / div:.3g}{suffix}'
    return f'{x:.3g}'


def ratio(x):
    return DASH if x is None else f'{x:.2f}×'


def ratio_quartiles(med, quart):
    """A paired ratio with its quartiles: 1.23× (1.10–1.30)."""
    if med is None:
        return DASH
    return f'{ratio(med)} ({quart[0]:.2f}–{quart[1]:.2f})'


def pct(x):
    return DASH if x is None else f'{100 * x:.1f}%'


def mib(kb):
    return DASH if kb is None else f'{kb / 1024:.3g}'


def num(x, digits=3):
    """digits significant digits, but never exponent notation for big values."""
    if x is None:
        return DASH
    return f'{x:,.0f}' if abs(x) >= 10 ** digits else f'{x:.{digits}g}'


def table(header, rows):
    """A Markdown table; the first column left-aligned, the others right."""
    out = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join([':---'] + ['---:'] * (len(header) - 1)) + '|']
    out += ['| ' + ' | '.join(str(c).replace('|', '\\|') for c in r) + ' |' for r in rows]
    return '\n'.join(out)
