/* bench/post_common.h: cross-thread posts, the workload of post_evw.cpp, post_asio.cpp and
 * post_libuv.c.
 *
 * P producer threads each post `events / P` small callables (a producer number and an index) to
 * one event loop, as fast as they can; the loop's thread runs them. A callable checks that it
 * runs in its producer's order and counts; the round's last one stops the loop. The programs
 * differ only in post_produce() and the loop that post_run() drives.
 *
 * Measured: one round, from releasing the producers (blocked on a barrier, so they cost nothing
 * before) to the loop's return after the last callable; callgrind counts every thread's
 * user-space instructions in between (bench_measured's client requests), wall time is
 * the same interval natively. A warm-up round before it grows queues and binds PLT slots.
 * Valid C11 and C++20. */
#ifndef EVW_BENCH_POST_COMMON_H
#define EVW_BENCH_POST_COMMON_H

#include <pthread.h>

#include "common.h"

struct post_options {
    int producers;
    long events; /* measured posts, all producers together */
    long warmup;
};

static struct post_options post_opt;

struct post_state {
    long *next;    /* per producer: the index it must run next (the loop's thread only) */
    long done;     /* callables run this round */
    long target;   /* callables this round must run */
    long disorder; /* callables that ran out of their producer's order (must stay 0) */
    long per;      /* posts per producer this round */
    pthread_barrier_t start;
};

static struct post_state post_st;

typedef void (*post_produce_fn)(int producer, long index);

static inline void post_parse(int argc, char **argv)
{
    post_opt.producers = 4;
    post_opt.events = 1000000;
    post_opt.warmup = -1;
    int c;
    while ((c = getopt(argc, argv, "p:e:w:")) != -1) {
        switch (c) {
        case 'p': post_opt.producers = atoi(optarg); break;
        case 'e': post_opt.events = atol(optarg); break;
        case 'w': post_opt.warmup = atol(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-p producers] [-e posts] [-w warmup posts]\n", argv[0]);
            exit(2);
        }
    }
    if (post_opt.warmup < 0)
        post_opt.warmup = post_opt.events / 10;
    if (post_opt.producers < 1 || post_opt.events < post_opt.producers ||
        post_opt.warmup < post_opt.producers) {
        fprintf(stderr, "%s: bad options\n", argv[0]);
        exit(2);
    }
    post_st.next = (long *)calloc((size_t)post_opt.producers, sizeof(long));
    if (!post_st.next)
        bench_die("calloc");
    (void)bench_opt;
    (void)bench_ch;
}

/* What each posted callable does on the loop's thread; 1 for the round's last one. */
static inline int post_step(int producer, long index)
{
    if (post_st.next[producer] != index)
        post_st.disorder++;
    post_st.next[producer] = index + 1;
    return ++post_st.done == post_st.target;
}

static post_produce_fn post_produce_impl;

static void *post_producer(void *arg)
{
    int p = (int)(long)arg;
    pthread_barrier_wait(&post_st.start);
    for (long i = 0; i < post_st.per; i++)
        post_produce_impl(p, i);
    return NULL;
}

/* One round of `total` posts; run() drives the loop until post_step() says done. */
static inline void post_round(long total, post_produce_fn produce, bench_run_fn run, int measured)
{
    pthread_t threads[256];
    int np = post_opt.producers < 256 ? post_opt.producers : 256;
    post_produce_impl = produce;
    post_st.per = total / np;
    post_st.target = post_st.per * np;
    post_st.done = 0;
    post_st.disorder = 0;
    for (int p = 0; p < np; p++)
        post_st.next[p] = 0;
    pthread_barrier_init(&post_st.start, NULL, (unsigned)np + 1);
    for (int p = 0; p < np; p++)
        if (pthread_create(&threads[p], NULL, post_producer, (void *)(long)p) != 0)
            bench_die("pthread_create");
    bench_arm_watchdog();
    long long t0 = bench_now_ns();
    if (measured)
        CALLGRIND_START_INSTRUMENTATION;
    pthread_barrier_wait(&post_st.start);
    run();
    if (measured) {
        CALLGRIND_STOP_INSTRUMENTATION;
        bench_wall_ns = bench_now_ns() - t0;
    }
    alarm(0);
    for (int p = 0; p < np; p++)
        pthread_join(threads[p], NULL);
    pthread_barrier_destroy(&post_st.start);
    if (post_st.done != post_st.target || post_st.disorder != 0) {
        fprintf(stderr, "bench: a round ran %ld of %ld posts, %ld out of order\n", post_st.done,
                post_st.target, post_st.disorder);
        exit(1);
    }
}

static inline void post_rounds(post_produce_fn produce, bench_run_fn run)
{
    post_round(post_opt.warmup, produce, run, 0);
    post_round(post_opt.events, produce, run, 1);
}

static inline void post_report(const char *impl)
{
    printf("impl=%s workload=post producers=%d events=%ld spurious=0 wall_ns=%lld maxrss_kb=%ld "
           "fds=%d\n",
           impl, post_opt.producers, post_st.done, bench_wall_ns, bench_peak_rss_kb(),
           bench_count_fds());
    fflush(stdout);
}

#endif
