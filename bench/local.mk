# Placeholder so automake runs; the owner of bench/local.mk replaces this file.
