/* The HTTP server of bench/http.sh on raw libev: one ev_io per connection, whose interest
 * switches between EV_READ and EV_WRITE (the reference evw is measured against). */
#include <ev.h>

#include "http_common.h"

struct conn {
    ev_io io; /* first: the callback gets the ev_io and casts it back */
    struct http_conn http;
};

static void on_client(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = (struct conn *)w;
    enum http_next next = http_serve(&c->http, w->fd, revents & EV_READ);
    if (http_done())
        ev_break(loop, EVBREAK_ALL);
    if (next == HTTP_CLOSE) {
        ev_io_stop(loop, w);
        close(w->fd);
        free(c);
        return;
    }
    int events = next == HTTP_WANT_WRITE ? EV_WRITE : EV_READ;
    if (events != (w->events & (EV_READ | EV_WRITE))) {
        ev_io_stop(loop, w);
        ev_io_set(w, w->fd, events);
        ev_io_start(loop, w);
    }
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return; /* EAGAIN, or a connection reset before it was accepted */
    struct conn *c = (struct conn *)calloc(1, sizeof *c);
    if (!c)
        http_die("calloc");
    ev_io_init(&c->io, on_client, fd, EV_READ);
    ev_io_start(loop, &c->io);
}

int main(int argc, char **argv)
{
    int listener = http_setup(argc, argv);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop)
        http_die("ev_loop_new");
    ev_io acceptor;
    ev_io_init(&acceptor, on_accept, listener, EV_READ);
    ev_io_start(loop, &acceptor);
    ev_run(loop, 0);
    http_report();
    return 0;
}
