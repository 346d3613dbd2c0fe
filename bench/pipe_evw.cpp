// Pipe chain on evw: one evw::Io per pair, and for +timer one evw::Timer per pair re-armed with
// again() on every event. Written as a user would, against the public API only.
#include <evw/evw.hpp>

#include <memory>
#include <vector>

#include "common.h"

namespace {

evw::Loop* loop;

struct Pair {
    int index;
    evw::Io io;
    evw::Timer timer;

    Pair(evw::Loop& l, int i)
        : index(i),
          io(l, bench_ch.recv_fd[i], evw::Event::Read, [this](evw::Io&, int) { on_read(); }),
          timer(l, bench_timeout_for(i), bench_timeout_for(i),
                [](evw::Timer&, int) { bench_timer_fired(); })
    {
    }

    void on_read()
    {
        if (bench_opt.timer)
            timer.again();
        if (bench_pipe_step(index))
            loop->stop();
    }
};

void run() { loop->run(); }

} // namespace

int main(int argc, char** argv)
{
    bench_parse(argc, argv, 1000, 100, 100000);
    bench_pipe_setup();
    evw::Loop l;
    loop = &l;
    std::vector<std::unique_ptr<Pair>> pairs;
    pairs.reserve(static_cast<size_t>(bench_opt.n));
    for (int i = 0; i < bench_opt.n; i++) {
        pairs.push_back(std::make_unique<Pair>(l, i));
        pairs.back()->io.start();
        if (bench_opt.timer)
            pairs.back()->timer.again();
    }
    bench_rounds(run, 0);
    bench_report("evw", "pipe");
    return 0;
}
