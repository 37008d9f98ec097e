/* The NUMA placement study inside a VM of tests/vm/run-vm.sh, which has no
 * Python and copies only the test binary and the libraries ldd lists.  So this
 * one binary is both the driver and the workload: bench/larson.c compiled with
 * its main renamed larson_main, linked with libhakmem (which exports malloc,
 * so no LD_PRELOAD is needed).
 *
 *   numa-study-driver --nodes N   run larson --threads 2N --pin-nodes --quick
 *                                 under each HAKMEM_NUMA policy, RUNS times,
 *                                 interleaved, with HAKMEM_STATS=json
 *   numa-study-driver ARGS        larson ARGS (what the driver executes)
 *
 * Each run is framed for `hakmem-bench numa --from-log`:
 *   NUMA-STUDY-RUN policy=P run=R order=K
 *   ...larson's result line, hakmem's JSON line...
 *   NUMA-STUDY-END policy=P run=R status=0|exit:N|signal:N */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 3

int larson_main(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--nodes") != 0)
        return larson_main(argc, argv);
    int nodes = atoi(argv[2]), failed = 0;
    if (nodes < 1)
        nodes = 1;
    char threads[16], last[16];
    snprintf(threads, sizeof threads, "%d", 2 * nodes);
    snprintf(last, sizeof last, "node:%d", nodes - 1);
    const char *policies[] = {"local", "interleave", "off", "node:0", last};
    int npol = nodes > 1 ? 5 : 4;
    printf("NUMA-STUDY workload=larson nodes=%d threads=%s runs=%d\n", nodes, threads, RUNS);
    for (int r = 0; r < RUNS; r++)
        for (int pos = 0; pos < npol; pos++) {
            const char *pol = policies[(r + pos) % npol];
            printf("NUMA-STUDY-RUN policy=%s run=%d order=%d\n", pol, r + 1, pos);
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                setenv("HAKMEM_NUMA", pol, 1);
                setenv("HAKMEM_STATS", "json", 1);
                execl("/proc/self/exe", "larson", "--threads", threads, "--pin-nodes", "--quick",
                      (char *)NULL);
                _exit(127);
            }
            int st = 0;
            if (pid < 0 || waitpid(pid, &st, 0) < 0) {
                perror("numa-study-driver");
                return 1;
            }
            if (WIFEXITED(st))
                printf("NUMA-STUDY-END policy=%s run=%d status=%s%d\n", pol, r + 1,
                       WEXITSTATUS(st) ? "exit:" : "", WEXITSTATUS(st));
            else
                printf("NUMA-STUDY-END policy=%s run=%d status=signal:%d\n", pol, r + 1,
                       WTERMSIG(st));
            fflush(stdout);
            failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        }
    return failed;
}
