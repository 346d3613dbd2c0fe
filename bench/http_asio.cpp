// The HTTP server of bench/http.sh on standalone asio (Debian libasio-dev, header-only), as its
// examples write a server: a session per connection kept alive by shared_ptr in its handlers,
// async_read_some into the connection buffer, async_write of the responses, then read again.
// io_context with concurrency hint 1: one thread runs it, asio's best case.
#include <asio.hpp>

#include <memory>

#include "http_common.h"

namespace {

asio::io_context* ctx;

class Session : public std::enable_shared_from_this<Session> {
public:
    explicit Session(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}

    void read()
    {
        socket_.async_read_some(asio::buffer(http_.in + http_.in_len, sizeof http_.in - http_.in_len),
                                [self = shared_from_this()](std::error_code ec, std::size_t n) {
                                    if (ec)
                                        return; // the client closed the connection, or an error
                                    self->http_.in_len += n;
                                    self->serve();
                                });
    }

private:
    // Answers the complete requests, writes them, and only then reads again.
    void serve()
    {
        if (http_parse(&http_) == 0) {
            if (!http_overlong(&http_))
                read();
            return;
        }
        if (http_done())
            ctx->stop();
        asio::async_write(socket_, asio::buffer(http_.out, http_.out_len),
                          [self = shared_from_this()](std::error_code ec, std::size_t) {
                              if (ec)
                                  return;
                              self->http_.out_len = 0;
                              self->serve();
                          });
    }

    asio::ip::tcp::socket socket_;
    http_conn http_{};
};

void accept(asio::ip::tcp::acceptor& acceptor)
{
    acceptor.async_accept([&acceptor](std::error_code ec, asio::ip::tcp::socket socket) {
        if (!ec)
            std::make_shared<Session>(std::move(socket))->read();
        accept(acceptor);
    });
}

} // namespace

int main(int argc, char** argv)
{
    const int listener = http_setup(argc, argv);
    asio::io_context c(1);
    ctx = &c;
    asio::ip::tcp::acceptor acceptor(c, asio::ip::tcp::v4(), listener);
    accept(acceptor);
    c.run();
    http_report();
    return 0;
}
