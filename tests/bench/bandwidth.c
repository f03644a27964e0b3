/* bandwidth.c - the machine's two floors: how fast it streams memory into
 * the cores (the floor of one-row decoding: weight bytes per token /
 * bandwidth) and how many f32 multiply-adds it can do (the floor of
 * many-row products: flops / peak).
 *
 *     build/tests/bench/bandwidth [--mb 1024] [--reps 9] [--fma-only] [--width 8|16]
 *
 * Sums a buffer far larger than the caches with 1 and 2 threads (each
 * thread its own half), the way a one-row matmul streams weights. Prints
 * the median GB/s of --reps passes for each thread count. Then runs 12
 * independent chains of fused multiply-adds per thread (enough to hide
 * the FMA latency on AVX2 and AVX-512 cores), of the widest vectors the
 * machine has: 16 floats with AVX-512 (a Zen 5 does twice the flops with
 * them; a Zen 4 splits them in two, the same flops as 8), else 8. Prints
 * GFLOP/s for 1 and 2 threads. --width 8: 8-float vectors (AVX2 code's
 * peak) whatever the machine has; --fma-only: the multiply-adds alone.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct Part { const float *p; size_t n; float sum; } Part;

#define FMA_ITERS 50000000L

/* 12 chains of vectors of W floats: x = x * y + c */
#define FMA_CHAINS(name, W)                                                                          \
    static void *name(void *arg)                                                                     \
    {                                                                                                \
        typedef float v __attribute__((vector_size(W * 4)));                                         \
        float *sum = arg;                                                                            \
        v x = { 0 }, y, a[12];                                                                       \
        x += 1e-6f;                                                                                  \
        y = x + 0.9999f;                                                                             \
        for (int k = 0; k < 12; k++)                                                                 \
            a[k] = x * (float)k;                                                                     \
        v a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5];                          \
        v a6 = a[6], a7 = a[7], a8 = a[8], a9 = a[9], a10 = a[10], a11 = a[11];                      \
        for (long i = 0; i < FMA_ITERS; i++) {                                                       \
            a0 = a0 * y + x, a1 = a1 * y + x, a2 = a2 * y + x, a3 = a3 * y + x;                      \
            a4 = a4 * y + x, a5 = a5 * y + x, a6 = a6 * y + x, a7 = a7 * y + x;                      \
            a8 = a8 * y + x, a9 = a9 * y + x, a10 = a10 * y + x, a11 = a11 * y + x;                  \
            /* keeps the 12 chains in registers and apart */                                         \
            __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));       \
            __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));     \
        }                                                                                            \
        v t = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;                           \
        *sum = t[0];                                                                                 \
        return NULL;                                                                                 \
    }
FMA_CHAINS(fma_chains8, 8)
#ifdef __AVX512F__
FMA_CHAINS(fma_chains16, 16)
#define WIDEST 16
#else
#define WIDEST 8
#endif

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
    int reps = 9, width = WIDEST;
    bool fma_only = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--width") && i + 1 < argc)
            width = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fma-only"))
            fma_only = true;
        else {
            fprintf(stderr, "usage: bandwidth [--mb N] [--reps N] [--fma-only] [--width 8|16]\n");
            return 2;
        }
    }
    if (mb < 64 || reps < 1 || reps > 1000) {
        fprintf(stderr, "bandwidth: --mb must be at least 64 and --reps 1 to 1000\n");
        return 2;
    }
    if (width != 8 && width != WIDEST) {
        fprintf(stderr, "bandwidth: --width must be 8%s on this machine\n", WIDEST == 16 ? " or 16" : "");
        return 2;
    }
    if (fma_only)
        mb = 64;   /* the streaming pass is skipped */
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
    for (int threads = 1; threads <= 2 && !fma_only; threads++) {
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
    for (int threads = 1; threads <= 2; threads++) {
        for (int r = 0; r < 3; r++) {
            pthread_t tid[2];
            float sums[2];
            double t0 = bench_now();
            for (int k = 0; k < threads; k++)
#if WIDEST == 16
                pthread_create(&tid[k], NULL, width == 16 ? fma_chains16 : fma_chains8, &sums[k]);
#else
                pthread_create(&tid[k], NULL, fma_chains8, &sums[k]);
#endif
            for (int k = 0; k < threads; k++) {
                pthread_join(tid[k], NULL);
                check += sums[k];
            }
            gbs[r] = (double)threads * FMA_ITERS * 12 * width * 2 / (bench_now() - t0) * 1e-9;
        }
        printf("%d thread%s: %.1f GFLOP/s f32 fused multiply-add peak (median of 3, %d-float vectors)\n", threads,
               threads > 1 ? "s" : "", bench_median(gbs, 3), width);
    }
    free(gbs);
    free(buf);
    return check < 0;   /* keeps the sums alive */
}
