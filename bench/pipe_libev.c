/* Pipe chain on raw libev (the reference): one ev_io per pair, and for +timer one ev_timer per
 * pair re-armed with ev_timer_again on every event. */
#include <ev.h>

#include "common.h"

static struct ev_loop *loop;
static ev_io *ios;
static ev_timer *timers;

static void on_read(struct ev_loop *l, ev_io *w, int revents)
{
    (void)revents;
    int i = (int)(w - ios);
    if (bench_opt.timer)
        ev_timer_again(l, &timers[i]);
    if (bench_pipe_step(i))
        ev_break(l, EVBREAK_ONE);
}

static void on_timeout(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l, (void)w, (void)revents;
    bench_timer_fired();
}

static void run(void)
{
    ev_run(loop, 0);
}

int main(int argc, char **argv)
{
    bench_parse(argc, argv, 1000, 100, 100000);
    bench_pipe_setup();
    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop)
        bench_die("ev_loop_new");
    ios = (ev_io *)calloc((size_t)bench_opt.n, sizeof *ios);
    timers = (ev_timer *)calloc((size_t)bench_opt.n, sizeof *timers);
    for (int i = 0; i < bench_opt.n; i++) {
        ev_io_init(&ios[i], on_read, bench_ch.recv_fd[i], EV_READ);
        ev_io_start(loop, &ios[i]);
        if (bench_opt.timer) {
            ev_timer_init(&timers[i], on_timeout, 0., bench_timeout_for(i));
            ev_timer_again(loop, &timers[i]);
        }
    }
    bench_rounds(run, 0);
    bench_report("libev", "pipe");
    return 0;
}
