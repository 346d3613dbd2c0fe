/* Watchers at scale on raw libev (the reference): see scale.h. Each watcher is malloc'ed, as a
 * program that keeps one per connection or request does. */
#include <ev.h>

#include "scale.h"

static struct ev_loop *loop;

static void on_event(struct ev_loop *l, ev_watcher *w, int revents)
{
    (void)l, (void)w, (void)revents;
}

static void timers(void)
{
    ev_timer **t = (ev_timer **)malloc(sizeof *t * (size_t)scale_n);
    for (int i = 0; i < scale_n; i++) {
        t[i] = (ev_timer *)malloc(sizeof **t);
        ev_timer_init(t[i], (void (*)(struct ev_loop *, ev_timer *, int))on_event, scale_after(i), 0.);
        ev_timer_start(loop, t[i]);
    }
    for (int i = 0; i < scale_n; i++)
        ev_timer_stop(loop, t[i]);
    for (int i = 0; i < scale_n; i++)
        free(t[i]);
    free(t);
}

static void ios(void)
{
    ev_io **w = (ev_io **)malloc(sizeof *w * (size_t)scale_n);
    for (int i = 0; i < scale_n; i++) {
        w[i] = (ev_io *)malloc(sizeof **w);
        ev_io_init(w[i], (void (*)(struct ev_loop *, ev_io *, int))on_event, scale_fds[2 * i], EV_READ);
        ev_io_start(loop, w[i]);
    }
    ev_run(loop, EVRUN_NOWAIT); /* libev hands the fds to epoll here */
    for (int i = 0; i < scale_n; i++)
        ev_io_stop(loop, w[i]);
    ev_run(loop, EVRUN_NOWAIT); /* ...and takes them out here */
    for (int i = 0; i < scale_n; i++)
        free(w[i]);
    free(w);
}

int main(int argc, char **argv)
{
    scale_parse(argc, argv);
    loop = ev_loop_new(EVFLAG_AUTO);
    scale_measured(scale_io ? ios : timers);
    scale_report("libev");
    ev_loop_destroy(loop);
    return 0;
}
