/* The HTTP server of bench/http.sh on libuv: one uv_tcp_t per connection reading into the
 * shared connection buffer. Responses go out with uv_try_write (no request, no callback, as
 * servers that care about speed write libuv); only when the socket is full does the rest go
 * through uv_write, with reading stopped until its callback. */
#include <uv.h>

#include "http_common.h"

struct conn {
    uv_tcp_t tcp; /* first: callbacks get the handle and cast it back */
    uv_write_t req;
    struct http_conn http;
};

static uv_loop_t *loop;

static void on_close(uv_handle_t *h)
{
    free(h);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct http_conn *c = &((struct conn *)h)->http;
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(sizeof c->in - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_written(uv_write_t *req, int status);

/* Answers and writes until no complete request is left or the socket is full. */
static void serve(struct conn *c)
{
    struct http_conn *h = &c->http;
    while (http_parse(h) > 0) {
        uv_buf_t buf = uv_buf_init(h->out, (unsigned)h->out_len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
        if (n == (int)h->out_len) {
            h->out_len = 0;
            continue;
        }
        if (n < 0 && n != UV_EAGAIN) {
            uv_close((uv_handle_t *)&c->tcp, on_close);
            return;
        }
        h->out_sent = n > 0 ? (size_t)n : 0;
        uv_read_stop((uv_stream_t *)&c->tcp);
        buf = uv_buf_init(h->out + h->out_sent, (unsigned)(h->out_len - h->out_sent));
        uv_write(&c->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written);
        return;
    }
    if (http_overlong(h))
        uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_written(uv_write_t *req, int status)
{
    struct conn *c = (struct conn *)req->handle;
    if (status < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    c->http.out_len = c->http.out_sent = 0;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    serve(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct conn *c = (struct conn *)s;
    if (nread < 0) { /* UV_EOF: the client closed the connection; or an error */
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    c->http.in_len += (size_t)nread; /* 0: EAGAIN */
    serve(c);
    if (http_done())
        uv_stop(loop);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = (struct conn *)calloc(1, sizeof *c);
    if (!c)
        http_die("calloc");
    uv_tcp_init(loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    int listener = http_setup(argc, argv);
    loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    if (uv_tcp_open(&server, listener) < 0 ||
        uv_listen((uv_stream_t *)&server, HTTP_BACKLOG, on_connection) < 0)
        http_die("uv_listen");
    uv_run(loop, UV_RUN_DEFAULT);
    http_report();
    return 0;
}
