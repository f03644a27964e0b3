/* parallel.h - the thread pool that generated kernels run their loops on.
 *
 * Every generated kernel is `int32_t k(out, a, b, dims, lo, hi)`: it does
 * iterations [lo, hi) of its outermost parallel loop (rows, heads, batch
 * entries). The graph function calls it through vamos_parallel(), which
 * splits [0, n) into one contiguous chunk per thread when the work is big
 * enough to pay for waking the pool, and runs it inline otherwise.
 *
 * One job runs at a time: a call made while another is in flight (from a
 * second application thread) runs inline, so callers need no lock.
 */
#ifndef VAMOS_PARALLEL_H
#define VAMOS_PARALLEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t (*vamos_range_fn)(void *out, const void *a, const void *b, const int64_t *dims,
                                   int64_t lo, int64_t hi);

/* Run fn over [0, n) in chunks; `work` estimates the multiply-adds (or
 * elements) of the whole call. Returns the first non-zero chunk status. */
int32_t vamos_parallel(vamos_range_fn fn, void *out, const void *a, const void *b, const int64_t *dims,
                       int64_t n, int64_t work);

/* While on (non-zero), vamos_parallel calls made from this thread run
 * inline: for callers that run several graphs side by side, each on a
 * thread of its own (training's lanes). */
void vamos_parallel_inline(int on);
int vamos_parallel_is_inline(void);

/* Lanes: run fn(ctx, l) for every l in [0, lanes) at once, lane 0 on the
 * calling thread and each other lane on a thread of its own, every lane's
 * kernels inline (unsplit). Returns when all have. A lane whose thread
 * cannot be started, or past VAMOS_MAX_THREADS lanes, runs on the caller
 * after lane 0. */
void vamos_lanes(void (*fn)(void *ctx, int lane), void *ctx, int lanes);

/* Threads used from now on (the caller counts as one); 0: one per online
 * CPU. At most VAMOS_MAX_THREADS. */
#define VAMOS_MAX_THREADS 64
void vamos_set_threads(int n);
int vamos_threads(void);

#ifdef __cplusplus
}
#endif

#endif
