"""hakmem-bench: sweeps allocator benchmarks over threads x allocators x repeats.

Standard library only.  The entry script (bench/hakmem-bench.in) fills PATHS
with the directories substituted at build time before calling cli.main().
"""

# Names the workload programs in bench/ are built under (engineer B1's set).
WORKLOADS = ('mixed', 'larson', 'xmalloc', 'ring', 'threadtest',
             'cache-scratch', 'cache-thrash', 'churn', 'fragment', 'large')

ALLOCATORS = ('hakmem', 'glibc', 'mimalloc', 'jemalloc', 'tcmalloc')

# Workloads that run more threads than asked below a count: xmalloc runs a
# producer and a consumer at least (real_threads= on its result line).  The
# sweep leaves out their points below it rather than label a 2-thread run 1.
MIN_THREADS = {'xmalloc': 2}

# Build-time paths (see bench/hakmem-bench.in); empty when unknown.
PATHS = {
    'pkglibexecdir': '',   # installed workload programs
    'libdir': '',          # installed libhakmem
    'bindir': '',          # where the installed script lives
    'srcdir': '',          # top source dir of the build this script came from
    'builddir': '',        # top build dir of that build
    'version': '',         # PACKAGE_VERSION
}


class UsageError(Exception):
    """A mistake in the command line or the environment: exit status 2."""
