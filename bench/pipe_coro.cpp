// Pipe chain with coroutines: one evw::Task per pair, awaiting its Io through
// evw::Watch (co_await io.next()), the way the coroutine layer is meant to be
// used. Compared with pipe_evw (callbacks) on the same workload.
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>

#include <memory>
#include <vector>

#include "common.h"

namespace {

evw::Loop* loop;

evw::Task<void> pair_task(evw::Loop& l, int index) {
    evw::Watch<evw::Io> io(l, bench_ch.recv_fd[index], evw::Event::Read);
    for (;;) {
        co_await io.next();
        if (bench_pipe_step(index))
            loop->stop();
    }
}

void run() { loop->run(); }

} // namespace

int main(int argc, char** argv)
{
    bench_parse(argc, argv, 1000, 100, 100000);
    bench_pipe_setup();
    evw::Loop l;
    loop = &l;
    for (int i = 0; i < bench_opt.n; i++)
        evw::spawn(l, pair_task(l, i));
    l.run(evw::Run::NoWait);  // start the tasks: each is now waiting on its fd
    bench_rounds(run, 0);
    bench_report("evw-coro", "pipe");
    return 0;
}
