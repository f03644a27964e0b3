/* train_bench.c - one training step (forward and backward: the loss and
 * every weight's gradient) of a model, compiled by Vamos.
 *
 *     build/tests/bench/train_bench [--reps N] [--threads T (default 2)] [MODEL.vam]
 *
 * The model (default models/en-es.vam) is compiled without dropout, with
 * random weights, on a fixed batch of 64 rows x 32 source and 32 target
 * tokens (2048 target tokens). Prints the median milliseconds of --reps
 * steps and target tokens per second. tests/bench/train_torch.py runs
 * this and the same step in PyTorch in one run.
 */
#include "bench.h"
#include "compile.h"
#include "train_graph.h"
#include "vamos/parallel.h"

#define ROWS 64
#define LEN 32

int main(int argc, char **argv)
{
    int reps = 10, threads = 2;
    const char *path = "models/en-es.vam";
    if (argc > 1 && argv[argc - 1][0] != '-' && strstr(argv[argc - 1], ".vam"))
        path = argv[--argc];
    if (bench_args(argc, argv, "train_bench", &reps, &threads))
        return 2;
    vamos_set_threads(threads);
    Arena a = { 0 };
    Diag d;
    diag_init(&d, stderr);
    Model *m = compile_file(&a, &d, path, "dce");
    if (!m || d.errors)
        return 1;
    char err[512];
    TrainGraph *t = train_graph_new(&a, m, 0.1f, true, err, sizeof err);
    if (!t) {
        fprintf(stderr, "train_bench: %s\n", err);
        return 1;
    }
    float **w = calloc((size_t)m->nparams, sizeof *w), **g = calloc((size_t)m->nparams, sizeof *g);
    uint32_t s = 1;
    for (int i = 0; i < m->nparams; i++) {
        int64_t k = shape_numel_const(&m->params[i].shape);
        w[i] = malloc(sizeof(float) * (size_t)k), g[i] = malloc(sizeof(float) * (size_t)k);
        for (int64_t j = 0; j < k; j++) {
            s = s * 1664525u + 1013904223u;
            w[i][j] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.1f + (m->params[i].init == INIT_ONES);
        }
    }
    static int32_t src[ROWS * LEN], tin[ROWS * LEN], lab[ROWS * LEN], sl[ROWS], tl[ROWS];
    for (int i = 0; i < ROWS * LEN; i++) {
        s = s * 1664525u + 1013904223u;
        src[i] = 4 + (int32_t)((s >> 8) % (uint32_t)(m->src->n - 4));
        tin[i] = 4 + (int32_t)((s >> 4) % (uint32_t)(m->tgt->n - 4));
        lab[i] = 4 + (int32_t)((s >> 12) % (uint32_t)(m->tgt->n - 4));
    }
    for (int i = 0; i < ROWS; i++)
        sl[i] = tl[i] = LEN;
    TrainBatch b = { ROWS, LEN, LEN, src, sl, tin, tl, lab };
    double *x = malloc(sizeof(double) * (size_t)reps), loss;
    for (int r = -2; r < reps; r++) {   /* two warm-up steps */
        double t0 = bench_now();
        if (train_graph_run(t, w, &b, 0, g, &loss, err, sizeof err)) {
            fprintf(stderr, "train_bench: %s\n", err);
            return 1;
        }
        if (r >= 0)
            x[r] = bench_now() - t0;
    }
    double med = bench_median(x, reps);
    printf("vamos %s: %.1f ms per step, %.0f target tokens/s (threads %d, %d reps)\n", m->name, 1e3 * med,
           ROWS * LEN / med, vamos_threads(), reps);
    train_graph_profile(t, stderr);   /* with VAMOS_PROFILE set */
    for (int i = 0; i < m->nparams; i++)
        free(w[i]), free(g[i]);
    free(w), free(g), free(x);
    train_graph_free(t);
    arena_free(&a);
    return 0;
}
