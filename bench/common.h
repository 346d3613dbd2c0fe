/* bench/common.h: the parts every benchmark program shares.
 *
 * Each program differs only in the event loop it drives; everything that is not the loop's own
 * work lives here, as static inline code compiled into every program identically: the options,
 * the kernel objects (socketpairs, loopback TCP connections), the chain step a callback performs,
 * the measured region and the one-line report that bench/run.sh parses.
 *
 * Valid C11 and C++20, so the C programs (raw epoll, libev, libuv, libevent) and the C++ ones
 * (ev++.h, evw) include the same file.
 */
#ifndef EVW_BENCH_COMMON_H
#define EVW_BENCH_COMMON_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <valgrind/callgrind.h>

/* ------------------------------------------------------------------ options */

struct bench_opts {
    int n;          /* socketpairs (pipe chain) or TCP connections (urgent-data chain) */
    int active;     /* chains running at once */
    long events;    /* measured events */
    long warmup;    /* events of the unmeasured round before */
    int timer;      /* pipe chain only: re-arm a per-pair timeout on every event */
    double timeout; /* seconds; never expires during a run (see bench_timeout_for) */
};

static struct bench_opts bench_opt;

static inline void bench_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-n pairs] [-a active] [-e events] [-w warmup] [-t]\n"
            "  -t  re-arm a per-pair timeout timer on every event (pipe chain only)\n",
            prog);
    exit(2);
}

static inline void bench_parse(int argc, char **argv, int default_n, int default_active,
                        long default_events)
{
    bench_opt.n = default_n;
    bench_opt.active = default_active;
    bench_opt.events = default_events;
    bench_opt.warmup = -1;
    bench_opt.timer = 0;
    bench_opt.timeout = 100.0;
    int c;
    while ((c = getopt(argc, argv, "n:a:e:w:t")) != -1) {
        switch (c) {
        case 'n': bench_opt.n = atoi(optarg); break;
        case 'a': bench_opt.active = atoi(optarg); break;
        case 'e': bench_opt.events = atol(optarg); break;
        case 'w': bench_opt.warmup = atol(optarg); break;
        case 't': bench_opt.timer = 1; break;
        default: bench_usage(argv[0]);
        }
    }
    if (bench_opt.warmup < 0)
        bench_opt.warmup = bench_opt.events / 10;
    if (bench_opt.n < 2 || bench_opt.active < 1 || bench_opt.active > bench_opt.n ||
        bench_opt.events < bench_opt.active || bench_opt.warmup < bench_opt.active)
        bench_usage(argv[0]);
}

static inline void bench_die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Timeouts differ per pair (1 ms apart) so that re-arming really moves entries through each
 * loop's timer heap, as in libev's modified libevent benchmark, instead of always appending the
 * same deadline. They are long enough never to expire, even under valgrind. */
static inline double bench_timeout_for(int i)
{
    return bench_opt.timeout + 0.001 * (i % 1000);
}

static inline void bench_timer_fired(void)
{
    fprintf(stderr, "bench: a timeout timer expired: the run took longer than %.0f s\n",
            bench_opt.timeout);
    exit(3);
}

/* 1000 socketpairs are 2000 fds; the programs must not depend on the shell's soft limit. */
static inline void bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static inline void bench_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        bench_die("fcntl O_NONBLOCK");
}

/* ------------------------------------------------------------------ chains */

/* A chain step: the callback of element i consumes its token, then, while the budget of sends
 * remains, passes a token on to element (i + 1) % n. A round starts with `active` tokens and
 * `target - active` sends, so it ends after exactly `target` events with no token in flight. */
struct bench_chain {
    int n, active;
    int *recv_fd;      /* the fd each callback watches and reads from */
    int *send_fd;      /* the other end of element i: writing here wakes recv_fd[i] */
    int *next;         /* urgent-data chain: the element a token moves to from i */
    long fired;        /* events handled this round */
    long target;       /* events this round must handle */
    long sends_left;
    long spurious;     /* callbacks that found nothing to read (should stay 0) */
};

