/* test_golden.c - the reference interpreter against PyTorch.
 *
 * tests/golden/make_golden.py ran an independent PyTorch implementation of
 * each model on a padded batch and committed its outputs; here the same
 * model file, weights and inputs go through the whole Vamos pipeline and the
 * interpreter. Tolerance, elementwise: |a - b| <= 1e-4 * (|b| + rms(b)).
 */
#include <criterion/criterion.h>
#include <math.h>

#include "arena.h"
#include "compile.h"

#define TOL 1e-4

static const vamos_tensor *need(const vamos_weights *w, const char *name)
{
    const vamos_tensor *t = vamos_weights_find(w, name);
    cr_assert(t, "golden file lacks '%s'", name);
    return t;
}

/* Compare got (shape from the interpreter) with the golden tensor. */
static void compare(const char *what, const Tensor *got, const vamos_tensor *want)
{
    cr_assert_eq(got->shape.rank, want->rank, "%s: rank %d vs %d", what, got->shape.rank, want->rank);
    for (int i = 0; i < want->rank; i++)
        cr_assert_eq(got->shape.dim[i], want->shape[i], "%s: dim %d", what, i);
    const float *a = got->data, *b = want->data;
    size_t n = want->nbytes / 4;
    double ss = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        ss += (double)b[i] * b[i];
    double rms = sqrt(ss / (double)n);
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)a[i] - b[i]) / (fabs(b[i]) + rms);
        cr_assert(err <= TOL, "%s[%zu]: vamos %.9g, pytorch %.9g (relative error %.3g)", what, i, a[i], b[i], err);
        worst = err > worst ? err : worst;
    }
    cr_log_info("%s: %zu values, worst relative error %.3g", what, n, worst);
}

static void golden(const char *model, const char *weights, const char *gold)
{
    Arena a = { 0 };
    Diag d;
    diag_init(&d, stderr);
    Model *m = compile_file(&a, &d, model, NULL);
    cr_assert(m, "%s does not compile", model);
    Bound b;
    cr_assert_eq(bind_weights(m, weights, &b, stderr), 0);
    char err[512];
    vamos_weights *g = vamos_weights_load(gold, 0, err, sizeof err);
    cr_assert(g, "%s", err);
    const vamos_tensor *src = need(g, "src"), *tgt = need(g, "tgt");
    int batch = (int)src->shape[0];
    Tensor enc = { 0 }, dec = { 0 };
    int rc = run_batch(NULL, m, b.params, batch, src->data, need(g, "src_len")->data, (int)src->shape[1],
                       tgt->data, need(g, "tgt_len")->data, (int)tgt->shape[1], &enc, &dec, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    compare("encoder.output", &enc, need(g, "encoder.output"));
    compare("decoder.output", &dec, need(g, "decoder.output"));
    tensor_free(&enc);
    tensor_free(&dec);
    vamos_weights_free(g);
    bound_free(&b);
    arena_free(&a);
}

Test(golden, statquest)
{
    golden("models/statquest.vam", "models/statquest.safetensors", "tests/golden/statquest.golden.safetensors");
}

Test(golden, small_multilayer_multihead_padded)
{
    golden("tests/golden/small.vam", "tests/golden/small.safetensors", "tests/golden/small.golden.safetensors");
}

/* The comparison itself must be able to fail: a perturbed weight must. */
Test(golden, detects_a_wrong_weight)
{
    Arena a = { 0 };
    Diag d;
    diag_init(&d, stderr);
    Model *m = compile_file(&a, &d, "tests/golden/small.vam", NULL);
    cr_assert(m);
    Bound b;
    cr_assert_eq(bind_weights(m, "tests/golden/small.safetensors", &b, stderr), 0);
    char err[512];
    vamos_weights *g = vamos_weights_load("tests/golden/small.golden.safetensors", 0, err, sizeof err);
    cr_assert(g);
    /* copy one weight and nudge it by 1% */
    int p = m->nparams / 2;
    int64_t n = shape_numel_const(&m->params[p].shape);
    float *copy = malloc((size_t)n * 4);
    memcpy(copy, b.params[p], (size_t)n * 4);
    copy[0] *= 1.01f;
    b.params[p] = copy;
    const vamos_tensor *src = need(g, "src"), *tgt = need(g, "tgt");
    Tensor enc = { 0 }, dec = { 0 };
    cr_assert_eq(run_batch(NULL, m, b.params, (int)src->shape[0], src->data, need(g, "src_len")->data,
                           (int)src->shape[1], tgt->data, need(g, "tgt_len")->data, (int)tgt->shape[1],
                           &enc, &dec, err, sizeof err), 0);
    const vamos_tensor *want = need(g, "decoder.output");
    const float *x = dec.data, *y = want->data;
    double worst = 0;
    for (size_t i = 0; i < want->nbytes / 4; i++)
        worst = fmax(worst, fabs((double)x[i] - y[i]));
    cr_assert_gt(worst, 1e-4, "a 1%% change of %s left the output within %g", m->params[p].name, worst);
    free(copy);
    tensor_free(&enc);
    tensor_free(&dec);
    vamos_weights_free(g);
    bound_free(&b);
    arena_free(&a);
}
