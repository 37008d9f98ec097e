# Placeholder so automake runs; the owner of tests/local.mk replaces this file.
