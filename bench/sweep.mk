# Placeholder so automake runs; the owner of bench/sweep.mk replaces this file.
