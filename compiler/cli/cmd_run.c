/* cmd_run.c - `vamos run`: translate a sentence with the JIT (or the
 * reference interpreter). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "interp.h"
#include "passes.h"
#include "vamos/weights.h"

static const char usage[] =
    "usage: vamos run MODEL.vam -w W.safetensors \"SENTENCE\" [options]\n\n"
    "Translate SENTENCE (greedy decoding) with native code compiled by LLVM's JIT.\n"
    "options:\n"
    "  -w, --weights FILE   the model's weights (safetensors)\n"
    "  --interp             run the reference interpreter instead of the JIT\n"
    "  --max-len N          stop after N target words (default: 2 * source + 10)\n"
    "  --threads N          run kernels on N threads (default: one per CPU)\n"
    "  --dump FILE          also write the encoder output and the decoder output at\n"
    "                       every target position to FILE (safetensors: tensors\n"
    "                       src, tgt, encoder.output, decoder.output)\n"
    "  --target \"WORDS\"     with --dump: feed these target words to the decoder\n"
    "                       instead of the greedy translation\n"
    "  --db FILE            the tuning database (default: see vamos tune --help)\n"
    "  --no-tune            ignore the tuning database: default schedules\n"
    "  --quantize int8      run the matmul and linear weights as int8, one scale per\n"
    "                       output column, and the activations too (as vamos build\n"
    "                       --quantize int8 does); int8w: the weights only\n";


/* Words of ids, space-separated. */
static void print_words(FILE *out, const Vocab *v, const int32_t *ids, int n)
{
    char *s = detokenize_ids(v, ids, n);
    fprintf(out, "%s\n", s ? s : "");
    free(s);
}

/* --dump: encoder output and decoder output for the given target ids. */
static int dump(const Engine *eng, const Model *m, float *const *params, const char *path, const int32_t *src, int n,
                const int32_t *tgt_words, int t)
{
    char err[512];
    int32_t *tgt = malloc(sizeof(int32_t) * (size_t)(t + 1));
    if (!tgt)
        return 1;
    tgt[0] = m->tgt->bos >= 0 ? m->tgt->bos : m->tgt->eos;
    memcpy(tgt + 1, tgt_words, sizeof(int32_t) * (size_t)t);
    int32_t sl = n, tl = t + 1;
    Tensor enc = { 0 }, dec = { 0 };
    int rc = run_batch(eng, m, params, 1, src, &sl, n, tgt, &tl, t + 1, &enc, &dec, err, sizeof err);
    if (rc == 0) {
        vamos_tensor ts[4] = {
            { .name = "src", .dtype = VAMOS_I32, .rank = 2, .shape = { 1, n }, .data = src, .nbytes = 4 * (size_t)n },
            { .name = "tgt", .dtype = VAMOS_I32, .rank = 2, .shape = { 1, t + 1 }, .data = tgt, .nbytes = 4 * (size_t)(t + 1) },
            { .name = "encoder.output", .dtype = VAMOS_F32, .rank = enc.shape.rank, .data = enc.data,
              .nbytes = 4 * (size_t)rt_numel(&enc.shape) },
            { .name = "decoder.output", .dtype = VAMOS_F32, .rank = dec.shape.rank, .data = dec.data,
              .nbytes = 4 * (size_t)rt_numel(&dec.shape) },
        };
        memcpy(ts[2].shape, enc.shape.dim, sizeof enc.shape.dim);
        memcpy(ts[3].shape, dec.shape.dim, sizeof dec.shape.dim);
        const char *meta[] = { "vamos.model", m->name };
        rc = vamos_weights_save(path, ts, 4, meta, 1, err, sizeof err);
    }
    if (rc)
        fprintf(stderr, "vamos: error: %s\n", err);
    tensor_free(&enc);
    tensor_free(&dec);
    free(tgt);
    return rc ? 1 : 0;
}

static int run_cmd(Arena *a, const Opts *o)
{
    if (!o->weights)
        return usage_error(usage, "%s", "missing -w W.safetensors");
    if (!o->sentence)
        return usage_error(usage, "%s", "missing the sentence to translate");
    if (o->target && !o->dump)
        return usage_error(usage, "%s", "--target needs --dump");
    if (!quantize_ok(o))
        return usage_error(usage, "--quantize takes int8 or int8w, not '%s'", o->quantize);
    if (o->quantize && o->interp)
        return usage_error(usage, "%s", "--quantize runs compiled kernels; the interpreter has none");
    Bound b;
    Model *m = load_with_weights(a, o, &b);
    if (!m)
        return 1;
    if (!o->interp && apply_tuning(m, o)) {
        bound_free(&b);
        return 1;
    }
    char err[512];
    Engine eng = { 0 };
    if (!o->interp && !(eng.jit = jit_compile(m, err, sizeof err))) {
        fprintf(stderr, "vamos: error: %s\n", err);
        bound_free(&b);
        return 1;
    }
    enum { MAX_WORDS = 4096 };
    int32_t *src = arena_alloc(a, sizeof(int32_t) * MAX_WORDS), *out = arena_alloc(a, sizeof(int32_t) * MAX_WORDS);
    int rc = 0, n = tokenize(m->src, o->sentence, src, MAX_WORDS, err, sizeof err), t = 0;
    if (n < 0) {
        fprintf(stderr, "vamos: error: %s\n", err);
        rc = 1;
    } else if (n > 0) {
        int max_len = o->max_len ? o->max_len : 2 * n + 10;
        if (max_len > MAX_WORDS)
            max_len = MAX_WORDS;
        if (o->target)
            t = tokenize(m->tgt, o->target, out, MAX_WORDS, err, sizeof err);
        else
            t = greedy_decode(&eng, m, b.params, src, n, max_len, out, err, sizeof err);
        if (t < 0) {
            fprintf(stderr, "vamos: error: %s\n", err);
            rc = 1;
        }
    }
    if (rc == 0) {
        print_words(stdout, m->tgt, out, t);
        if (o->dump && n > 0)
            rc = dump(&eng, m, b.params, o->dump, src, n, out, t);
    }
    jit_free(eng.jit);
    bound_free(&b);
    return rc;
}

int cmd_run_main(int argc, char **argv)
{
    return cli_run(argc, argv, usage, "wIMjDTBNq", true, run_cmd);
}
