"""results.csv: one row per run, written as runs finish and read back by summarize."""

import csv
import os
import shutil

COLUMNS = ('workload', 'allocator', 'threads', 'run', 'order', 'status',
           'ops', 'seconds', 'ops_per_sec', 'wall_s', 'cpu_s', 'cpu_timed_s', 'maxrss_kb',
           'minflt', 'vcsw', 'ivcsw', 'oversubscribed',
           'p50_ns', 'p95_ns', 'p99_ns', 'p999_ns',
           'mmap', 'munmap', 'madvise', 'os_calls_timed', 'os_calls_per_mop',
           'free_remote', 'bytes_committed', 'peak_committed', 'env', 'extra')
TEXT_COLUMNS = ('workload', 'allocator', 'status', 'env', 'extra')


class Writer:
    """Appends rows and flushes each one, so an interrupted sweep keeps its data."""

    def __init__(self, path):
        self.f = open(path, 'w', newline='')
        self.w = csv.DictWriter(self.f, fieldnames=COLUMNS, extrasaction='ignore')
        self.w.writeheader()
        self.f.flush()

    def add(self, row):
        self.w.writerow({k: ('' if row.get(k) is None else row[k]) for k in COLUMNS})
        self.f.flush()

    def close(self):
        self.f.close()


def _value(text):
    if text == '':
        return None
    try:
        f = float(text)
    except ValueError:
        return text
    return int(f) if f.is_integer() and 'e' not in text.lower() and '.' not in text else f


def read(path):
    """The rows of a results.csv, numbers parsed, empty cells as None."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    rows = []
    with open(path, newline='') as f:
        for raw in csv.DictReader(f):
            row = {}
            for k, v in raw.items():
                if k is None:
                    continue
                v = v if v is not None else ''
                row[k] = (v if k in TEXT_COLUMNS else _value(v.strip()))
            for k in COLUMNS:
                row.setdefault(k, None)
            row['threads'] = int(row['threads']) if row['threads'] is not None else 0
            rows.append(row)
    return rows


def kept(src, papers, study):
    """Whether src is the data kept beside the papers for study (keep)."""
    data = os.path.join(papers, 'data', study)
    return os.path.isdir(data) and os.path.samefile(data, src)


def keep(src, papers, study, names):
    """Copies a study's data files to papers/data/<study>, beside the paper
    written from them: results/ is not kept in git, and a reader should be
    able to check every figure of a paper against its runs."""
    if kept(src, papers, study):
        return
    data = os.path.join(papers, 'data', study)
    os.makedirs(data, exist_ok=True)
    for name in names:
        dst = os.path.join(data, name)
        if os.path.isfile(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), dst)
        elif os.path.isfile(dst):
            os.remove(dst)
