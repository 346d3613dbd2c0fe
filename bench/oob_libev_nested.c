/* Urgent-data chain on raw libev, the usual workaround for ev_io's lack of EPOLLPRI: an inner
 * epoll instance holds the EPOLLPRI registrations, libev watches the inner epoll fd (readable
 * while any registration is ready) with one ev_io, and its callback drains the inner instance
 * without blocking and calls the handlers directly. */
#include <ev.h>
#include <sys/epoll.h>

#include "common.h"

enum { MAX_EVENTS = 64 };

static struct ev_loop *loop;
static ev_io inner_watcher;
static int inner;

static void on_inner_ready(struct ev_loop *l, ev_io *w, int revents)
{
    (void)w, (void)revents;
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(inner, evs, MAX_EVENTS, 0);
    for (int k = 0; k < n; k++)
        if (bench_oob_step((int)evs[k].data.u32))
            ev_break(l, EVBREAK_ONE);
}

static void run(void)
{
    ev_run(loop, 0);
}

int main(int argc, char **argv)
{
    bench_parse(argc, argv, 200, 10, 20000);
    bench_oob_setup();
    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop)
        bench_die("ev_loop_new");
    inner = epoll_create1(EPOLL_CLOEXEC);
    if (inner < 0)
        bench_die("epoll_create1");
    for (int i = 0; i < bench_opt.n; i++) {
        struct epoll_event ev = {.events = EPOLLPRI, .data = {.u32 = (unsigned)i}};
        if (epoll_ctl(inner, EPOLL_CTL_ADD, bench_ch.recv_fd[i], &ev) < 0)
            bench_die("epoll_ctl");
    }
    ev_io_init(&inner_watcher, on_inner_ready, inner, EV_READ);
    ev_io_start(loop, &inner_watcher);
    bench_rounds(run, 1);
    bench_report("libev-nested", "oob");
    return 0;
}
