/* test_autodiff.c - the training graph (compiler/passes/autodiff.c).
 *
 * Gradient checks: for every differentiable primitive op, a small model
 * whose decoder runs the op on values that depend on weights; every
 * weight's gradient from the training graph (run by the reference
 * interpreter) must match central finite differences of the loss. Then
 * the compiled, fused training graph must give the interpreter's loss and
 * gradients (compiled kernels checked against the reference kernels).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>

#include "arena.h"
#include "helpers.h"
#include "train_graph.h"

#define B 2
#define N 3
#define M 3

static bool tied;   /* model_text: the decoder's table is also its output layer */
static const char *tgt_vocab = "[\"<eos>\", \"x\", \"y\", \"z\", \"w\"]";   /* model_text's */

/* A model whose decoder computes `expr` of h = embed(y, 4) (+ memory's
 * mean over the source for a path through the encoder), then the logits
 * (a linear layer, or with `tied` the embedding table transposed). */
static char *model_text(const char *expr)
{
    static char text[4096];
    snprintf(text, sizeof text,
             "model t {\n"
             "  vocab src = [\"<eos>\", \"a\", \"b\", \"c\"]\n"
             "  vocab tgt = %s\n"
             "  encoder(x: tokens<src>[b, n]) {\n"
             "    return embed(x, 4) as emb\n"
             "  }\n"
             "  decoder(y: tokens<tgt>[b, m], memory: [b, n, 4]) {\n"
             "%s"
             "    h = %s + mean(memory, axis: 1)\n"
             "    h = %s\n"
             "    return %s\n"
             "  }\n"
             "}\n",
             tgt_vocab, tied ? "    param table[len(tgt), 4]\n" : "", tied ? "gather(table, y)" : "embed(y, 4)", expr,
             tied ? "h @ transpose(table)" : "linear(h, len(tgt)) as out");
    return text;
}

static const int32_t src[B * N] = { 1, 2, 3, 3, 1, 0 };
static const int32_t src_len[B] = { 3, 2 };
static const int32_t tgt_in[B * M] = { 0, 1, 2, 0, 3, 0 };
static const int32_t tgt_len[B] = { 3, 2 };
static const int32_t labels[B * M] = { 1, 2, 0, 3, 0, -1 };
static const TrainBatch batch = { B, N, M, src, src_len, tgt_in, tgt_len, labels };

typedef struct Weights {
    int n;
    float **p, **g, **g2;
} Weights;

/* Deterministic weights in [-0.5, 0.5) (gains near 1). */
static Weights weights_for(const Model *m)
{
    Weights w = { .n = m->nparams };
    w.p = calloc((size_t)w.n, sizeof *w.p);
    w.g = calloc((size_t)w.n, sizeof *w.g);
    w.g2 = calloc((size_t)w.n, sizeof *w.g2);
    uint32_t s = 12345;
    for (int i = 0; i < w.n; i++) {
        int64_t k = shape_numel_const(&m->params[i].shape);
        w.p[i] = malloc(sizeof(float) * (size_t)k);
        w.g[i] = malloc(sizeof(float) * (size_t)k);
        w.g2[i] = malloc(sizeof(float) * (size_t)k);
        for (int64_t j = 0; j < k; j++) {
            s = s * 1664525u + 1013904223u;
            float u = (float)(s >> 8) / 16777216.0f - 0.5f;
            w.p[i][j] = m->params[i].init == INIT_ONES ? 1.0f + 0.3f * u : u;
        }
    }
    return w;
}

static void weights_free(Weights *w)
{
    for (int i = 0; i < w->n; i++)
        free(w->p[i]), free(w->g[i]), free(w->g2[i]);
    free(w->p), free(w->g), free(w->g2);
}

static Model *compile_train(Arena *a, const char *expr)
{
    char *diags = NULL;
    int errors;
    Model *m = compile_capture_after(a, "t.vam", model_text(expr), "train", &diags, &errors);
    cr_assert(m && !errors, "%s: %s", expr, diags);
    free(diags);
    return m;
}

