/* Run by tests/secure_env.sh as a set-user-ID program and as a plain one,
 * with HAKMEM_ variables set: prints whether the kernel marked it secure
 * (AT_SECURE) and allocates, so that hakmem's exit statistics appear when
 * HAKMEM_STATS was taken. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

int main(void)
{
    char *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = malloc(100 + i);
        memset(p[i], i, 100 + i);
    }
    for (int i = 0; i < 100; i++)
        free(p[i]);
    printf("at_secure=%lu\n", getauxval(AT_SECURE));
    return 0;
}
