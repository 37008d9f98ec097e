# NUMA tests (owned by the numa engineer).
#  - tests/numa_policy: the NUMA layer on hwloc synthetic/XML topologies (any machine).
#  - tests/vm/run-vm.sh: boots 2-node and 4-node kernels under qemu and runs
#    tests/numa_vm_placement inside them; skips (77) without qemu or a kernel.
check_PROGRAMS += tests/numa_policy tests/numa_vm_placement
TESTS += tests/numa_policy tests/vm/run-vm.sh
EXTRA_DIST += tests/vm/run-vm.sh \
	tests/numa_topos/sym-2x3.xml \
	tests/numa_topos/asym-3node.xml \
	tests/numa_topos/shared-cpuset-3node.xml

tests_numa_policy_SOURCES = tests/numa_policy.c tests/criterion_main.c
tests_numa_policy_CPPFLAGS = $(AM_CPPFLAGS) -DHK_TOPO_DIR='"$(abs_top_srcdir)/tests/numa_topos"'
tests_numa_policy_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) -pthread
tests_numa_policy_LDADD = src/libhakmem.la $(CRITERION_LIBS)
# White-box, as slab_check: -static links the archive, whose hidden hk_numa_
# functions the test calls.
tests_numa_policy_LDFLAGS = -static

tests_numa_vm_placement_SOURCES = tests/numa_vm_placement.c
tests_numa_vm_placement_CFLAGS = $(AM_CFLAGS) -pthread
tests_numa_vm_placement_LDADD = src/libhakmem.la
# A real ELF next to its sources, no libtool wrapper script: run-vm.sh copies
# it and the libraries ldd lists (libhakmem.so via its build-tree RUNPATH)
# into the initramfs.
tests_numa_vm_placement_LDFLAGS = -no-install -static
