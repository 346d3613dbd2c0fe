/* Pipe chain on libuv: one uv_poll_t (UV_READABLE) per pair, and for +timer one uv_timer_t per
 * pair re-armed with uv_timer_again on every event. libuv timers have millisecond resolution. */
#include <uv.h>

#include "common.h"

static uv_loop_t loop;
static uv_poll_t *polls;
static uv_timer_t *timers;

static void on_read(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    int i = (int)(h - polls);
    if (bench_opt.timer)
        uv_timer_again(&timers[i]);
    if (bench_pipe_step(i))
        uv_stop(h->loop);
}

static void on_timeout(uv_timer_t *t)
{
    (void)t;
    bench_timer_fired();
}

static void run(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
    bench_parse(argc, argv, 1000, 100, 100000);
    bench_pipe_setup();
    if (uv_loop_init(&loop) != 0)
        bench_die("uv_loop_init");
    polls = (uv_poll_t *)calloc((size_t)bench_opt.n, sizeof *polls);
    timers = (uv_timer_t *)calloc((size_t)bench_opt.n, sizeof *timers);
    for (int i = 0; i < bench_opt.n; i++) {
        if (uv_poll_init(&loop, &polls[i], bench_ch.recv_fd[i]) != 0 ||
            uv_poll_start(&polls[i], UV_READABLE, on_read) != 0)
            bench_die("uv_poll_start");
        if (bench_opt.timer) {
            uint64_t ms = (uint64_t)(bench_timeout_for(i) * 1000.0);
            uv_timer_init(&loop, &timers[i]);
            uv_timer_start(&timers[i], on_timeout, ms, ms);
        }
    }
    bench_rounds(run, 0);
    bench_report("libuv", "pipe");
    return 0;
}
