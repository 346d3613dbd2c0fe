/* bench/scale.h: watchers at scale, shared by scale_libev.c and scale_evw.cpp.
 *
 *   scale_X timers N   N timers (each in an allocation of its own) made, started, stopped and
 *                      destroyed; the timeouts spread so libev's heap is exercised
 *   scale_X io N       N socketpairs made first (not measured), then one read watcher per pair
 *                      made, started, stopped and destroyed
 *
 * The measured region is everything from the first watcher made to the last destroyed; the
 * report line says events=N (watchers) for bench/run.sh. Valid C11 and C++20.
 */
#ifndef EVW_BENCH_SCALE_H
#define EVW_BENCH_SCALE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <valgrind/callgrind.h>

static int scale_n;
static int scale_io;    /* 0: timers, 1: io */
static int *scale_fds;  /* io: the read end of each pair */
static long long scale_wall_ns;

static inline void scale_parse(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "timers") != 0 && strcmp(argv[1], "io") != 0) ||
        (scale_n = atoi(argv[2])) < 1) {
        fprintf(stderr, "usage: %s timers|io N\n", argv[0]);
        exit(2);
    }
    scale_io = strcmp(argv[1], "io") == 0;
    if (!scale_io)
        return;
    /* 2N descriptors; without CAP_SYS_RESOURCE the hard limit caps N (said on stderr). */
    struct rlimit rl = {(rlim_t)scale_n * 2 + 64, (rlim_t)scale_n * 2 + 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((rlim_t)scale_n * 2 + 64 > rl.rlim_max) {
            /* Rounded down to a hundred: under valgrind, which keeps a few
             * descriptors of its own, the limit is lower but N the same. */
            scale_n = (int)((rl.rlim_max - 64) / 2) / 100 * 100;
            fprintf(stderr, "scale: RLIMIT_NOFILE hard limit %lu: %d socketpairs\n",
                    (unsigned long)rl.rlim_max, scale_n);
        }
    }
    scale_fds = (int *)malloc(sizeof(int) * 2 * (size_t)scale_n);
    for (int i = 0; i < scale_n; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, &scale_fds[2 * i]) != 0) {
            perror("socketpair");
            exit(1);
        }
}

/* The i-th timer's timeout: spread over 1..1000 s in a scrambled order, never expiring. */
static inline double scale_after(int i)
{
    return 1.0 + (double)((unsigned)i * 2654435761u % 1000000u) / 1000.0;
}

static inline long long scale_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef void (*scale_fn)(void);

__attribute__((noinline)) static void scale_measured(scale_fn fn)
{
    long long t0 = scale_now_ns();
    CALLGRIND_START_INSTRUMENTATION;
    fn();
    CALLGRIND_STOP_INSTRUMENTATION;
    scale_wall_ns = scale_now_ns() - t0;
}

static inline long scale_peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static inline void scale_report(const char *impl)
{
    printf("impl=%s workload=%s events=%d spurious=0 wall_ns=%lld maxrss_kb=%ld fds=%d\n", impl,
           scale_io ? "io" : "timers", scale_n, scale_wall_ns, scale_peak_rss_kb(),
           scale_io ? 2 * scale_n : 0);
    fflush(stdout);
}

#endif
