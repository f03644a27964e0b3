/* bench.h - what the C benchmarks share: a clock, medians, timing two
 * contenders sample by sample, and the --reps/--threads options. */
#ifndef VAMOS_BENCH_H
#define VAMOS_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of x[0..n) (sorts x). */
static inline double bench_median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, bench_cmp);
    return x[n / 2];
}

/* Something to time: f(ctx), `calls` times per sample. */
typedef struct Timer {
    void (*f)(void *ctx);
    void *ctx;
    int calls;
} Timer;

/* Seconds per call, over one sample. */
static inline double bench_sample(Timer *t)
{
    double t0 = bench_now();
    for (int i = 0; i < t->calls; i++)
        t->f(t->ctx);
    return (bench_now() - t0) / t->calls;
}

/* Warm up, then choose calls so that a sample lasts about 20 ms. */
static inline void bench_calibrate(Timer *t)
{
    t->f(t->ctx);
    t->calls = 1;
    double s = bench_sample(t);
    t->calls = s > 0.02 ? 1 : (int)(0.02 / (s + 1e-9)) + 1;
}

/* Medians of reps samples of a and of b, taken alternately so that
 * machine noise hits both alike (both calibrated first). */
static inline void bench_pair(Timer *a, Timer *b, int reps, double *ma, double *mb)
{
    double *x = malloc(sizeof(double) * (size_t)reps), *y = malloc(sizeof(double) * (size_t)reps);
    if (!x || !y) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    bench_calibrate(a);
    bench_calibrate(b);
    for (int r = 0; r < reps; r++) {
        x[r] = bench_sample(a);
        y[r] = bench_sample(b);
    }
    *ma = bench_median(x, reps);
    *mb = bench_median(y, reps);
    free(x);
    free(y);
}

/* --reps N and --threads T (defaults as given); 0, or prints the usage
 * and returns 2. */
static inline int bench_args(int argc, char **argv, const char *name, int *reps, int *threads)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            *reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            *threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--reps N] [--threads T]\n", name);
            return 2;
        }
    }
    if (*reps < 1 || *reps > 1000 || *threads < 1) {
        fprintf(stderr, "%s: --reps must be 1 to 1000 and --threads at least 1\n", name);
        return 2;
    }
    return 0;
}

#endif
