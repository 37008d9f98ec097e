"""hakmem-bench: sweeps allocator benchmarks over threads x allocators x repeats.

Standard library only.  The entry script (bench/hakmem-bench.in) fills PATHS
with the directories substituted at build time before calling cli.main().
"""

# Names the workload programs in bench/ are built under (engineer B1's set).
WORKLOADS = ('mixed', 'larson', 'xmalloc', 'ring', 'threadtest',
             'cache-scratch', 'cache-thrash', 'churn', 'fragment', 'large')

ALLOCATORS = ('hakmem', 'glibc', 'mimalloc', 'jemalloc', 'tcmalloc')

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
