"""Facts about the machine and the allocators' versions, for the summary header."""

import glob
import hashlib
import os
import platform
import subprocess

from . import PATHS


def numa_nodes():
    n = len(glob.glob('/sys/devices/system/node/node[0-9]*'))
    return n or 1


def cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _run(argv, cwd=None):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def dpkg_version(path):
    """'package version' of the Debian package that ships `path`, or None."""
    if not path:
        return None
    tries = [path, os.path.realpath(path)]
    # usrmerge: dpkg knows some libraries under /lib, others under /usr/lib.
    tries += [t.replace('/usr/lib/', '/lib/', 1) for t in tries if t.startswith('/usr/lib/')]
    for t in tries:
        owner = _run(['dpkg-query', '-S', t])
        if owner:
            pkg = owner.split(':', 1)[0].split(',')[0].strip()
            ver = _run(['dpkg-query', '-W', '-f', '${Version}', pkg])
            if ver:
                return f'{pkg} {ver}'
    return None


def hakmem_version(lib):
    ver = PATHS.get('version') or '?'
    src = PATHS.get('srcdir')
    if src and lib and not lib.startswith(PATHS.get('libdir') or '\0'):
        rev = _run(['git', 'describe', '--always', '--dirty'], cwd=src)
        if rev:
            return f'hakmem {ver} (git {rev})'
    return f'hakmem {ver}'


def allocator_versions(preloads):
    """{allocator: version text} for the allocators of a sweep."""
    out = {}
    for name, path in preloads.items():
        if name == 'glibc':
            libc = os.confstr('CS_GNU_LIBC_VERSION') if hasattr(os, 'confstr') else None
            pkg = _run(['dpkg-query', '-W', '-f', '${Version}', 'libc6'])
            out[name] = ' / '.join(x for x in (libc, pkg and f'libc6 {pkg}') if x) or '?'
        elif name == 'hakmem':
            out[name] = hakmem_version(path)
        else:
            out[name] = dpkg_version(path) or os.path.basename(os.path.realpath(path))
    return out


def sha256(path):
    """The checksum of a preloaded library, or None: a version string names a
    package or a source tree, this the very file that ran."""
    try:
        with open(path, 'rb') as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def usable_cores():
    """The CPUs this process may run on (taskset, cpusets): fewer than the
    machine's when confined, and what "oversubscribed" is measured against."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def thp_mode():
    """Transparent huge pages' mode ('always', 'madvise', 'never'): it changes
    every allocator's resident set (README: transparent huge pages)."""
    text = _read('/sys/kernel/mm/transparent_hugepage/enabled') or ''
    for word in text.split():
        if word.startswith('['):
            return word.strip('[]')
    return 'unknown'


def facts():
    u = platform.uname()
    gp = _run(['gnuplot', '--version'])
    return {
        'cpu': cpu_model(),
        'cores': usable_cores(),
        'cores_online': os.cpu_count() or 1,
        'thp': thp_mode(),
        'numa_nodes': numa_nodes(),
        'kernel': f'{u.system} {u.release} {u.machine}',
        'python': platform.python_version(),
        'gnuplot': gp or 'not found',
    }
