/* Run by tests/thp.sh: threads allocate small blocks; then, for the mapping
 * that holds each thread's first block (its SuperSlab), print whether the
 * kernel was asked not to back it with huge pages ("nh" among the VmFlags
 * of /proc/self/smaps), and how much of it is in huge pages. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8

static void *first[THREADS];
static pthread_barrier_t all_done;

static void *work(void *arg)
{
    void **slot = arg;
    for (int i = 0; i < 100; i++) {
        char *p = malloc(64);
        memset(p, 1, 64);
        if (i == 0)
            *slot = p;
    }
    pthread_barrier_wait(&all_done); /* keep every heap live until checked */
    pthread_barrier_wait(&all_done);
    return NULL;
}

int main(void)
{
    pthread_t th[THREADS];
    pthread_barrier_init(&all_done, NULL, THREADS + 1);
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, work, &first[t]);
    pthread_barrier_wait(&all_done);
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) {
        perror("/proc/self/smaps");
        return 2;
    }
    char line[512];
    uintptr_t lo = 0, hi = 0;
    int holds = 0, nh = 0, checked = 0;
    long huge_kb = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long a, b, kb;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) { /* a mapping's first line */
            lo = a;
            hi = b;
            holds = 0;
            for (int t = 0; t < THREADS; t++)
                holds |= (uintptr_t)first[t] >= lo && (uintptr_t)first[t] < hi;
        } else if (holds && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) {
            huge_kb += (long)kb;
        } else if (holds && strncmp(line, "VmFlags:", 8) == 0) {
            checked++;
            nh += strstr(line, " nh") != NULL;
        }
    }
    fclose(f);
    printf("mappings %d nh %d huge_kb %ld\n", checked, nh, huge_kb);
    pthread_barrier_wait(&all_done);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    return checked > 0 ? 0 : 3;
}
