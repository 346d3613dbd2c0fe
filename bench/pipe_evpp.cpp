// Pipe chain on libev's own C++ wrapper, ev++.h: ev::io and ev::timer with member callbacks.
#include <ev++.h>

#include <memory>

#include "common.h"

namespace {

struct Pair {
    int index = 0;
    ev::io io;
    ev::timer timer;

    explicit Pair(ev::loop_ref loop) : io(loop), timer(loop) {}

    void on_read(ev::io& w, int)
    {
        if (bench_opt.timer)
            timer.again();
        if (bench_pipe_step(index))
            w.loop.break_loop(ev::ONE);
    }

    void on_timeout(ev::timer&, int) { bench_timer_fired(); }
};

ev::dynamic_loop* loop;

void run() { loop->run(0); }

} // namespace

int main(int argc, char** argv)
{
    bench_parse(argc, argv, 1000, 100, 100000);
    bench_pipe_setup();
    ev::dynamic_loop l(ev::AUTO);
    loop = &l;
    std::unique_ptr<std::unique_ptr<Pair>[]> pairs(new std::unique_ptr<Pair>[bench_opt.n]);
    for (int i = 0; i < bench_opt.n; i++) {
        pairs[i] = std::make_unique<Pair>(l);
        Pair& p = *pairs[i];
        p.index = i;
        p.io.set<Pair, &Pair::on_read>(&p);
        p.io.start(bench_ch.recv_fd[i], ev::READ);
        if (bench_opt.timer) {
            p.timer.set<Pair, &Pair::on_timeout>(&p);
            p.timer.set(0., bench_timeout_for(i));
            p.timer.again();
        }
    }
    bench_rounds(run, 0);
    bench_report("evpp", "pipe");
    return 0;
}