static double loss_of(TrainGraph *t, Weights *w, uint64_t seed)
{
    double loss;
    char err[256];
    cr_assert_eq(train_graph_run(t, w->p, &batch, seed, w->g2, &loss, err, sizeof err), 0, "%s", err);
    return loss;
}

/* Every weight element's gradient against (L(w + h) - L(w - h)) / 2h. */
static void check_gradients_h(const char *expr, float h)
{
    Arena a = { 0 };
    Model *m = compile_train(&a, expr);
    char err[256];
    TrainGraph *t = train_graph_new(&a, m, 0.1f, false, err, sizeof err);
    cr_assert(t, "%s: %s", expr, err);
    Weights w = weights_for(m);
    double loss;
    cr_assert_eq(train_graph_run(t, w.p, &batch, 7, w.g, &loss, err, sizeof err), 0, "%s", err);
    cr_assert(isfinite(loss) && loss > 0, "%s: loss %g", expr, loss);
    int checked = 0;
    for (int i = 0; i < w.n; i++) {
        int64_t k = shape_numel_const(&m->params[i].shape);
        for (int64_t j = 0; j < k; j++) {
            float keep = w.p[i][j];
            w.p[i][j] = keep + h;
            double up = loss_of(t, &w, 7);
            w.p[i][j] = keep - h;
            double down = loss_of(t, &w, 7);
            w.p[i][j] = keep;
            double fd = (up - down) / (2.0 * h), an = w.g[i][j];
            cr_assert(fabs(fd - an) <= 2e-3 + 2e-2 * fabs(fd), "%s: d loss / d %s[%lld]: autodiff %g, finite differences %g",
                      expr, m->params[i].name, (long long)j, an, fd);
            checked++;
        }
    }
    cr_assert_gt(checked, 50);
    weights_free(&w);
    train_graph_free(t);
    arena_free(&a);
}

static void check_gradients(const char *expr) { check_gradients_h(expr, 1e-2f); }

/* Each differentiable primitive op, on weight-dependent values (the
 * matmul, transpose, reshape, softmax's max, exp, sum and div, and the
 * padding and causal masks come through attention). */
Test(autodiff, add_sub_mul_neg) { check_gradients("h * h - (-h) + 0.5"); }
Test(autodiff, div) { check_gradients("h / (h * h + 1.0) + 1.0 / (h * h + 2.0)"); }
/* kinks: a step small enough not to cross one */
Test(autodiff, maximum) { check_gradients_h("maximum(h, 0.1) + maximum(0.05, h * 2.0)", 2e-3f); }
Test(autodiff, pow) { check_gradients("pow(h * h + 1.0, 1.5) + pow(2.0, h)"); }
Test(autodiff, exp_log) { check_gradients("exp(h) + log(h * h + 1.0)"); }
Test(autodiff, sqrt_rsqrt) { check_gradients("sqrt(h * h + 1.0) + rsqrt(h * h + 1.0)"); }
Test(autodiff, tanh_erf) { check_gradients("tanh(h) + erf(h)"); }
Test(autodiff, sin_cos) { check_gradients("sin(h) + cos(2.0 * h)"); }
Test(autodiff, abs_floor) { check_gradients_h("abs(h) + floor(h * 0.0 + 3.0) * h", 2e-3f); }
Test(autodiff, sum_mean_max) { check_gradients("h * sum(h, axis: -1) + mean(h, axis: 1) + max(h, axis: -1)"); }
Test(autodiff, reshape_transpose) { check_gradients("reshape(transpose(reshape(h, [b, m, 2, 2]), 2, 3), [b, m, 4])"); }
Test(autodiff, matmul_batched) { check_gradients("h @ transpose(h) @ h * 0.3"); }
Test(autodiff, attention) { check_gradients("h + (cross_attention(h, memory, heads: 2) as ca) + (self_attention(h, heads: 2, causal: true) as sa)"); }
Test(autodiff, layer_norm_feed_forward) { check_gradients("layer_norm(h + feed_forward(h, 8))"); }
Test(autodiff, gelu) { check_gradients("gelu(linear(h, 4))"); }
Test(autodiff, dropout) { check_gradients("dropout(h, 0.3) + dropout(h * h, 0.5)"); }

