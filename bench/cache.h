/* Hoard's false-sharing workloads, shared by cache-scratch and cache-thrash. */
#ifndef HAKMEM_BENCH_CACHE_H
#define HAKMEM_BENCH_CACHE_H

#include <stdbool.h>

/* Runs the workload; scratch selects passive false sharing (cache-scratch)
 * over active false sharing (cache-thrash). Returns the exit status. */
int cache_main(int argc, char **argv, bool scratch);

#endif
