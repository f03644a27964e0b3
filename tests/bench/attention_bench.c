/* attention_bench.c - the fused attention kernel against the unfused
 * compiled kernels of the same graph.
 *
 *     build/tests/bench/attention_bench [--reps N] [--threads T]
 *
 * The model is the standard library's attention over 8 heads of 64 (d =
 * 512), batch 1, with a padding mask, and for "causal" rows the causal
 * mask too. It is compiled twice by the JIT: with fusion (one ATTENTION
 * kernel) and without (matmul, scale, mask, max, sub, exp, sum, div,
 * matmul). Both are timed on the same inputs, kernel calls only, through
 * the thread pool as a graph runs them; the transpose of k that both read
 * is not timed. Prints one line per case: milliseconds of each (medians
 * of --reps samples, the two alternating) and unfused / fused.
 * tests/bench/attention_torch.py runs this with PyTorch in the same run;
 * tests/bench/plot.py draws the figure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "bench.h"
#include "compile.h"
#include "jit.h"
#include "vamos/parallel.h"

typedef struct Side {
    Arena a;
    Model *m;
    Jit *j;
    Tensor *all;     /* every node's value after one run: the buffers */
    void **buf;
    int from, to;    /* the timed nodes: [from, to] */
    int L;           /* the sequence length */
} Side;

static int setup(Side *s, const char *text, bool fuse, int L)
{
    Diag d;
    diag_init(&d, stderr);
    s->L = L;
    s->m = compile_text(&s->a, &d, "att.vam", text, (long)strlen(text), fuse ? NULL : "incremental");
    if (!s->m)
        return -1;
    char err[512];
    if (!(s->j = jit_compile_steps(s->m, err, sizeof err))) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    const Graph *g = &s->m->enc;
    int32_t *tok = calloc((size_t)L, sizeof *tok), len = L;
    for (int i = 0; i < L; i++)
        tok[i] = 1;
    InterpInputs in = { 0 };
    int sb = model_sym(s->m, SYM_BATCH), sn = model_sym(s->m, SYM_SRC_LEN);
    in.sym[sb] = 1, in.sym[sn] = L;
    in.tokens = tok;
    in.lengths[sn] = &len;
    float **params = calloc((size_t)s->m->nparams + 1, sizeof *params);
    for (int i = 0; i < s->m->nparams; i++) {
        int64_t n = shape_numel_const(&s->m->params[i].shape);
        params[i] = malloc((size_t)n * 4);
        for (int64_t k = 0; k < n; k++)
            params[i][k] = (float)sin((double)k * 0.37 + i) * 0.5f;
    }
    s->all = calloc((size_t)g->n, sizeof *s->all);
    if (jit_run_all(s->j, s->m, g, params, &in, s->all, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    s->buf = calloc((size_t)g->n, sizeof *s->buf);
    for (int i = 0; i < g->n; i++)
        s->buf[i] = s->all[i].data;
    /* the timed range: the fused node, or q @ kt through p @ v */
    s->from = s->to = -1;
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        if (n->op == OP_ATTENTION)
            s->from = s->to = i;
        if (!fuse && n->op == OP_MATMUL && g->nodes[n->in[1]].op == OP_TRANSPOSE && s->from < 0)
            s->from = i;
        if (!fuse && n->op == OP_MATMUL && s->from >= 0 && i > s->from)
            s->to = i;
    }
    for (int i = 0; i < s->m->nparams; i++)
        free(params[i]);
    free(params);
    free(tok);
    if (s->from < 0 || s->to < 0) {
        fprintf(stderr, "internal error: no attention in the %s graph\n", fuse ? "fused" : "unfused");
        return -1;
    }
    return 0;
}

/* The timed kernels once (a Timer's function). */
static void run(void *ctx)
{
    Side *s = ctx;
    int64_t sym[MAX_SYMS] = { 0 };
    sym[model_sym(s->m, SYM_BATCH)] = 1;
    sym[model_sym(s->m, SYM_SRC_LEN)] = s->L;
    for (int i = s->from; i <= s->to; i++)
        if (jit_step(s->j, s->m, &s->m->enc, i, s->buf, sym)) {
            fprintf(stderr, "kernel %d failed\n", i);
            exit(1);
        }
}

static void side_free(Side *s)
{
    for (int i = 0; s->all && i < s->m->enc.n; i++)
        tensor_free(&s->all[i]);
    free(s->all);
    free(s->buf);
    jit_free(s->j);
    arena_free(&s->a);
}

static int bench(int L, bool causal, int reps)
{
    char text[1024];
    snprintf(text, sizeof text,
             "model att {\n"
             "  vocab src = [\"<eos>\", \"a\"]\n"
             "  vocab tgt = [\"<eos>\", \"b\"]\n"
             "  encoder(x: tokens<src>[b, n]) {\n"
             "    h = embed(x, 512) + position(n, 512)\n"
             "    q = split_heads(h, 8)\n"
             "    k = split_heads(h * 0.5, 8)\n"
             "    mask = padding_mask(x)%s\n"
             "    return merge_heads(attention(q, k, q, mask: mask))\n"
             "  }\n"
             "  decoder(y: tokens<tgt>[b, m], memory: [b, n, 512]) {\n"
             "    return linear(embed(y, 2), len(tgt)) as out\n"
             "  }\n"
             "}\n",
             causal ? " + causal_mask(n)" : "");
    Side f = { 0 }, u = { 0 };
    if (setup(&f, text, true, L) || setup(&u, text, false, L))
        return -1;
    /* same answer first: the fused output against the unfused one */
    const Tensor *a = &f.all[f.to], *b = &u.all[u.to];
    double worst = 0, scale = 0;
    int64_t n = rt_numel(&a->shape);
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(((float *)b->data)[i]));
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(((float *)a->data)[i] - ((float *)b->data)[i]) / (scale + 1e-30));
    if (!(worst <= 1e-5)) {
        fprintf(stderr, "length %d: fused and unfused attention differ (%.3g)\n", L, worst);
        return -1;
    }
    Timer tf = { run, &f, 0 }, tu = { run, &u, 0 };
    double mf, mu;
    bench_pair(&tf, &tu, reps, &mf, &mu);
    printf("%5d  %-6s  %9.3f  %9.3f  %6.2f\n", L, causal ? "causal" : "full", 1e3 * mf, 1e3 * mu, mu / mf);
    fflush(stdout);
    side_free(&f);
    side_free(&u);
    return 0;
}

int main(int argc, char **argv)
{
    int reps = 7, threads = 2;
    if (bench_args(argc, argv, "attention_bench", &reps, &threads))
        return 2;
    vamos_set_threads(threads);
    printf("# attention, batch 1, 8 heads of 64, %d threads: ms, medians of %d; ratio = unfused / fused\n", threads,
           reps);
    printf("# len  mask       fused    unfused   ratio\n");
    static const int lens[] = { 16, 64, 256, 1024 };
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 4; i++)
            if (bench(lens[i], c == 1, reps))
                return 1;
    return 0;
}
