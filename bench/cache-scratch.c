/* cache-scratch: Hoard's passive false-sharing test (see cache.c). */
#include "cache.h"

int main(int argc, char **argv) { return cache_main(argc, argv, true); }
