/* side.h - one side of a fused-against-unfused benchmark: a model whose
 * encoder is compiled by the JIT with or without the fusion passes, run
 * once on sequences of length L (batch 1, token 1, weights from a sine),
 * every node's value kept as the buffers its kernels are then timed on.
 * The caller picks the timed nodes [from, to]. */
#ifndef VAMOS_BENCH_SIDE_H
#define VAMOS_BENCH_SIDE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "bench.h"
#include "compile.h"
#include "jit.h"

typedef struct Side {
    Arena a;
    Model *m;
    Jit *j;
    Tensor *all;     /* every node's value after one run: the buffers */
    void **buf;
    int from, to;    /* the timed nodes: [from, to] */
    int L;           /* the sequence length */
} Side;

static inline int side_setup(Side *s, const char *text, bool fuse, int L)
{
    Diag d;
    diag_init(&d, stderr);
    s->L = L;
    s->m = compile_text(&s->a, &d, "bench.vam", text, (long)strlen(text), fuse ? NULL : "incremental");
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
    int rc = jit_run_all(s->j, s->m, g, params, &in, s->all, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    s->buf = calloc((size_t)g->n, sizeof *s->buf);
    for (int i = 0; i < g->n; i++)
        s->buf[i] = s->all[i].data;
    s->from = s->to = -1;
    for (int i = 0; i < s->m->nparams; i++)
        free(params[i]);
    free(params);
    free(tok);
    return rc;
}

/* The timed kernels once (a Timer's function). */
static inline void side_run(void *ctx)
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

/* The largest relative difference of the two sides' last timed values. */
static inline double side_diff(const Side *f, const Side *u)
{
    const Tensor *a = &f->all[f->to], *b = &u->all[u->to];
    double worst = 0, scale = 0;
    int64_t n = rt_numel(&a->shape);
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(((float *)b->data)[i]));
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(((float *)a->data)[i] - ((float *)b->data)[i]) / (scale + 1e-30));
    return worst;
}

/* The two sides' answers first (within 1e-5, else a message naming
 * `what` and -1), then their medians of reps samples, alternating. */
static inline int side_time_pair(Side *f, Side *u, const char *what, int reps, double *mf, double *mu)
{
    double worst = side_diff(f, u);
    if (!(worst <= 1e-5)) {
        fprintf(stderr, "length %d: fused and unfused %s differ (%.3g)\n", f->L, what, worst);
        return -1;
    }
    Timer tf = { side_run, f, 0 }, tu = { side_run, u, 0 };
    bench_pair(&tf, &tu, reps, mf, mu);
    return 0;
}

static inline void side_free(Side *s)
{
    for (int i = 0; s->all && i < s->m->enc.n; i++)
        tensor_free(&s->all[i]);
    free(s->all);
    free(s->buf);
    jit_free(s->j);
    arena_free(&s->a);
}

#endif
