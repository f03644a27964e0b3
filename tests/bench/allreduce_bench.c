/* allreduce_bench.c - MPI_Allreduce of a model's gradient (N floats, sum,
 * in place) in one call against parts of several sizes: why dist.c sums
 * in parts.
 *
 *     mpirun -np 2 build/tests/bench/allreduce_bench [N (default 9.6 M, en-es)] [--reps 7]
 *
 * Prints rank 0's median milliseconds per whole sum for each part size.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size, reps = 7;
    size_t n = 9600000;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else
            n = (size_t)atof(argv[i]);
    }
    if (reps < 1 || reps > 1000 || n < 1 || n > ((size_t)1 << 31)) {
        if (!rank)
            fprintf(stderr, "usage: mpirun -np R allreduce_bench [N] [--reps K]\n");
        MPI_Finalize();
        return 2;
    }
    float *x = malloc(n * sizeof *x);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!x || !t)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (size_t i = 0; i < n; i++)
        x[i] = 1e-3f * (float)(i % 1000);
    const size_t parts[] = { n, 1 << 22, 1 << 20, 1 << 18, 1 << 16, 1 << 14 };
    if (!rank)
        printf("# MPI_Allreduce of %zu floats (%.1f MB), %d ranks, median of %d\n", n, 4e-6 * (double)n, size, reps);
    for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
        size_t part = parts[k] < n ? parts[k] : n;
        if (k > 0 && part == n)
            continue;
        for (int r = 0; r < reps; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            for (size_t at = 0; at < n; at += part)
                MPI_Allreduce(MPI_IN_PLACE, x + at, (int)(n - at < part ? n - at : part), MPI_FLOAT, MPI_SUM,
                              MPI_COMM_WORLD);
            t[r] = MPI_Wtime() - t0;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp);
        if (!rank)
            printf("parts of %9zu floats: %7.1f ms (%.2f GB/s of gradient)\n", part, 1e3 * t[reps / 2],
                   4e-9 * (double)n / t[reps / 2]);
    }
    free(x), free(t);
    MPI_Finalize();
    return 0;
}
