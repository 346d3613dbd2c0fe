/* Urgent-data chain on libuv: one uv_poll_t per connection with UV_PRIORITIZED (EPOLLPRI). */
#include <uv.h>

#include "common.h"

static uv_loop_t loop;
static uv_poll_t *polls;

static void on_pri(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    if (bench_oob_step((int)(h - polls)))
        uv_stop(h->loop);
}

static void run(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
    bench_parse(argc, argv, 200, 10, 20000);
    bench_oob_setup();
    if (uv_loop_init(&loop) != 0)
        bench_die("uv_loop_init");
    polls = (uv_poll_t *)calloc((size_t)bench_opt.n, sizeof *polls);
    for (int i = 0; i < bench_opt.n; i++)
        if (uv_poll_init(&loop, &polls[i], bench_ch.recv_fd[i]) != 0 ||
            uv_poll_start(&polls[i], UV_PRIORITIZED, on_pri) != 0)
            bench_die("uv_poll_start");
    bench_rounds(run, 1);
    bench_report("libuv", "oob");
    return 0;
}
