/* Pipe chain on libevent 2: one persistent EV_READ event per pair, added once; for +timer the
 * callback re-adds its event with the pair's timeout on every event, which is how libevent
 * re-arms a timeout (as in libev's modified version of libevent's bench.c). */
#include <event2/event.h>
#include <event2/event_struct.h>

#include "common.h"

static struct event_base *base;
static struct event *events;
static struct timeval *timeouts; /* per pair, computed once: libev and libuv keep theirs too */

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    int i = (int)(intptr_t)arg;
    if (what & EV_TIMEOUT)
        bench_timer_fired();
    if (bench_opt.timer)
        event_add(&events[i], &timeouts[i]);
    if (bench_pipe_step(i))
        event_base_loopbreak(base);
}

static void run(void)
{
    event_base_loop(base, 0);
}

int main(int argc, char **argv)
{
    bench_parse(argc, argv, 1000, 100, 100000);
    bench_pipe_setup();
    base = event_base_new();
    if (!base)
        bench_die("event_base_new");
    events = (struct event *)calloc((size_t)bench_opt.n, sizeof *events);
    timeouts = (struct timeval *)calloc((size_t)bench_opt.n, sizeof *timeouts);
    for (int i = 0; i < bench_opt.n; i++) {
        double t = bench_timeout_for(i);
        timeouts[i].tv_sec = (time_t)t;
        timeouts[i].tv_usec = (suseconds_t)((t - (double)timeouts[i].tv_sec) * 1e6);
        event_assign(&events[i], base, bench_ch.recv_fd[i], EV_READ | EV_PERSIST, on_read,
                     (void *)(intptr_t)i);
        event_add(&events[i], bench_opt.timer ? &timeouts[i] : NULL);
    }
    bench_rounds(run, 0);
    bench_report("libevent", "pipe");
    return 0;
}
