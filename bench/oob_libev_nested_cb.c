/* Urgent-data chain on raw libev, the nested-epoll workaround as a program with more than one
 * kind of handler writes it: each EPOLLPRI registration carries a pointer to its handler (a
 * callback and its argument) in epoll's data, and the drain calls it through the pointer.
 * oob_libev_nested.c calls the one handler of this benchmark directly instead; the difference
 * between the two is the price of a per-registration callback. No protection against stale
 * registrations (a file closed under a watcher): the pointer must outlive the registration. */
#include <ev.h>
#include <sys/epoll.h>

#include "common.h"

enum { MAX_EVENTS = 64 };

struct handler {
    void (*cb)(struct handler *h, unsigned events);
    int index;
};

static struct ev_loop *loop;
static ev_io inner_watcher;
static int inner;
static struct handler *handlers;

static void on_urgent(struct handler *h, unsigned events)
{
    (void)events;
    if (bench_oob_step(h->index))
        ev_break(loop, EVBREAK_ONE);
}

static void on_inner_ready(struct ev_loop *l, ev_io *w, int revents)
{
    (void)l, (void)w, (void)revents;
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(inner, evs, MAX_EVENTS, 0);
    for (int k = 0; k < n; k++) {
        struct handler *h = evs[k].data.ptr;
        h->cb(h, evs[k].events);
    }
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
    handlers = calloc((size_t)bench_opt.n, sizeof *handlers);
    if (!handlers)
        bench_die("calloc");
    for (int i = 0; i < bench_opt.n; i++) {
        handlers[i].cb = on_urgent;
        handlers[i].index = i;
        struct epoll_event ev = {.events = EPOLLPRI, .data = {.ptr = &handlers[i]}};
        if (epoll_ctl(inner, EPOLL_CTL_ADD, bench_ch.recv_fd[i], &ev) < 0)
            bench_die("epoll_ctl");
    }
    ev_io_init(&inner_watcher, on_inner_ready, inner, EV_READ);
    ev_io_start(loop, &inner_watcher);
    bench_rounds(run, 1);
    bench_report("libev-nested-cb", "oob");
    return 0;
}
