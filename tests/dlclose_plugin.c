/* A plugin that depends on libhakmem (tests/dlclose.c loads and unloads it)
 * and uses its hak_ functions. */
#include <stddef.h>
#include "hakmem.h"

void *plugin_alloc(size_t n)
{
    return hak_malloc(n);
}

void plugin_free(void *p)
{
    hak_free(p);
}
