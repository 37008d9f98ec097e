"""Helpers of the hakmem-bench tests: paths, running the script, a tiny checker.

The tests run from the top build directory (automake's harness) with $srcdir
set; bench/hakmem-bench is the generated script of that build."""

import os
import shutil
import subprocess
import sys
import tempfile

SRCDIR = os.environ.get('srcdir', '.')
HERE = os.path.join(SRCDIR, 'tests', 'sweep')
SCRIPT = os.path.abspath(os.environ.get('HAKMEM_BENCH_SCRIPT', os.path.join('bench', 'hakmem-bench')))
FAKE = os.path.abspath(os.path.join(HERE, 'fake-workload'))
FIXTURE = os.path.join(HERE, 'fixture')


def package():
    """The hakmem_bench modules of this source tree."""
    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.join(SRCDIR, 'bench'))
    import hakmem_bench
    return hakmem_bench


def require_script():
    if not os.access(SCRIPT, os.X_OK):
        print(f'{SCRIPT} is not built (run make first)', file=sys.stderr)
        sys.exit(99)   # hard error for the automake harness


def run(args, env=None, timeout=300):
    """Run hakmem-bench with args; returns CompletedProcess with text output."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([SCRIPT] + list(args), capture_output=True, text=True,
                          env=full, timeout=timeout)


def sanitizer_build():
    """A sanitizer build (config.h: HK_NO_OVERRIDE): libhakmem.so exports no
    malloc, and every program of the build carries the sanitizer's runtime."""
    try:
        with open('config.h') as f:
            return any(line.startswith('#define HK_NO_OVERRIDE 1') for line in f)
    except OSError:
        return False


def tmpdir():
    d = tempfile.mkdtemp(prefix='hakmem-bench-test.')
    return d


def fake_bench_dir(parent, names):
    """A directory of workload names symlinked to the fake workload."""
    d = os.path.join(parent, 'bench')
    os.makedirs(d, exist_ok=True)
    for n in names:
        os.symlink(FAKE, os.path.join(d, n))
    return d


def libc_path():
    """A real shared library that is harmless to preload: this process's libc."""
    with open('/proc/self/maps') as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith('libc.so'):
                return path
    raise RuntimeError('libc not found in /proc/self/maps')


class Checker:
    """Prints one line per check and a closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = self.failed = 0

    def check(self, cond, what, detail=''):
        if cond:
            self.passed += 1
            print(f'ok - {what}')
        else:
            self.failed += 1
            print(f'FAIL - {what}' + (f'\n    {detail}' if detail else ''))
        return cond

    def equal(self, got, want, what):
        return self.check(got == want, what, f'got {got!r}, want {want!r}')

    def close(self, got, want, what, rel=1e-9):
        ok = got is not None and want is not None and abs(got - want) <= rel * max(abs(want), 1e-300)
        return self.check(ok, what, f'got {got!r}, want {want!r}')

    def finish(self, cleanup=None):
        if cleanup and not self.failed:
            shutil.rmtree(cleanup, ignore_errors=True)
        elif cleanup:
            print(f'(kept {cleanup} for inspection)')
        print(f'{self.passed} passed, {self.failed} failed')
        sys.exit(1 if self.failed else 0)
