/* matmul_bench.c - Vamos's generated matmul kernel against OpenBLAS.
 *
 *     build/matmul_bench [--reps N] [--threads T] [--rows R] [--train]
 *
 * For each (M, N, K) of the list, a model computing x [M, K] @ w
 * [K, N] (w a weight, so packed as every model's weights are) is compiled
 * by the JIT, and its matmul kernel is called alone through the thread
 * pool exactly as a graph calls it. The peer is OpenBLAS's cblas_sgemm
 * (and, for M = 1, the better of it and cblas_sgemv) on the same data with
 * the same number of threads. Each figure is the median of --reps samples,
 * each sample timing enough calls to last about 20 ms; the two sides
 * alternate sample by sample so that machine noise hits both alike.
 * Results are checked against each other before timing. Prints one line
 * per shape: GFLOP/s of each and the ratio Vamos / OpenBLAS.
 *
 * Then the products of the en-es training step (2048 tokens), with b
 * unpacked as training has it (its weights change every step): b as
 * stored and b^T (a transposed read, the tied output layer), the kernels
 * of emit_matmul_panels. --train runs only these.
 *
 * --rows R gives the register tile R rows instead of the default of the
 * code's instruction set (schedule.h). With VAMOS_JIT_CPU=x86-64-v3 the
 * JIT compiles what an AVX2-only machine gets, so on an AVX-512 machine
 *     VAMOS_JIT_CPU=x86-64-v3 build/tests/bench/matmul_bench --threads 1 --rows 3 --train
 * shows AVX2's tile of 3 rows spilling (against --rows 2).
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "bench.h"
#include "compile.h"
#include "jit.h"
#include "passes.h"
#include "schedule.h"
#include "vamos/parallel.h"

void openblas_set_num_threads(int);

typedef struct Vam {
    Jit *j;
    const Model *m;
    int node;
    void **buf;
    int64_t sym[MAX_SYMS];
} Vam;

static void vam_call(void *ctx)
{
    Vam *v = ctx;
    if (jit_step(v->j, v->m, &v->m->enc, v->node, v->buf, v->sym)) {
        fprintf(stderr, "matmul kernel failed\n");
        exit(1);
    }
}

typedef struct Blas { const float *a, *b; float *c; int M, N, K; bool gemv; } Blas;

static void blas_call(void *ctx)
{
    Blas *p = ctx;
    if (p->gemv)
        cblas_sgemv(CblasRowMajor, CblasTrans, p->K, p->N, 1.0f, p->b, p->N, p->a, 1, 0.0f, p->c, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->M, p->N, p->K, 1.0f, p->a, p->K, p->b, p->N,
                    0.0f, p->c, p->N);
}

static float *randoms(int64_t n)
{
    float *p = malloc((size_t)n * sizeof *p);
    uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        p[i] = (float)((double)(s >> 11) * 0x1.0p-53 - 0.5);
    }
    return p;
}

/* train: b is read as it is stored (the training kernels, weights change
 * every step), bt: and transposed (y [N, K], a @ y^T: a tied output
 * layer's forward product). */
static int rows_rb;   /* --rows: the tile's rows, 0: the default */

