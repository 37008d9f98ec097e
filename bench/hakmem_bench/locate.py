"""Finding the workload programs, libhakmem and the reference allocators."""

import os
import platform
import sysconfig

from . import PATHS, WORKLOADS, UsageError

# Reference allocators are preloaded by their run-time soname (the -dev
# symlinks may be missing on a machine that only has the runtime package).
REFERENCE_SONAMES = {
    'mimalloc': 'libmimalloc.so.2',
    'jemalloc': 'libjemalloc.so.2',
    'tcmalloc': 'libtcmalloc_minimal.so.4',
}


def _real(path):
    return os.path.realpath(path) if path else ''


def installed_mode():
    """True when the running script is the installed one (in bindir)."""
    here, bindir = _real(PATHS.get('scriptdir', '')), _real(PATHS['bindir'])
    return bool(here) and here == bindir


def _has_workload(d):
    return any(os.access(os.path.join(d, w), os.X_OK) for w in WORKLOADS)


def bench_dir(option=None):
    """Directory holding the workload programs, or UsageError."""
    if option:
        if not os.path.isdir(option):
            raise UsageError(f'--bench-dir {option}: no such directory')
        return option
    env = os.environ.get('HAKMEM_BENCH_DIR')
    if env:
        if not os.path.isdir(env):
            raise UsageError(f'HAKMEM_BENCH_DIR={env}: no such directory')
        return env
    candidates = []
    if not installed_mode():
        candidates.append(PATHS.get('scriptdir', ''))
        if PATHS['builddir']:
            candidates.append(os.path.join(PATHS['builddir'], 'bench'))
    candidates.append(PATHS['pkglibexecdir'])
    for d in candidates:
        if d and os.path.isdir(d) and _has_workload(d):
            return d
    looked = ', '.join(d for d in candidates if d) or '(nowhere)'
    raise UsageError('no workload programs found (looked in ' + looked +
                     '); build them with make, or give --bench-dir DIR '
                     'or HAKMEM_BENCH_DIR')


def available_workloads(bdir):
    return [w for w in WORKLOADS if os.access(os.path.join(bdir, w), os.X_OK)]


def hakmem_lib(option=None):
    """Path of libhakmem.so to preload, or None when none is found."""
    if option:
        if not os.path.isfile(option):
            raise UsageError(f'--lib {option}: no such file')
        return os.path.abspath(option)
    env = os.environ.get('HAKMEM_LIB')
    if env:
        if not os.path.isfile(env):
            raise UsageError(f'HAKMEM_LIB={env}: no such file')
        return os.path.abspath(env)
    candidates = []
    if not installed_mode():
        here = PATHS.get('scriptdir', '')
        if here:
            candidates.append(os.path.join(here, '..', 'src', '.libs', 'libhakmem.so'))
        if PATHS['builddir']:
            candidates.append(os.path.join(PATHS['builddir'], 'src', '.libs', 'libhakmem.so'))
    if PATHS['libdir']:
        candidates += [os.path.join(PATHS['libdir'], 'libhakmem.so.0'),
                       os.path.join(PATHS['libdir'], 'libhakmem.so')]
    for c in candidates:
        if os.path.isfile(c):
            return os.path.abspath(c)
    return None


def lib_search_dirs():
    """The usual multiarch library directories (HAKMEM_BENCH_LIBPATH overrides)."""
    env = os.environ.get('HAKMEM_BENCH_LIBPATH')
    if env is not None:
        return [d for d in env.split(':') if d]
    triplets = []
    for t in (sysconfig.get_config_var('MULTIARCH'), platform.machine() + '-linux-gnu'):
        if t and t not in triplets:
            triplets.append(t)
    dirs = []
    for t in triplets:
        dirs += [f'/usr/local/lib/{t}', f'/usr/lib/{t}', f'/lib/{t}']
    return dirs + ['/usr/local/lib', '/usr/lib64', '/lib64', '/usr/lib', '/lib']


def reference_lib(name):
    soname = REFERENCE_SONAMES[name]
    for d in lib_search_dirs():
        p = os.path.join(d, soname)
        if os.path.isfile(p):
            return p
    return None


def resolve_allocators(names, lib_option=None, log=None):
    """Map each available allocator to its LD_PRELOAD value ('' = none).

    A missing allocator is skipped with one line on `log`."""
    found = {}
    for name in names:
        if name == 'glibc':
            found[name] = ''
            continue
        if name == 'hakmem':
            path = hakmem_lib(lib_option)
            why = 'libhakmem.so not found (build it, or give --lib PATH or HAKMEM_LIB)'
        else:
            path = reference_lib(name)
            why = (f'{REFERENCE_SONAMES[name]} not found in ' +
                   (':'.join(lib_search_dirs()) or '(no directories)'))
        if path:
            found[name] = path
        elif log:
            log(f'hakmem-bench: skipping {name}: {why}')
    return found


STUB = 'hakmem-bench-spawn'
SAMPLER = 'hakmem-bench-sampler.so'


def _helper(env_name, build_names, installed_name, mode):
    """A helper of the tool: $env_name ('' = none), else the build tree's
    bench/<build_names>, else $(pkglibexecdir)/<installed_name>."""
    env = os.environ.get(env_name)
    if env is not None:
        return env if env and os.access(env, mode) else None
    candidates = []
    if not installed_mode():
        for name in build_names:
            candidates.append(os.path.join(PATHS.get('scriptdir', ''), name))
            if PATHS['builddir']:
                candidates.append(os.path.join(PATHS['builddir'], 'bench', name))
    if PATHS['pkglibexecdir']:
        candidates.append(os.path.join(PATHS['pkglibexecdir'], installed_name))
    for c in candidates:
        if os.access(c, mode) and os.path.isfile(c):
            return os.path.abspath(c)
    return None


def spawn_stub():
    """The rusage stub (bench/hakmem-bench-spawn.c), or None when not built."""
    return _helper('HAKMEM_BENCH_SPAWN', [STUB], STUB, os.X_OK)


def sampler():
    """The sampling profiler (bench/hakmem-bench-sampler.c), or None when not built."""
    return _helper('HAKMEM_BENCH_SAMPLER', [os.path.join('.libs', SAMPLER)], SAMPLER, os.R_OK)


def stub_or_warn(log):
    stub = spawn_stub()
    if not stub:
        log(f'hakmem-bench: {STUB} not found (build it with make): peak RSS and page '
            'faults will include those of the forked Python interpreter')
    return stub