/* The compiled, fused training graph against the interpreter's. */
static void check_compiled_on(const char *expr, float smoothing, const TrainBatch *tb)
{
    Arena a = { 0 };
    Model *m = compile_train(&a, expr);
    char err[256];
    TrainGraph *ref = train_graph_new(&a, m, smoothing, false, err, sizeof err);
    cr_assert(ref, "%s", err);
    TrainGraph *jit = train_graph_new(&a, m, smoothing, true, err, sizeof err);
    cr_assert(jit, "%s", err);
    Weights w = weights_for(m);
    double l1, l2;
    cr_assert_eq(train_graph_run(ref, w.p, tb, 99, w.g, &l1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(train_graph_run(jit, w.p, tb, 99, w.g2, &l2, err, sizeof err), 0, "%s", err);
    cr_assert(fabs(l1 - l2) <= 1e-5 * fabs(l1), "%s: loss %.9g compiled, %.9g reference", expr, l2, l1);
    for (int i = 0; i < w.n; i++) {
        int64_t k = shape_numel_const(&m->params[i].shape);
        double scale = 0;
        for (int64_t j = 0; j < k; j++)
            scale = fmax(scale, fabs(w.g[i][j]));
        for (int64_t j = 0; j < k; j++)
            cr_assert(fabs(w.g[i][j] - w.g2[i][j]) <= 1e-4 * scale + 1e-7, "%s: %s[%lld]: compiled %g, reference %g",
                      expr, m->params[i].name, (long long)j, w.g2[i][j], w.g[i][j]);
    }
    weights_free(&w);
    train_graph_free(ref);
    train_graph_free(jit);
    arena_free(&a);
}

static void check_compiled(const char *expr, float smoothing) { check_compiled_on(expr, smoothing, &batch); }

/* A batch of R sentences of L tokens (R * L ids at most), pseudo-random
 * from seed z: source lengths 1 + r % L, target lengths L - r % cut (the
 * labels past them -1). The ids live in storage the caller keeps. */
enum { BIG_MAX = 26 * 30 };
typedef struct BigBatch { int32_t s[BIG_MAX], t[BIG_MAX], lab[BIG_MAX], sl[BIG_MAX], tl[BIG_MAX]; } BigBatch;

static TrainBatch big_batch(BigBatch *bb, int R, int L, uint32_t z, int cut)
{
    cr_assert(R * L <= BIG_MAX);
    for (int i = 0; i < R * L; i++) {
        z = z * 1664525u + 1013904223u;
        bb->s[i] = (int32_t)(z >> 8) % 4, bb->t[i] = (int32_t)(z >> 12) % 5, bb->lab[i] = (int32_t)(z >> 16) % 5;
    }
    for (int r = 0; r < R; r++) {
        bb->sl[r] = 1 + r % L, bb->tl[r] = L - r % cut;
        for (int k = bb->tl[r]; k < L; k++)
            bb->lab[r * L + k] = -1;
    }
    return (TrainBatch){ R, L, L, bb->s, bb->sl, bb->t, bb->tl, bb->lab };
}

/* A batch of 24 x 30: 720 rows for the weights' gradients (matmul_tn
 * works through them in chunks; this crosses several and ends in a part). */
Test(autodiff, compiled_matches_reference_on_a_large_batch)
{
    static BigBatch bb;
    TrainBatch big = big_batch(&bb, 24, 30, 7, 7);
    check_compiled_on("layer_norm(h + feed_forward(h, 8)) + (self_attention(h, heads: 2, causal: true) as sa)", 0.1f,
                      &big);
}

/* Weights of 1,100 columns and 1,100 rows: matmul_tn's gradients of
 * [4, 1100] (35 column tiles: two groups of 16 and one of 3, the last tile
 * 12 columns wide) and [1100, 4] (row blocks that end in a part), over 720
 * rows (chunks of 128 that end in a part). */
Test(autodiff, compiled_matches_reference_with_wide_weights)
{
    static BigBatch bb;
    TrainBatch big = big_batch(&bb, 24, 30, 5, 7);
    check_compiled_on("layer_norm(h + feed_forward(h, 1100))", 0.1f, &big);
}

/* The tied output layer of 26 sentences of 30 tokens runs in chunks of
 * 8 sentences (chunk_output.c: the last chunk is part of one); each
 * chunk's weight gradient adds to the last's, and the loss and the
 * gradient of h are written at the chunk's rows, both by the gradient's
 * kernel (the xent node its peer, with no kernel of its own). */
Test(autodiff, compiled_output_layer_in_chunks_matches_reference)
{
    static BigBatch bb;
    TrainBatch big = big_batch(&bb, 26, 30, 11, 9);
    tied = true;
    const char *expr = "layer_norm(h + feed_forward(h, 8)) + (self_attention(h, heads: 2, causal: true) as sa)";
    Arena a = { 0 };
    char err[256];
    TrainGraph *jit = train_graph_new(&a, compile_train(&a, expr), 0.1f, true, err, sizeof err);
    cr_assert(jit, "%s", err);
    cr_assert_eq(train_graph_output_chunks(jit, big.rows, big.tgt_len), 4, "the output layer runs in 4 chunks");
    train_graph_free(jit);
    Graph g = train_graph_compiled_form(&a, compile_train(&a, expr), 0.1f, err, sizeof err);
    int peers = 0;
    for (int i = 0; i < g.n; i++)
        if (g.nodes[i].op == OP_XENT_GRAD && g.nodes[i].attr.xent.peer) {
            peers++;
            cr_assert_eq(g.nodes[g.nodes[i].attr.xent.peer - 1].op, OP_XENT);
        }
    cr_assert_eq(peers, 1, "the loss and its gradient share a kernel");
    arena_free(&a);
    check_compiled_on(expr, 0.1f, &big);
    tied = false;
}

/* Attention's batched products write their results head-split and read a
 * transposed in place (fuse_heads.c), against the reference, which stores
 * every transpose. */
Test(autodiff, compiled_heads_in_place_match_reference)
{
    static BigBatch bb;
    TrainBatch big = big_batch(&bb, 6, 9, 3, 4);
    const char *expr = "layer_norm(h + (self_attention(h, heads: 2, causal: true) as sa)) + "
                       "(cross_attention(h, memory, heads: 4) as ca)";
    Arena a = { 0 };
    char err[256];
    Graph g = train_graph_compiled_form(&a, compile_train(&a, expr), 0.1f, err, sizeof err);
    cr_assert_geq(g.output, 0, "%s", err);
    int heads = 0, at = 0;
    for (int i = 0; i < g.n; i++) {
        heads += g.nodes[i].op == OP_MATMUL && g.nodes[i].attr.mm.heads;
        at += g.nodes[i].op == OP_MATMUL && g.nodes[i].attr.mm.at;
    }
    cr_assert(heads >= 4 && at >= 4, "%d results written head-split, %d products read a transposed", heads, at);
    arena_free(&a);
    check_compiled_on(expr, 0.1f, &big);
}

/* One weight read twice, by gather and (transposed, in a matmul that
 * reads it so: fuse_transpose.c) as the output layer: its gradient is
 * the sum of both uses'. */
Test(autodiff, tied_embedding_and_output_layer)
{
    tied = true;
    check_gradients("h + (self_attention(h, heads: 2, causal: true) as sa)");
    check_compiled("layer_norm(h + feed_forward(h, 8)) + (cross_attention(h, memory, heads: 2) as ca)", 0.1f);
    tied = false;
}

/* 29 logits a row: the loss's row maximum in vectors of 8 and a tail.
 * The loss and gradients must match the reference; they do not depend on
 * which shift the max gives unless exp overflows, so this checks that the
 * vector path reads and combines rows correctly (bounds, NaN-free), not the
 * max's value itself. */
Test(autodiff, compiled_matches_reference_on_a_wider_vocabulary)
{
    tgt_vocab = "29";
    check_compiled("h + (self_attention(h, heads: 2, causal: true) as sa)", 0.1f);
    check_compiled("layer_norm(h + feed_forward(h, 8))", 0.0f);
    tgt_vocab = "[\"<eos>\", \"x\", \"y\", \"z\", \"w\"]";
}

Test(autodiff, compiled_matches_reference)
{
    check_compiled("h + (cross_attention(h, memory, heads: 2) as ca) + (self_attention(h, heads: 2, causal: true) as sa)", 0.1f);
    check_compiled("layer_norm(h + feed_forward(h, 8)) + dropout(h, 0.3)", 0.0f);
    check_compiled("gelu(h) * tanh(h) + maximum(h, 0.0) * abs(h)", 0.2f);
}

/* Label smoothing 0: the loss is the summed negative log-likelihood of
 * the labels, checked from the model's own softmax. */
Test(autodiff, loss_is_the_labels_negative_log_likelihood)
{
    Arena a = { 0 };
    Model *m = compile_train(&a, "h");
    char err[256];
    TrainGraph *t = train_graph_new(&a, m, 0.0f, false, err, sizeof err);
    cr_assert(t, "%s", err);
    Weights w = weights_for(m);
    double loss;
    cr_assert_eq(train_graph_run(t, w.p, &batch, 1, w.g, &loss, err, sizeof err), 0, "%s", err);
    /* by hand: h = emb[y] + mean over the valid source of emb[x]... the
     * mean covers every source position (padding included), as the model says */
    int iemb = -1, itab = -1, iw = -1, ib = -1;
    for (int i = 0; i < m->nparams; i++) {
        const char *nm = m->params[i].name;
        if (!strcmp(nm, "encoder.emb.table")) iemb = i;
        else if (strstr(nm, "table")) itab = i;
        else if (!strcmp(nm, "decoder.out.w")) iw = i;
        else if (!strcmp(nm, "decoder.out.b")) ib = i;
    }
    cr_assert(iemb >= 0 && itab >= 0 && iw >= 0 && ib >= 0);
    double want = 0;
    for (int r = 0; r < B; r++)
        for (int p = 0; p < M; p++) {
            if (labels[r * M + p] < 0)
                continue;
            double h[4], z[5], mx = -INFINITY, s = 0;
            for (int k = 0; k < 4; k++) {
                double mean = 0;
                for (int q = 0; q < N; q++)
                    mean += w.p[iemb][src[r * N + q] * 4 + k] / N;
                h[k] = w.p[itab][tgt_in[r * M + p] * 4 + k] + mean;
            }
            for (int v = 0; v < 5; v++) {
                z[v] = w.p[ib][v];
                for (int k = 0; k < 4; k++)
                    z[v] += h[k] * w.p[iw][k * 5 + v];
                mx = fmax(mx, z[v]);
            }
            for (int v = 0; v < 5; v++)
                s += exp(z[v] - mx);
            want -= z[labels[r * M + p]] - mx - log(s);
        }
    cr_assert(fabs(loss - want) <= 1e-5 * want, "loss %.9g, by hand %.9g", loss, want);
    weights_free(&w);
    train_graph_free(t);
    arena_free(&a);
}

/* ---------------------------------------------------- against PyTorch */

static const vamos_tensor *gold(const vamos_weights *w, const char *name)
{
    const vamos_tensor *t = vamos_weights_find(w, name);
    cr_assert(t, "small.train.golden.safetensors lacks '%s'", name);
    return t;
}

/* One training step of tests/golden/small.vam (2+2 layers, 2 heads,
 * GELU, a padded batch, label smoothing 0.1): the summed loss and every
 * weight's gradient against PyTorch's autograd in float64
 * (tests/golden/make_train_golden.py), interpreted and compiled, each
 * within 1e-4 relative: |a - b| <= 1e-4 (|b| + rms(b)) per tensor (rms(b)
 * at least 1e-2 of all gradients' rms, see below). */
static void golden_step(bool jit)
{
    Arena a = { 0 };
    Diag d;
    diag_init(&d, stderr);
    Model *m = compile_file(&a, &d, "tests/golden/small.vam", "train");
    cr_assert(m && !d.errors);
    Bound b;
    cr_assert_eq(bind_weights(m, "tests/golden/small.safetensors", &b, stderr), 0);
    char err[512];
    vamos_weights *g = vamos_weights_load("tests/golden/small.train.golden.safetensors", 0, err, sizeof err);
    cr_assert(g, "%s", err);
    const vamos_tensor *src = gold(g, "src"), *tin = gold(g, "tgt_in");
    TrainBatch tb = { (int)src->shape[0], (int)src->shape[1], (int)tin->shape[1], src->data, gold(g, "src_len")->data,
                      tin->data, gold(g, "tgt_len")->data, gold(g, "labels")->data };
    TrainGraph *t = train_graph_new(&a, m, 0.1f, jit, err, sizeof err);
    cr_assert(t, "%s", err);
    float **grads = calloc((size_t)m->nparams, sizeof *grads);
    for (int i = 0; i < m->nparams; i++)
        grads[i] = malloc(sizeof(float) * (size_t)shape_numel_const(&m->params[i].shape));
    double loss;
    cr_assert_eq(train_graph_run(t, b.params, &tb, 0, grads, &loss, err, sizeof err), 0, "%s", err);
    double want = ((const float *)gold(g, "loss")->data)[0], worst = 0;
    cr_assert(fabs(loss - want) <= 1e-4 * fabs(want), "loss %.9g, PyTorch %.9g", loss, want);
    /* the rms of every gradient: the attention key biases' gradients are
     * zero in exact arithmetic (a shift of all of a query's scores leaves
     * the softmax unchanged), so PyTorch's are rounding noise (~1e-17) and
     * their own rms is no scale; each tensor's scale is at least 1e-2 of
     * this one */
    double rms_all = 0;
    long count = 0;
    for (int i = 0; i < m->nparams; i++) {
        char name[512];
        snprintf(name, sizeof name, "grad.%s", m->params[i].name);
        const vamos_tensor *gt = gold(g, name);
        for (size_t j = 0; j < gt->nbytes / 4; j++, count++)
            rms_all += (double)((const float *)gt->data)[j] * ((const float *)gt->data)[j];
    }
    rms_all = sqrt(rms_all / (double)count);
    for (int i = 0; i < m->nparams; i++) {
        char name[512];
        snprintf(name, sizeof name, "grad.%s", m->params[i].name);
        const vamos_tensor *gt = gold(g, name);
        const float *ref = gt->data;
        int64_t k = shape_numel_const(&m->params[i].shape);
        cr_assert_eq(gt->nbytes, sizeof(float) * (size_t)k, "%s", name);
        double rms = 0;
        for (int64_t j = 0; j < k; j++)
            rms += (double)ref[j] * ref[j] / (double)k;
        rms = fmax(sqrt(rms), 1e-2 * rms_all);
        for (int64_t j = 0; j < k; j++) {
            double e = fabs(grads[i][j] - ref[j]) / (fabs(ref[j]) + rms + 1e-30);
            worst = fmax(worst, e);
            cr_assert(e <= 1e-4, "%s[%lld]: %s %g, PyTorch %g", name, (long long)j, jit ? "compiled" : "interpreted",
                      grads[i][j], ref[j]);
        }
    }
    cr_log_info("training step against PyTorch (%s): loss %.7g vs %.7g, worst gradient error %.2e",
                jit ? "compiled" : "interpreted", loss, want, worst);
    for (int i = 0; i < m->nparams; i++)
        free(grads[i]);
    free(grads);
    train_graph_free(t);
    vamos_weights_free(g);
    bound_free(&b);
    arena_free(&a);
}

Test(autodiff, golden_step_interpreted) { golden_step(false); }
Test(autodiff, golden_step_compiled) { golden_step(true); }
