/* hakmem-bench-spawn FD [NAME=VALUE...] -- PROG [ARGS...]: run PROG with the
 * NAME=VALUE variables added to its environment and write its rusage to FD.
 *
 * Why not wait4 from the Python driver directly: Linux carries the peak RSS of
 * the image a process had before exec into its ru_maxrss, so every child
 * forked from the Python interpreter would report at least the interpreter's
 * ~14 MiB.  This stub is small; the workload it forks inherits only the
 * stub's ~1 MiB as a floor.  The variables (LD_PRELOAD, HAKMEM_STATS) are set
 * in the forked child only, so the allocator under test never runs in the stub.
 *
 * FD gets one line:
 *   rusage wall_s=S utime_s=S stime_s=S maxrss_kb=N minflt=N majflt=N nvcsw=N nivcsw=N
 * The stub then ends the way PROG ended (same exit status, or same signal),
 * so the driver sees PROG's status.  Exec failure: message on stderr, exit 127. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    int prog = 2;
    while (prog < argc && strcmp(argv[prog], "--") != 0)
        prog++;
    if (argc < 3 || prog + 1 >= argc) {
        fprintf(stderr, "usage: %s FD [NAME=VALUE...] -- PROG [ARGS...]\n", argv[0]);
        return 2;
    }
    char *end;
    long fd = strtol(argv[1], &end, 10);
    if (*end != '\0' || fd < 0 || fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0) {
        fprintf(stderr, "%s: bad descriptor '%s'\n", argv[0], argv[1]);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("hakmem-bench-spawn: fork");
        return 127;
    }
    if (pid == 0) {
        for (int i = 2; i < prog; i++)
            if (strchr(argv[i], '=') == NULL || putenv(argv[i]) != 0) {
                fprintf(stderr, "hakmem-bench-spawn: bad variable '%s'\n", argv[i]);
                _exit(127);
            }
        execvp(argv[prog + 1], argv + prog + 1);
        fprintf(stderr, "hakmem-bench-spawn: %s: %s\n", argv[prog + 1], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("hakmem-bench-spawn: wait4");
            return 127;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    dprintf((int)fd,
            "rusage wall_s=%.6f utime_s=%.6f stime_s=%.6f maxrss_kb=%ld minflt=%ld "
            "majflt=%ld nvcsw=%ld nivcsw=%ld\n",
            wall, seconds(&ru.ru_utime), seconds(&ru.ru_stime), ru.ru_maxrss, ru.ru_minflt,
            ru.ru_majflt, ru.ru_nvcsw, ru.ru_nivcsw);
    close((int)fd);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    /* Die of the same signal, without a core file of our own. */
    int sig = WTERMSIG(status);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    return 128 + sig;
}
