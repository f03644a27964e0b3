/* bandwidth.c - how fast this machine streams memory into the cores: the
 * denominator of the decoding floor (weight bytes per token / bandwidth).
 *
 *     build/tests/bench/bandwidth [--mb 1024] [--reps 9]
 *
 * Sums a buffer far larger than the caches with 1 and 2 threads (each
 * thread its own half), the way a one-row matmul streams weights. Prints
 * the median GB/s of --reps passes for each thread count.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct Part { const float *p; size_t n; float sum; } Part;

static void *sum_part(void *arg)
{
    Part *t = arg;
    float acc[16] = { 0 };
    for (size_t i = 0; i + 16 <= t->n; i += 16)
        for (int k = 0; k < 16; k++)
            acc[k] += t->p[i + k];
    for (int k = 0; k < 16; k++)
        t->sum += acc[k];
    return NULL;
}

int main(int argc, char **argv)
{
    size_t mb = 1024;
    int reps = 9;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bandwidth [--mb N] [--reps N]\n");
            return 2;
        }
    }
    if (mb < 64 || reps < 1 || reps > 1000) {
        fprintf(stderr, "bandwidth: --mb must be at least 64 and --reps 1 to 1000\n");
        return 2;
    }
    size_t n = mb << 18;   /* floats */
    float *buf = malloc(n * sizeof *buf);
    if (!buf) {
        fprintf(stderr, "bandwidth: cannot allocate %zu MB\n", mb);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = (float)(i & 7);
    double *gbs = malloc(sizeof(double) * (size_t)reps);
    float check = 0;
    for (int threads = 1; threads <= 2; threads++) {
        for (int r = 0; r < reps; r++) {
            Part part[2];
            pthread_t tid[2];
            double t0 = bench_now();
            for (int k = 0; k < threads; k++) {
                part[k] = (Part){ buf + n / (size_t)threads * (size_t)k, n / (size_t)threads, 0 };
                pthread_create(&tid[k], NULL, sum_part, &part[k]);
            }
            for (int k = 0; k < threads; k++) {
                pthread_join(tid[k], NULL);
                check += part[k].sum;
            }
            gbs[r] = (double)(n * sizeof *buf) / (bench_now() - t0) * 1e-9;
        }
        printf("%d thread%s: %.1f GB/s (median of %d passes over %zu MB)\n", threads, threads > 1 ? "s" : "",
               bench_median(gbs, reps), reps, mb);
    }
    free(gbs);
    free(buf);
    return check < 0;   /* keeps the sums alive */
}
