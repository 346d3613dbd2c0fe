// Cross-thread posts on evw: the producers post through an evw::LoopHandle; the loop's thread
// runs the callables (evw::Loop::run). A far Timer stands for the program's other work and keeps
// run() going between posts. Written as a user would, against the public API only.
#include <evw/evw.hpp>

#include "post_common.h"

namespace {

evw::Loop* loop;
evw::LoopHandle handle;

void produce(int p, long i)
{
    handle.post([p, i] {
        if (post_step(p, i))
            loop->stop();
    });
}

void run() { loop->run(); }

} // namespace

int main(int argc, char** argv)
{
    post_parse(argc, argv);
    evw::Loop l;
    loop = &l;
    handle = l.handle();
    evw::Timer keep(l, 1e6, 0.0, [](evw::Timer&, int) {});
    keep.start();
    post_rounds(produce, run);
    post_report("evw");
    return 0;
}
