/* Cross-thread posts on libuv, the way libuv's documentation has it: a mutex-protected queue of
 * callbacks and uv_async_send() to wake the loop (sends coalesce: the async callback drains the
 * whole queue). Two arrays swapped under the lock, so a steady stream allocates nothing. */
#include <uv.h>

#include "post_common.h"

struct item {
    void (*fn)(int, long);
    int producer;
    long index;
};

static uv_loop_t loop;
static uv_async_t async;
static pthread_mutex_t queue_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct item *incoming, *batch;
static size_t incoming_n, incoming_cap, batch_cap;

static void consume(int p, long i)
{
    if (post_step(p, i))
        uv_stop(&loop);
}

static void produce(int p, long i)
{
    pthread_mutex_lock(&queue_mutex);
    if (incoming_n == incoming_cap) {
        incoming_cap = incoming_cap ? 2 * incoming_cap : 64;
        incoming = (struct item *)realloc(incoming, incoming_cap * sizeof *incoming);
        if (!incoming)
            bench_die("realloc");
    }
    incoming[incoming_n++] = (struct item){consume, p, i};
    pthread_mutex_unlock(&queue_mutex);
    uv_async_send(&async);
}

static void on_async(uv_async_t *h)
{
    (void)h;
    pthread_mutex_lock(&queue_mutex);
    struct item *items = incoming;
    size_t n = incoming_n, cap = incoming_cap;
    incoming = batch;
    incoming_cap = batch_cap;
    incoming_n = 0;
    pthread_mutex_unlock(&queue_mutex);
    for (size_t k = 0; k < n; k++)
        items[k].fn(items[k].producer, items[k].index);
    batch = items;
    batch_cap = cap;
}

static void run(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
    post_parse(argc, argv);
    uv_loop_init(&loop);
    uv_async_init(&loop, &async, on_async);
    post_rounds(produce, run);
    post_report("libuv");
    uv_close((uv_handle_t *)&async, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
