/* pool.c - the kernels' thread pool (see vamos/parallel.h).
 *
 * Workers are started on the first call that is worth splitting. Waking
 * them costs a few microseconds, and a decoder step calls hundreds of
 * kernels, so a worker spins for a short while after each job before it
 * sleeps on the condition variable; the caller does chunk 0 itself.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include "vamos/parallel.h"

/* Work below this (multiply-adds or elements) runs inline: splitting it
 * would cost more than it saves. */
#define MIN_WORK (1 << 15)
#define SPIN 20000

static struct {
    pthread_mutex_t mu;
    pthread_cond_t go;
    atomic_uint gen;            /* bumped per job */
    atomic_int pending;         /* workers still running the job */
    atomic_int busy;            /* a job is in flight */
    int want;                   /* threads asked for (0: one per CPU) */
    int nworkers;               /* started */
    bool started, stop;
    unsigned start_gen;         /* gen when the workers were started */
    pthread_t tid[VAMOS_MAX_THREADS];
    /* the job */
    vamos_range_fn fn;
    void *out;
    const void *a, *b;
    const int64_t *dims;
    int64_t n;
    int parts;
    int32_t status[VAMOS_MAX_THREADS];
} P = { .mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER };

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_part(int k)
{
    int64_t lo = P.n * k / P.parts, hi = P.n * (k + 1) / P.parts;
    P.status[k] = lo < hi ? P.fn(P.out, P.a, P.b, P.dims, lo, hi) : 0;
}

static void *worker(void *arg)
{
    int k = (int)(intptr_t)arg;
    unsigned seen = P.start_gen;      /* the job that starts it may already be posted */
    for (;;) {
        for (int i = 0; i < SPIN && atomic_load_explicit(&P.gen, memory_order_acquire) == seen; i++)
            relax();
        pthread_mutex_lock(&P.mu);
        while (atomic_load(&P.gen) == seen && !P.stop)
            pthread_cond_wait(&P.go, &P.mu);
        bool stop = P.stop;
        pthread_mutex_unlock(&P.mu);
        if (stop)
            return NULL;
        seen = atomic_load(&P.gen);
        if (k < P.parts)
            run_part(k);
        atomic_fetch_sub_explicit(&P.pending, 1, memory_order_release);
    }
}

int vamos_threads(void)
{
    int n = P.want;
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    return n > VAMOS_MAX_THREADS ? VAMOS_MAX_THREADS : n;
}

static void stop_workers(void)
{
    pthread_mutex_lock(&P.mu);
    P.stop = true;
    pthread_cond_broadcast(&P.go);
    pthread_mutex_unlock(&P.mu);
    for (int i = 1; i <= P.nworkers; i++)
        pthread_join(P.tid[i], NULL);
    P.stop = false;
    P.nworkers = 0;
    P.started = false;
}

void vamos_set_threads(int n)
{
    int expected = 0;
    while (!atomic_compare_exchange_weak(&P.busy, &expected, 1))
        expected = 0;
    if (P.started)
        stop_workers();
    P.want = n < 0 ? 0 : n;
    atomic_store(&P.busy, 0);
}

static void start_workers(void)
{
    P.started = true;
    P.start_gen = atomic_load(&P.gen);
    int want = vamos_threads() - 1;
    for (int i = 1; i <= want; i++) {
        if (pthread_create(&P.tid[i], NULL, worker, (void *)(intptr_t)i))
            break;                        /* run with the workers we have */
        P.nworkers = i;
    }
}

static _Thread_local int inline_only;

void vamos_parallel_inline(int on) { inline_only = on; }
int vamos_parallel_is_inline(void) { return inline_only; }

typedef struct LaneStart { void (*fn)(void *, int); void *ctx; int lane; } LaneStart;

static void *lane_thread(void *arg)
{
    LaneStart *l = arg;
    inline_only = 1;
    l->fn(l->ctx, l->lane);
    return NULL;
}

void vamos_lanes(void (*fn)(void *ctx, int lane), void *ctx, int lanes)
{
    LaneStart arg[VAMOS_MAX_THREADS];
    pthread_t tid[VAMOS_MAX_THREADS];
    bool started[VAMOS_MAX_THREADS] = { false };
    int threads = lanes < VAMOS_MAX_THREADS ? lanes : VAMOS_MAX_THREADS;
    for (int l = 1; l < threads; l++) {
        arg[l] = (LaneStart){ fn, ctx, l };
        started[l] = pthread_create(&tid[l], NULL, lane_thread, &arg[l]) == 0;
    }
    int was = inline_only;
    inline_only = 1;
    fn(ctx, 0);
    for (int l = 1; l < lanes; l++)   /* past the threads, or without one: on this thread */
        if (l < threads && started[l])
            pthread_join(tid[l], NULL);
        else
            fn(ctx, l);
    inline_only = was;
}

int32_t vamos_parallel(vamos_range_fn fn, void *out, const void *a, const void *b, const int64_t *dims,
                       int64_t n, int64_t work)
{
    int expected = 0;
    if (n < 2 || work < MIN_WORK || P.want == 1 || inline_only ||
        !atomic_compare_exchange_strong(&P.busy, &expected, 1))
        return fn(out, a, b, dims, 0, n);
    if (!P.started)
        start_workers();
    int parts = P.nworkers + 1;
    if (parts > n)
        parts = (int)n;
    if (parts < 2) {
        atomic_store(&P.busy, 0);
        return fn(out, a, b, dims, 0, n);
    }
    P.fn = fn, P.out = out, P.a = a, P.b = b, P.dims = dims, P.n = n, P.parts = parts;
    atomic_store(&P.pending, P.nworkers);
    pthread_mutex_lock(&P.mu);
    atomic_fetch_add_explicit(&P.gen, 1, memory_order_release);
    pthread_cond_broadcast(&P.go);
    pthread_mutex_unlock(&P.mu);
    run_part(0);
    for (long i = 0; atomic_load_explicit(&P.pending, memory_order_acquire) > 0; i++)
        if (i < SPIN)
            relax();
        else
            sched_yield();
    int32_t rc = 0;
    for (int k = 0; k < parts && !rc; k++)
        rc = P.status[k];
    atomic_store(&P.busy, 0);
    return rc;
}
