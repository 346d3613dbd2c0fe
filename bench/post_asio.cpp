// Cross-thread posts on standalone asio (Debian libasio-dev, header-only): the producers call
// asio::post on an io_context whose run() the loop's thread drives; a work guard keeps run()
// going between posts. concurrency_hint 1: one thread runs the context, asio's best case.
#include <asio.hpp>

#include "post_common.h"

namespace {

asio::io_context* ctx;

void produce(int p, long i)
{
    asio::post(*ctx, [p, i] {
        if (post_step(p, i))
            ctx->stop();
    });
}

void run()
{
    ctx->restart();
    ctx->run();
}

} // namespace

int main(int argc, char** argv)
{
    post_parse(argc, argv);
    asio::io_context c(1);
    ctx = &c;
    auto guard = asio::make_work_guard(c);
    post_rounds(produce, run);
    post_report("asio");
    return 0;
}
