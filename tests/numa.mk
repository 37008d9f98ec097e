# Placeholder so automake runs; the owner of tests/numa.mk replaces this file.