static struct bench_chain bench_ch;

static inline void bench_chain_alloc(int n, int active)
{
    bench_ch.n = n;
    bench_ch.active = active;
    bench_ch.recv_fd = (int *)calloc((size_t)n, sizeof(int));
    bench_ch.send_fd = (int *)calloc((size_t)n, sizeof(int));
    bench_ch.next = (int *)calloc((size_t)n, sizeof(int));
    if (!bench_ch.recv_fd || !bench_ch.send_fd || !bench_ch.next)
        bench_die("calloc");
}

/* Pipe chain: N AF_UNIX stream socketpairs, both ends nonblocking, as libevent's bench.c. */
static inline void bench_pipe_setup(void)
{
    bench_raise_nofile();
    bench_chain_alloc(bench_opt.n, bench_opt.active);
    for (int i = 0; i < bench_opt.n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
            bench_die("socketpair");
        bench_nonblock(sv[0]);
        bench_nonblock(sv[1]);
        bench_ch.recv_fd[i] = sv[0];
        bench_ch.send_fd[i] = sv[1];
    }
}

/* Urgent-data chain: N loopback TCP connections, all accepted up front. The connecting end
 * sends, the accepted end receives; TCP_NODELAY so that no one-byte segment waits for an ACK.
 *
 * Each chain moves around its own ring of N/A consecutive connections instead of all N: TCP keeps
 * one urgent mark per connection, so a second OOB byte that arrives before the first was read
 * turns the first into ordinary data and its chain dies. With one shared ring that happened in
 * about one native run in four on a loaded 2-CPU VM (a segment held back in the kernel lets the
 * chain behind catch up); with disjoint rings a late segment only delays its own chain. */
static inline void bench_oob_setup(void)
{
    bench_raise_nofile();
    bench_chain_alloc(bench_opt.n, bench_opt.active);
    for (int k = 0; k < bench_opt.active; k++) {
        int first = (int)((long)k * bench_opt.n / bench_opt.active);
        int end = (int)((long)(k + 1) * bench_opt.n / bench_opt.active);
        for (int i = first; i < end; i++)
            bench_ch.next[i] = i + 1 == end ? first : i + 1;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        bench_die("socket");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    socklen_t len = sizeof sa;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, bench_opt.n) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
        bench_die("listen on 127.0.0.1");
    for (int i = 0; i < bench_opt.n; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) < 0)
            bench_die("connect 127.0.0.1");
        int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0)
            bench_die("accept");
        int one = 1;
        if (setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
            bench_die("TCP_NODELAY");
        bench_nonblock(c);
        bench_nonblock(s);
        bench_ch.recv_fd[i] = s;
        bench_ch.send_fd[i] = c;
    }
    close(lfd);
}

static inline void bench_pipe_send(int i)
{
    if (write(bench_ch.send_fd[i], "e", 1) != 1)
        bench_die("write");
}

static inline void bench_oob_send(int i)
{
    if (send(bench_ch.send_fd[i], "x", 1, MSG_OOB) != 1)
        bench_die("send MSG_OOB");
}

/* Start a round: tokens into `active` elements spread evenly. Outside the measured region. */
static inline void bench_seed(long target, int oob)
{
    bench_ch.fired = 0;
    bench_ch.target = target;
    bench_ch.sends_left = target - bench_ch.active;
    for (int k = 0; k < bench_ch.active; k++) {
        int i = (int)((long)k * bench_ch.n / bench_ch.active);
        if (oob)
            bench_oob_send(i);
        else
            bench_pipe_send(i);
    }
}

/* The work of one pipe-chain callback. Returns 1 when the round is complete (the caller breaks
 * its loop then; no token is in flight, so nothing is left pending). */
