/* cache-thrash: Hoard's active false-sharing test (see cache.c). */
#include "cache.h"

int main(int argc, char **argv) { return cache_main(argc, argv, false); }
