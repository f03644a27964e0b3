/* train_bench.c - one training step (forward and backward: the loss and
 * every weight's gradient) of a model, compiled by Vamos.
 *
 *     build/tests/bench/train_bench [--reps N] [--threads T (default 2)] [--lanes L] [--db FILE] [MODEL.vam]
 *
 * The model (default models/en-es.vam) is compiled without dropout, with
 * random weights, on a fixed batch of 64 rows x 32 source and 32 target
 * tokens (2048 target tokens). Prints the median milliseconds of --reps
 * steps and target tokens per second. tests/bench/train_torch.py runs
 * this and the same step in PyTorch in one run.
 *
 * --lanes L (as vamos train's): the batch's rows cut into L batches run
 * side by side, one thread each (train_graph_run_lanes), and the lanes'
 * gradients summed into one, which the time includes (here on one thread;
 * vamos train sums them on the pool, so it is a little faster). Default 1: every
 * kernel split between the threads.
 *
 * --db FILE: the kernels take the schedules FILE records for this machine
 * (vamos tune --train --db FILE), as vamos train does with its database;
 * default: the default schedules.
 */
#include "bench.h"
#include "compile.h"
#include "train_graph.h"
#include "tunedb.h"
#include "vamos/parallel.h"

#define ROWS 64
#define LEN 32

int main(int argc, char **argv)
{
    int reps = 10, threads = 2, lanes = 1;
    const char *path = "models/en-es.vam", *dbpath = NULL;
    for (int i = 1; i + 1 < argc;)
        if (!strcmp(argv[i], "--lanes") || !strcmp(argv[i], "--db")) {
            if (argv[i][2] == 'l')
                lanes = atoi(argv[i + 1]);
            else
                dbpath = argv[i + 1];
            memmove(&argv[i], &argv[i + 2], sizeof *argv * (size_t)(argc - i - 1));
            argc -= 2;
        } else {
            i++;
        }
    if (lanes < 1 || lanes > TRAIN_MAX_LANES || ROWS % lanes) {
        fprintf(stderr, "train_bench: --lanes must divide %d and be at most %d\n", ROWS, TRAIN_MAX_LANES);
        return 2;
    }
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
    TuneDB db = { 0 };
    if (dbpath && tunedb_load(dbpath, &db, stderr, err, sizeof err)) {
        fprintf(stderr, "train_bench: %s\n", err);
        return 1;
    }
    int tuned, kernels;
    TrainGraph *t = train_graph_new_tuned(&a, m, 0.1f, true, &db, &tuned, &kernels, err, sizeof err);
    tunedb_free(&db);
    if (!t) {
        fprintf(stderr, "train_bench: %s\n", err);
        return 1;
    }
    if (dbpath)
        fprintf(stderr, "train_bench: %d of %d kernels tuned (%s)\n", tuned, kernels, dbpath);
    float **w = calloc((size_t)m->nparams, sizeof *w), **lg[TRAIN_MAX_LANES];
    for (int l = 0; l < lanes; l++)
        lg[l] = calloc((size_t)m->nparams, sizeof **lg);
    float **g = lg[0];
    uint32_t s = 1;
    for (int i = 0; i < m->nparams; i++) {
        int64_t k = shape_numel_const(&m->params[i].shape);
        w[i] = malloc(sizeof(float) * (size_t)k);
        for (int l = 0; l < lanes; l++)
            lg[l][i] = malloc(sizeof(float) * (size_t)k);
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
    TrainBatch b[TRAIN_MAX_LANES];
    uint64_t seeds[TRAIN_MAX_LANES] = { 0 };
    int rows = ROWS / lanes;
    for (int l = 0; l < lanes; l++)
        b[l] = (TrainBatch){ rows, LEN, LEN, src + l * rows * LEN, sl + l * rows, tin + l * rows * LEN, tl + l * rows,
                             lab + l * rows * LEN };
    double *x = malloc(sizeof(double) * (size_t)reps), loss[TRAIN_MAX_LANES];
    for (int r = -2; r < reps; r++) {   /* two warm-up steps */
        double t0 = bench_now();
        if (train_graph_run_lanes(t, lanes, threads >= lanes, w, b, seeds, lg, loss, err, sizeof err)) {
            fprintf(stderr, "train_bench: %s\n", err);
            return 1;
        }
        for (int l = 1; l < lanes; l++)   /* the gradients summed (one thread) */
            for (int i = 0; i < m->nparams; i++) {
                int64_t k = shape_numel_const(&m->params[i].shape);
                for (int64_t j = 0; j < k; j++)
                    g[i][j] += lg[l][i][j];
            }
        if (r >= 0)
            x[r] = bench_now() - t0;
    }
    double med = bench_median(x, reps);
    printf("vamos %s: %.1f ms per step, %.0f target tokens/s (threads %d, lanes %d, %d reps)\n", m->name, 1e3 * med,
           ROWS * LEN / med, vamos_threads(), lanes, reps);
    double flop = 0;
    for (int l = 0; l < lanes; l++)
        flop += train_graph_flop(t, &b[l]);
    printf("products: %.2f GFLOP a step\n", flop * 1e-9);
    train_graph_profile(t, stderr);   /* with VAMOS_PROFILE set */
    for (int i = 0; i < m->nparams; i++) {
        free(w[i]);
        for (int l = 0; l < lanes; l++)
            free(lg[l][i]);
    }
    for (int l = 0; l < lanes; l++)
        free(lg[l]);
    free(w), free(x);
    train_graph_free(t);
    arena_free(&a);
    return 0;
}
