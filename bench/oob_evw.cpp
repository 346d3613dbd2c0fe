// Urgent-data chain on evw: one evw::Priority watcher per connection.
#include <evw/evw.hpp>

#include <memory>
#include <vector>

#include "common.h"

namespace {

evw::Loop* loop;

void run() { loop->run(); }

} // namespace

int main(int argc, char** argv)
{
    bench_parse(argc, argv, 200, 10, 20000);
    bench_oob_setup();
    evw::Loop l;
    loop = &l;
    std::vector<std::unique_ptr<evw::Priority>> watchers;
    watchers.reserve(static_cast<size_t>(bench_opt.n));
    for (int i = 0; i < bench_opt.n; i++) {
        watchers.push_back(std::make_unique<evw::Priority>(
            l, bench_ch.recv_fd[i], [i](evw::Priority&, int) {
                if (bench_oob_step(i))
                    loop->stop();
            }));
        watchers.back()->start();
    }
    bench_rounds(run, 1);
    bench_report("evw", "oob");
    return 0;
}
