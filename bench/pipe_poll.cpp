// Pipe chain on evw::Poll (Event::Read through the loop's side-queue instead of libev's ev_io):
// level-triggered, or edge-triggered with -E (each callback then reads until EAGAIN, the one
// extra read per event that edge-triggering costs). Public API only, as a user would write it.
#include <evw/evw.hpp>

#include <cstring>
#include <memory>
#include <vector>

#include "common.h"

namespace {

evw::Loop* loop;
bool edge = false;

struct Pair {
    int index;
    evw::Poll poll;

    Pair(evw::Loop& l, int i)
        : index(i),
          poll(l, bench_ch.recv_fd[i], evw::Event::Read, edge ? evw::PollMode::Edge : evw::PollMode::Level,
               [this](evw::Poll&, int) { on_read(); })
    {
    }

    void on_read()
    {
        if (!edge) {
            if (bench_pipe_step(index))
                loop->stop();
            return;
        }
        for (;;) {
            const long spurious = bench_ch.spurious;
            if (bench_pipe_step(index)) {
                loop->stop();
                return;
            }
            if (bench_ch.spurious != spurious) {  // EAGAIN: drained, as edge-triggering requires
                bench_ch.spurious = spurious;
                return;
            }
        }
    }
};

void run() { loop->run(); }

} // namespace

int main(int argc, char** argv)
{
    // -E (edge-triggered) is this program's own option: take it out before bench_parse.
    int kept = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && std::strcmp(argv[i], "-E") == 0)
            edge = true;
        else
            argv[kept++] = argv[i];
    }
    bench_parse(kept, argv, 1000, 100, 100000);
    bench_pipe_setup();
    evw::Loop l;
    loop = &l;
    std::vector<std::unique_ptr<Pair>> pairs;
    pairs.reserve(static_cast<size_t>(bench_opt.n));
    for (int i = 0; i < bench_opt.n; i++) {
        pairs.push_back(std::make_unique<Pair>(l, i));
        pairs.back()->poll.start();
    }
    bench_rounds(run, 0);
    bench_report(edge ? "evw Poll (edge)" : "evw Poll", "pipe");
    return 0;
}
