/* Pipe chain on raw epoll: the floor. Level-triggered EPOLLIN, one epoll_wait per iteration.
 * No +timer variant: a floor with timers would need its own timer heap, which would measure that
 * heap rather than a lower bound (see README.md). */
#include <sys/epoll.h>

#include "common.h"

enum { MAX_EVENTS = 256 };

static int epfd;

static void run(void)
{
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            bench_die("epoll_wait");
        }
        int done = 0;
        for (int k = 0; k < n; k++)
            done |= bench_pipe_step((int)evs[k].data.u32);
        if (done)
            return;
    }
}

int main(int argc, char **argv)
{
    bench_parse(argc, argv, 1000, 100, 100000);
    if (bench_opt.timer) {
        fprintf(stderr, "pipe_epoll: no +timer variant (see bench/README.md)\n");
        return 2;
    }
    bench_pipe_setup();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        bench_die("epoll_create1");
    for (int i = 0; i < bench_opt.n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data = {.u32 = (unsigned)i}};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, bench_ch.recv_fd[i], &ev) < 0)
            bench_die("epoll_ctl");
    }
    bench_rounds(run, 0);
    bench_report("epoll", "pipe");
    return 0;
}