static int bench(int M, int N, int K, int reps, bool train, bool bt)
{
    char text[1024];
    snprintf(text, sizeof text,
             "model mm {\n"
             "  vocab src = [\"<eos>\", \"a\"]\n"
             "  vocab tgt = [\"<eos>\", \"b\"]\n"
             "  encoder(x: tokens<src>[b, n]) {\n"
             "    return embed(x, %d) @ weight(%d)\n"
             "  }\n"
             "  decoder(y: tokens<tgt>[b, m], memory: [b, n, %d]) {\n"
             "    return linear(embed(y, 2), len(tgt)) as out\n"
             "  }\n"
             "}\n"
             "def weight(n: int) { param w[%d, n]\n return w }\n",
             K, N, N, K);
    Arena a = { 0 };
    Diag d;
    diag_init(&d, stderr);
    Model *m = compile_text(&a, &d, "mm.vam", text, (long)strlen(text), NULL);
    if (!m)
        return -1;
    char err[512];
    Vam v = { .j = NULL, .m = m, .node = m->enc.output };
    Node *mm = &m->enc.nodes[v.node];
    if (mm->op != OP_MATMUL || !mm->attr.mm.packed) {
        fprintf(stderr, "internal error: the benchmark's matmul is not a packed matmul\n");
        return -1;
    }
    mm->sched.rb = (unsigned char)rows_rb;
    if (train) {   /* as the training graph has it */
        mm->attr.mm.packed = false;
        mm->attr.mm.bt = bt;
        if (bt)
            m->enc.nodes[mm->in[1]].shape = (Shape){ 2, { { .n = N, .sym = -1 }, { .n = K, .sym = -1 } } };
    }
    Jit *j = jit_compile_steps(m, err, sizeof err);
    if (!j) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    v.j = j;
    float *x = randoms((int64_t)M * K), *w = randoms((int64_t)K * N);
    float *out = calloc((size_t)M * N, 4), *ref = calloc((size_t)M * N, 4);
    const ParamInfo *p = &m->params[m->enc.nodes[mm->in[1]].attr.param];
    float *wp = malloc((size_t)param_floats(p) * 4);
    if (!train)
        pack_param(p, w, wp);
    else if (bt)   /* wp = w^T */
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < N; c++)
                wp[c * K + k] = w[k * N + c];
    else
        memcpy(wp, w, (size_t)K * N * 4);
    v.buf = calloc((size_t)m->enc.n, sizeof *v.buf);
    v.buf[mm->in[0]] = x, v.buf[mm->in[1]] = wp, v.buf[v.node] = out;
    v.sym[model_sym(m, SYM_BATCH)] = 1;
    v.sym[model_sym(m, SYM_SRC_LEN)] = M;

    Blas bl = { x, w, ref, M, N, K, false };
    vam_call(&v);
    blas_call(&bl);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < (int64_t)M * N; i++)
        scale = fmax(scale, fabs(ref[i]));
    for (int64_t i = 0; i < (int64_t)M * N; i++)
        worst = fmax(worst, fabs(out[i] - ref[i]) / (scale + 1e-30));
    if (worst > 1e-5) {
        fprintf(stderr, "(%d, %d, %d): vamos and openblas differ (%.3g of the largest value)\n", M, N, K, worst);
        return -1;
    }
    Timer tv = { vam_call, &v, 0 }, tb = { blas_call, &bl, 0 };
    double sv, sb;
    bench_pair(&tv, &tb, reps, &sv, &sb);
    if (M == 1) {   /* the peer's best: sgemv when it is faster */
        Blas gv = bl;
        gv.gemv = true;
        Timer tg = { blas_call, &gv, 0 };
        double sv2, sg;
        bench_pair(&tv, &tg, reps, &sv2, &sg);
        sb = fmin(sb, sg);
    }
    double flop = 2.0 * M * N * K;
    printf("%5d %6d %5d  %-7s %8.1f  %8.1f  %6.2f\n", M, N, K, train ? bt ? "b^T" : "b" : "packed",
           flop / sv * 1e-9, flop / sb * 1e-9, sb / sv);
    fflush(stdout);
    free(x), free(w), free(wp), free(out), free(ref), free(v.buf);
    jit_free(j);
    arena_free(&a);
    return 0;
}

int main(int argc, char **argv)
{
    int reps = 9, threads = 2;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--rows")) {
            rows_rb = atoi(argv[i + 1]);
            if (!sched_valid(OP_MATMUL, (Sched){ SCHED_QB_DEFAULT, SCHED_BK_DEFAULT, (unsigned char)rows_rb, 1 })) {
                fprintf(stderr, "matmul_bench: --rows takes 1 to %d\n", SCHED_RB_MAX);
                return 2;
            }
            memmove(&argv[i], &argv[i + 2], sizeof *argv * (size_t)(argc - i - 1));
            argc -= 2;
            break;
        }
    bool train_only = argc > 1 && !strcmp(argv[argc - 1], "--train");   /* only the training shapes */
    if (bench_args(argc - train_only, argv, "matmul_bench", &reps, &threads))
        return 2;
    vamos_set_threads(threads);
    openblas_set_num_threads(threads);
    static const int shapes[][3] = { { 1, 512, 512 }, { 1, 2048, 512 }, { 1, 512, 2048 }, { 1, 32000, 512 },
                                     { 16, 512, 512 }, { 64, 512, 2048 }, { 64, 2048, 512 },
                                     { 256, 512, 512 }, { 512, 512, 512 } };
    char rows[16] = "default";
    if (rows_rb)
        snprintf(rows, sizeof rows, "%d", rows_rb);
    printf("# matmul GFLOP/s, %d threads, medians of %d samples; ratio = vamos / openblas; tile rows %s%s\n", threads,
           reps, rows, getenv("VAMOS_JIT_CPU") ? "; code for VAMOS_JIT_CPU" : "");
    printf("# b: a packed weight (translators), b as stored or b^T (training's kernels)\n");
    printf("#   M      N     K  b          vamos  openblas   ratio\n");
    for (size_t s = 0; !train_only && s < sizeof shapes / sizeof *shapes; s++)
        if (bench(shapes[s][0], shapes[s][1], shapes[s][2], reps, false, false))
            return 1;
    /* the en-es training step's products: 64 x 32 tokens */
    static const int train[][3] = { { 2048, 256, 256 }, { 2048, 1024, 256 }, { 2048, 256, 1024 },
                                    { 2048, 8000, 256 }, { 2048, 256, 8000 } };
    for (size_t s = 0; s < sizeof train / sizeof *train; s++)
        for (int bt = 0; bt < 2; bt++)
            if (bench(train[s][0], train[s][1], train[s][2], reps, true, bt))
                return 1;
    return 0;
}