static inline int bench_pipe_step(int i)
{
    char ch;
    if (read(bench_ch.recv_fd[i], &ch, 1) != 1) {
        bench_ch.spurious++;
        return 0;
    }
    if (bench_ch.sends_left > 0) {
        bench_ch.sends_left--;
        int next = i + 1 == bench_ch.n ? 0 : i + 1;
        if (write(bench_ch.send_fd[next], "e", 1) != 1)
            bench_die("write");
    }
    return ++bench_ch.fired == bench_ch.target;
}

/* The work of one urgent-data callback: take the OOB byte (which clears EPOLLPRI), pass one on. */
static inline int bench_oob_step(int i)
{
    char ch;
    if (recv(bench_ch.recv_fd[i], &ch, 1, MSG_OOB) != 1) {
        bench_ch.spurious++;
        return 0;
    }
    if (bench_ch.sends_left > 0) {
        bench_ch.sends_left--;
        if (send(bench_ch.send_fd[bench_ch.next[i]], "x", 1, MSG_OOB) != 1)
            bench_die("send MSG_OOB");
    }
    return ++bench_ch.fired == bench_ch.target;
}

/* ------------------------------------------------------------------ measuring */

static long long bench_wall_ns;

static inline long long bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef void (*bench_run_fn)(void);

/* The measured region: exactly one run of the loop. run.sh starts valgrind with
 * --instr-atstart=no, so only what executes between these client requests is counted (setup,
 * warm-up and teardown are not). A profiling run may instead pass --toggle-collect=bench_measured
 * to keep callgrind's call stack whole. noinline so that the symbol exists for that. */
__attribute__((noinline)) static void bench_measured(bench_run_fn run)
{
    CALLGRIND_START_INSTRUMENTATION;
    run();
    CALLGRIND_STOP_INSTRUMENTATION;
}

/* A lost event would leave a loop waiting forever: a round that outlives BENCH_ROUND_TIMEOUT
 * seconds (default 120, generous for callgrind on a loaded machine) ends the program instead. */
static inline void bench_watchdog(int sig)
{
    (void)sig;
    static const char msg[] =
        "bench: a round outlived BENCH_ROUND_TIMEOUT: an event was lost or the machine is slow\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(4);
}

static inline void bench_arm_watchdog(void)
{
    const char *env = getenv("BENCH_ROUND_TIMEOUT");
    int seconds = env ? atoi(env) : 120;
    signal(SIGALRM, bench_watchdog);
    alarm(seconds > 0 ? (unsigned)seconds : 120u);
}

/* A warm-up round (fds registered with the kernel, buffers grown, PLT slots bound), then the
 * measured round. Exits non-zero if a round handled a different number of events. */
static inline void bench_rounds(bench_run_fn run, int oob)
{
    bench_arm_watchdog();
    bench_seed(bench_opt.warmup, oob);
    run();
    if (bench_ch.fired != bench_opt.warmup) {
        fprintf(stderr, "bench: warm-up handled %ld of %ld events\n", bench_ch.fired,
                bench_opt.warmup);
        exit(1);
    }
    bench_arm_watchdog();
    bench_seed(bench_opt.events, oob);
    long long t0 = bench_now_ns();
    bench_measured(run);
    bench_wall_ns = bench_now_ns() - t0;
    alarm(0);
}

static inline int bench_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* Peak RSS of this program: VmHWM, not getrusage's ru_maxrss, which Linux carries over execve
 * and so reports at least the RSS of the shell that started the program. */
static inline long bench_peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* One line for run.sh; fields are key=value. */
static inline void bench_report(const char *impl, const char *workload)
{
    printf("impl=%s workload=%s%s n=%d active=%d events=%ld spurious=%ld wall_ns=%lld "
           "maxrss_kb=%ld fds=%d\n",
           impl, workload, bench_opt.timer ? "+timer" : "", bench_opt.n, bench_opt.active,
           bench_ch.fired, bench_ch.spurious, bench_wall_ns, bench_peak_rss_kb(),
           bench_count_fds());
    fflush(stdout);
}

#endif
