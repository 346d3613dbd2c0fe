/* Urgent-data chain on raw epoll with EPOLLPRI: the floor. */
#include <sys/epoll.h>

#include "common.h"

enum { MAX_EVENTS = 64 };

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
            done |= bench_oob_step((int)evs[k].data.u32);
        if (done)
            return;
    }
}

int main(int argc, char **argv)
{
    bench_parse(argc, argv, 200, 10, 20000);
    bench_oob_setup();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        bench_die("epoll_create1");
    for (int i = 0; i < bench_opt.n; i++) {
        struct epoll_event ev = {.events = EPOLLPRI, .data = {.u32 = (unsigned)i}};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, bench_ch.recv_fd[i], &ev) < 0)
            bench_die("epoll_ctl");
    }
    bench_rounds(run, 1);
    bench_report("epoll", "oob");
    return 0;
}
