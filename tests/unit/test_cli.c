/* test_cli.c - the vamos command line, run as a user would run it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <unistd.h>

#include "helpers.h"

static int vamos(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vamos(char **out, const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s", vamos_bin(), args);
    return run_cmd(cmd, out);
}

#define SQ "models/statquest.vam -w models/statquest.safetensors"

Test(cli, statquest_translates)
{
    char *out;
    cr_assert_eq(vamos(&out, "run " SQ " \"Let's go\""), 0, "%s", out);
    cr_assert_str_eq(out, "vamos\n");
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " \"to go\""), 0, "%s", out);
    cr_assert_str_eq(out, "ir\n");
    free(out);
}

Test(cli, unknown_word_and_empty_sentence)
{
    char *out;
    cr_assert_eq(vamos(&out, "run " SQ " \"let's dance\""), 1);
    cr_assert(strstr(out, "'dance' is not in vocabulary 'src'"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " \"   \""), 0);
    cr_assert_str_eq(out, "\n");
    free(out);
}

Test(cli, usage_errors_exit_2)
{
    char *out;
    cr_assert_eq(vamos(&out, "%s", ""), 2);
    free(out);
    cr_assert_eq(vamos(&out, "frobnicate"), 2);
    cr_assert(strstr(out, "unknown command 'frobnicate'"));
    free(out);
    cr_assert_eq(vamos(&out, "run models/statquest.vam \"Let's go\""), 2);
    cr_assert(strstr(out, "missing -w"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "check --bogus models/statquest.vam"), 2);
    cr_assert(strstr(out, "unknown option '--bogus'"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "init models/statquest.vam -o /tmp/x.safetensors --seed abc"), 2);
    free(out);
    cr_assert_eq(vamos(&out, "check"), 2);
    free(out);
}

Test(cli, help_on_every_command)
{
    const char *cmds[] = { "check", "graph", "init", "run" };
    for (size_t i = 0; i < 4; i++) {
        char *out;
        cr_assert_eq(vamos(&out, "%s --help", cmds[i]), 0);
        cr_assert(strstr(out, "usage: vamos"), "%s", out);
        free(out);
    }
    char *out;
    cr_assert_eq(vamos(&out, "--help"), 0);
    cr_assert(strstr(out, "commands:"));
    free(out);
}

Test(cli, check_and_graph)
{
    char *out;
    cr_assert_eq(vamos(&out, "check models/base.vam"), 0, "%s", out);
    cr_assert(strstr(out, "model 'base' is valid: 256 weights"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "graph models/statquest.vam"), 0);
    cr_assert(strstr(out, "encoder.self_attn.q.w [2, 2]"), "%s", out);
    cr_assert(strstr(out, "= pad_mask"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "graph --dot models/statquest.vam"), 0);
    cr_assert(!strncmp(out, "digraph \"statquest\" {", 21), "%s", out);
    cr_assert(strstr(out, "subgraph cluster_decoder"));
    free(out);
    cr_assert_eq(vamos(&out, "check /nonexistent.vam"), 1);
    cr_assert(strstr(out, "cannot open '/nonexistent.vam'"));
    free(out);
}

/* Two inits with one seed are identical; another seed differs. */
Test(cli, init_is_deterministic)
{
    char *out;
    cr_assert_eq(vamos(&out, "init tests/golden/small.vam -o /tmp/vamos-init-a.safetensors --seed 7"), 0, "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "init tests/golden/small.vam -o /tmp/vamos-init-b.safetensors --seed 7"), 0);
    free(out);
    cr_assert_eq(vamos(&out, "init tests/golden/small.vam -o /tmp/vamos-init-c.safetensors --seed 8"), 0);
    free(out);
    size_t la = 0, lb = 0, lc = 0;
    char *a = read_all("/tmp/vamos-init-a.safetensors", &la), *b = read_all("/tmp/vamos-init-b.safetensors", &lb),
         *c = read_all("/tmp/vamos-init-c.safetensors", &lc);
    cr_assert(a && b && c);
    cr_assert(la == lb && !memcmp(a, b, la));
    cr_assert(la == lc && memcmp(a, c, la));
    /* gains are ones, biases zeros, matrices within the Glorot limit */
    char err[256];
    vamos_weights *w = vamos_weights_load("/tmp/vamos-init-a.safetensors", 0, err, sizeof err);
    cr_assert(w, "%s", err);
    const vamos_tensor *g = vamos_weights_find(w, "encoder.layers.0.norm1.gain");
    const vamos_tensor *bias = vamos_weights_find(w, "encoder.layers.0.ff.fc1.b");
    const vamos_tensor *q = vamos_weights_find(w, "encoder.layers.0.self_attn.q.w");
    cr_assert(g && bias && q);
    for (int i = 0; i < 8; i++)
        cr_assert(((const float *)g->data)[i] == 1.0f && ((const float *)bias->data)[i] == 0.0f);
    float lim = sqrtf(6.0f / 16.0f), maxabs = 0;
    for (int i = 0; i < 64; i++)
        maxabs = fmaxf(maxabs, fabsf(((const float *)q->data)[i]));
    cr_assert(maxabs <= lim && maxabs > lim / 2, "max |w| %g, limit %g", maxabs, lim);
    cr_assert_str_eq(vamos_weights_meta(w, "vamos.model"), "small");
    vamos_weights_free(w);
    free(a), free(b), free(c);
}

Test(cli, weights_that_do_not_fit_are_named)
{
    char *out;
    cr_assert_eq(vamos(&out, "run models/statquest.vam -w tests/golden/small.safetensors \"to go\""), 1);
    cr_assert(strstr(out, "tensor 'encoder.self_attn.q.w' is missing (the model declares [2, 2])"), "%s", out);
    free(out);
    /* the same names with other shapes: statquest with d = 3 */
    char *src = read_all("models/statquest.vam", NULL);
    char *p = strstr(src, "const d = 2");
    cr_assert(p);
    p[10] = '3';
    FILE *f = fopen("/tmp/vamos-sq3.vam", "w");
    fputs(src, f);
    fclose(f);
    free(src);
    cr_assert_eq(vamos(&out, "run /tmp/vamos-sq3.vam -w models/statquest.safetensors \"to go\""), 1);
    cr_assert(strstr(out, "tensor 'encoder.embed.table' has shape [4, 2], but the model declares [4, 3]"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "init /tmp/vamos-sq3.vam -o /tmp/vamos-sq3.safetensors"), 0);
    free(out);
    /* a file with more tensors than the model: small's weights for small is fine, extra is not */
    cr_assert_eq(vamos(&out, "run models/statquest.vam -w /tmp/vamos-sq3.safetensors \"to go\""), 1);
    cr_assert(strstr(out, "has shape [4, 3], but the model declares [4, 2]"), "%s", out);
    free(out);
}

/* One flipped data byte is caught by the checksum, naming the tensor. */
Test(cli, corrupted_weights)
{
    size_t n;
    char *w = read_all("models/statquest.safetensors", &n);
    cr_assert(w);
    w[n - 3] ^= 0x10;
    FILE *f = fopen("/tmp/vamos-bad.safetensors", "wb");
    fwrite(w, 1, n, f);
    fclose(f);
    char *out;
    cr_assert_eq(vamos(&out, "run models/statquest.vam -w /tmp/vamos-bad.safetensors \"to go\""), 1);
    cr_assert(strstr(out, "checksum mismatch"), "%s", out);
    cr_assert(strstr(out, "tensor 'decoder.linear.b'"), "%s", out);
    free(out);
    f = fopen("/tmp/vamos-bad.safetensors", "wb");
    fwrite(w, 1, n / 2, f);
    fclose(f);
    cr_assert_eq(vamos(&out, "run models/statquest.vam -w /tmp/vamos-bad.safetensors \"to go\""), 1);
    cr_assert(strstr(out, "vamos: error: /tmp/vamos-bad.safetensors:"), "%s", out);
    free(out);
    free(w);
}

/* --dump writes what the golden files hold, for a given target. */
Test(cli, dump_matches_the_golden_file)
{
    char *out;
    cr_assert_eq(vamos(&out, "run " SQ " \"let's go\" --dump /tmp/vamos-dump.safetensors --target vamos"), 0, "%s", out);
    free(out);
    char err[256];
    vamos_weights *d = vamos_weights_load("/tmp/vamos-dump.safetensors", 0, err, sizeof err);
    vamos_weights *g = vamos_weights_load("tests/golden/statquest.golden.safetensors", 0, err, sizeof err);
    cr_assert(d && g, "%s", err);
    const vamos_tensor *dd = vamos_weights_find(d, "decoder.output"), *gd = vamos_weights_find(g, "decoder.output");
    cr_assert(dd && gd);
    cr_assert_eq(dd->shape[1], 2);
    cr_assert_eq(dd->shape[2], 4);
    /* golden row 0 is "let's go" with decoder input [<eos>, vamos] */
    for (int i = 0; i < 8; i++) {
        float a = ((const float *)dd->data)[i], b = ((const float *)gd->data)[i];
        cr_assert(fabsf(a - b) <= 1e-4f * (fabsf(b) + 0.1f), "[%d] %g vs %g", i, a, b);
    }
    vamos_weights_free(d);
    vamos_weights_free(g);
}

/* A decoder that never reads the encoder's output: its step keeps no
 * state, and the JIT and the runtime must still accept the model (the
 * empty per-sentence graph once broke the memory plan and the blob). */
Test(cli, decoder_without_memory_runs)
{
    FILE *f = fopen("/tmp/vamos-nomem.vam", "w");
    cr_assert(f);
    fputs("model nomem {\n"
          "  vocab src = [\"<eos>\", \"a\"]\n"
          "  vocab tgt = [\"<eos>\", \"b\"]\n"
          "  encoder(x: tokens<src>[b, n]) { return embed(x, 40) }\n"
          "  decoder(y: tokens<tgt>[b, m], memory: [b, n, 40]) {\n"
          "    return linear(embed(y, 8), len(tgt)) as out\n"
          "  }\n"
          "}\n", f);
    fclose(f);
    char *out;
    cr_assert_eq(vamos(&out, "init /tmp/vamos-nomem.vam -o /tmp/vamos-nomem.safetensors"), 0, "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "check /tmp/vamos-nomem.vam"), 0, "%s", out);
    cr_assert(strstr(out, "0 states"), "%s", out);
    free(out);
    int rc = vamos(&out, "run /tmp/vamos-nomem.vam -w /tmp/vamos-nomem.safetensors \"a a\"");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(!strstr(out, "error"), "%s", out);
    free(out);
}
