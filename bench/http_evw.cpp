// The HTTP server of bench/http.sh on evw: one evw::Io per connection whose events switch
// between Read and Write, the connections in an unordered_map by fd. Written as a user would,
// against the public API only, and linked against libevw.so (what pkg-config gives users).
#include <evw/evw.hpp>

#include <memory>
#include <unordered_map>

#include "http_common.h"

namespace {

struct Connection;
using Connections = std::unordered_map<int, std::unique_ptr<Connection>>;

struct Connection {
    evw::Io io;
    http_conn http{};

    Connection(evw::Loop& loop, int fd, Connections& all)
        : io(loop, fd, evw::Event::Read, [this, &all](evw::Io& w, int revents) { on_event(w, revents, all); })
    {
    }

    void on_event(evw::Io& w, int revents, Connections& all)
    {
        const http_next next = http_serve(&http, w.fd(), revents & evw::Event::Read);
        if (http_done())
            w.loop().stop(evw::Break::All);
        if (next == HTTP_CLOSE) {
            const int fd = w.fd();
            all.erase(fd); // destroys this connection and its running watcher: allowed
            ::close(fd);
            return;
        }
        const int events = next == HTTP_WANT_WRITE ? evw::Event::Write : evw::Event::Read;
        if (events != w.events())
            w.set_events(events);
    }
};

} // namespace

int main(int argc, char** argv)
{
    const int listener = http_setup(argc, argv);
    evw::Loop loop;
    Connections connections;
    evw::Io acceptor(loop, listener, evw::Event::Read, [&](evw::Io& w, int) {
        const int fd = ::accept4(w.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; // EAGAIN, or a connection reset before it was accepted
        auto& c = connections[fd] = std::make_unique<Connection>(loop, fd, connections);
        c->io.start();
    });
    acceptor.start();
    loop.run();
    http_report();
}
