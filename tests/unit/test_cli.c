/* test_cli.c - the vamos command line, run as a user would run it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <unistd.h>

#include "helpers.h"
#include "vamos/weights.h"

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
    cr_assert_eq(vamos(&out, "run " SQ " \"Let's go\" 2>/dev/null"), 0, "%s", out);
    cr_assert_str_eq(out, "vamos\n");
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " \"to go\" 2>/dev/null"), 0, "%s", out);
    cr_assert_str_eq(out, "ir\n");
    free(out);
}

Test(cli, unknown_word_and_empty_sentence)
{
    char *out;
    cr_assert_eq(vamos(&out, "run " SQ " \"let's dance\""), 1);
    cr_assert(strstr(out, "'dance' is not in vocabulary 'src'"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " \"   \" 2>/dev/null"), 0);
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

/* A command's options are its own; numbers are range-checked before they
 * are narrowed; what cannot be written, or read, is an error. */
Test(cli, options_numbers_and_io_are_checked)
{
    char *out;
    cr_assert_eq(vamos(&out, "check models/statquest.vam -o x -w y --seed 3 --interp"), 2);
    cr_assert(strstr(out, "does not take --output"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "check models/statquest.vam models/base.vam"), 2);
    cr_assert(strstr(out, "unexpected argument 'models/base.vam'"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " --max-len 4294967297 go"), 2);
    cr_assert(strstr(out, "--max-len needs an integer"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " --threads 4294967298 go"), 2);
    cr_assert(strstr(out, "--threads needs an integer"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "init models/statquest.vam -o /tmp/vamos-cli-seed.safetensors --seed -1"), 2);
    cr_assert(strstr(out, "non-negative"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " --quantize int4 go"), 2);
    cr_assert(strstr(out, "int8 or int8w"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " --quantize int8w go"), 0);   /* and says what it did */
    cr_assert(strstr(out, "activations f32 (--quantize int8w)"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " --quantize int8 go"), 0);
    cr_assert(strstr(out, "int8: ") && strstr(out, "weights"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "graph models/statquest.vam > /dev/full"), 1);
    cr_assert(strstr(out, "cannot write to standard output"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " \"Let's go\" > /dev/full"), 1);
    free(out);
    cr_assert_eq(vamos(&out, "check /tmp"), 1);
    cr_assert(strstr(out, "Is a directory"), "%s", out);
    free(out);
    /* a sentence that begins with '-': named as an option, and -- takes it */
    cr_assert_eq(vamos(&out, "run " SQ " -go"), 2);
    cr_assert(strstr(out, "unknown option '-g'") && strstr(out, "after --"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " -- \"-go\""), 1);   /* a word not in statquest's vocabulary */
    cr_assert(strstr(out, "'-go' is not in vocabulary"), "%s", out);
    free(out);
}

Test(cli, help_on_every_command)
{
    const char *cmds[] = { "check", "graph", "init", "run", "build", "tune", "vocab", "train", "eval", "average",
                           "serve", "po" };
    for (size_t i = 0; i < 12; i++) {
        char *out;
        cr_assert_eq(vamos(&out, "%s --help", cmds[i]), 0);
        cr_assert(strstr(out, "usage: vamos"), "%s", out);
        free(out);
    }
    char *out;
    cr_assert_eq(vamos(&out, "--help"), 0);
    cr_assert(strstr(out, "commands:"));
    for (size_t i = 0; i < 12; i++)   /* the dispatch table lists each */
        cr_assert(strstr(out, cmds[i]), "%s missing from:\n%s", cmds[i], out);
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
    /* --after names a stage of the pipeline's table */
    cr_assert_eq(vamos(&out, "graph models/statquest.vam --after dce"), 0);
    cr_assert(!strstr(out, "\nstep: ") && !strstr(out, "= attention"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "graph models/statquest.vam --after incremental"), 0);
    cr_assert(strstr(out, "\nstep: ") && !strstr(out, "= attention"), "the step is derived, unfused: %s", out);
    free(out);
    cr_assert_eq(vamos(&out, "graph models/statquest.vam --after fuse"), 0);
    cr_assert(strstr(out, "= attention") && !strstr(out, "(packed)"), "fused, not packed: %s", out);
    free(out);
    cr_assert_eq(vamos(&out, "graph models/statquest.vam --after plan"), 0);
    cr_assert(strstr(out, "(packed)"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "graph models/statquest.vam --after bogus 2>&1"), 2);
    cr_assert(strstr(out, "--after takes a stage (elab, fold, dce, incremental, fuse, pack, plan)"), "%s", out);
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

/* vamos tune on statquest with a small budget: its table, its records,
 * then build and run use them (and --no-tune does not); --show lists
 * them; a damaged line is reported with its number; two tuners at once
 * on one database lose nothing. */
Test(cli, tune_then_build_and_run_use_the_database, .timeout = 300)
{
    char db[128], *out;
    snprintf(db, sizeof db, "/tmp/vamos-cli-tune-%d.db", (int)getpid());
    unlink(db);
    /* a budget that measures all 6 kernels even under the sanitizers */
    cr_assert_eq(vamos(&out, "tune models/statquest.vam --budget 10 --db %s 2>/dev/null", db), 0, "%s", out);
    cr_expect(strstr(out, "default us") && strstr(out, "tuned us") && strstr(out, "speedup"), "%s", out);
    cr_expect(strstr(out, "tuned 6 of 6 kernels"), "%s", out);
    cr_expect(strstr(out, "attention [batch,1,src,2]"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "build " SQ " -o /tmp/vamos-cli-tuned-%d --db %s", (int)getpid(), db), 0, "%s", out);
    cr_expect(strstr(out, "tuning: 6 of 6 kernels tuned"), "%s", out);
    free(out);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/tmp/vamos-cli-tuned-%d \"Let's go\"", (int)getpid());
    cr_assert_eq(run_cmd(cmd, &out), 0, "%s", out);
    cr_expect_str_eq(out, "vamos\n");   /* tuned, and as correct */
    free(out);
    snprintf(cmd, sizeof cmd, "/tmp/vamos-cli-tuned-%d", (int)getpid());
    unlink(cmd);
    cr_assert_eq(vamos(&out, "run " SQ " \"Let's go\" --db %s", db), 0, "%s", out);
    cr_expect(strstr(out, "tuning: 6 of 6 kernels tuned") && strstr(out, "vamos\n"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " \"Let's go\" --db %s --no-tune", db), 0, "%s", out);
    cr_expect(strstr(out, "ignored (--no-tune)") && strstr(out, "vamos\n"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "tune --show --db %s", db), 0, "%s", out);
    cr_expect(strstr(out, "6 records") && strstr(out, "linear [batch,src,2] [2,2] [2] ->[batch,src,2] packed"), "%s",
              out);
    free(out);
    /* a damaged line: named, skipped, the rest still used */
    FILE *f = fopen(db, "a");
    fputs("v1 this line is damaged\n", f);
    fclose(f);
    cr_assert_eq(vamos(&out, "run " SQ " \"Let's go\" --db %s", db), 0, "%s", out);
    char at[160];
    snprintf(at, sizeof at, "%s:7: warning: skipped", db);
    cr_expect(strstr(out, at) && strstr(out, "tuning: 6 of 6 kernels tuned"), "%s", out);
    free(out);
    /* two tuners at once: as many records as the two say they tuned (on
     * 2 shared cores a tuner may run out of budget for a kernel) */
    unlink(db);
    snprintf(cmd, sizeof cmd,
             "(%s tune models/statquest.vam --budget 2 --db %s 2>/dev/null & "
             "%s tune models/statquest.vam --budget 2 --db %s 2>/dev/null; wait) | grep '^tuned'",
             vamos_bin(), db, vamos_bin(), db);
    cr_assert_eq(run_cmd(cmd, &out), 0, "%s", out);
    int t1 = 0, t2 = 0;
    char *second = strchr(out, '\n');
    cr_assert(second && sscanf(out, "tuned %d of 6", &t1) == 1 && sscanf(second + 1, "tuned %d of 6", &t2) == 1,
              "%s", out);
    cr_expect(t1 > 0 && t2 > 0, "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "tune --show --db %s", db), 0, "%s", out);
    char want[64];
    snprintf(want, sizeof want, "%d records", t1 + t2);
    cr_expect(strstr(out, want) && !strstr(out, "skipped"), "want %s:\n%s", want, out);
    free(out);
    unlink(db);
    /* usage */
    cr_assert_eq(vamos(&out, "tune models/statquest.vam --budget -1"), 2);
    cr_expect(strstr(out, "--budget needs"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "tune models/statquest.vam --batch 0"), 2);
    cr_expect(strstr(out, "--batch needs an integer in 1..256"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "run " SQ " --batch 4 go"), 2);   /* tune's option only */
    cr_expect(strstr(out, "does not take --batch"), "%s", out);
    free(out);
}

/* ------------------------------------------------------- training */

static const char *tiny_model =
    "model tiny {\n"
    "  vocab src = file \"tiny.src.bpe\"\n"
    "  vocab tgt = file \"tiny.tgt.bpe\"\n"
    "  encoder(x: tokens<src>[b, n]) {\n"
    "    h = dropout(embed(x, 16) + position(n, 16), 0.1)\n"
    "    return encoder_layer(h, heads: 2, hidden: 32, dropout: 0.1) as enc\n"
    "  }\n"
    "  decoder(y: tokens<tgt>[b, m], memory: [b, n, 16]) {\n"
    "    h = embed(y, 16) + position(m, 16)\n"
    "    h = decoder_layer(h, memory, heads: 2, hidden: 32, dropout: 0.1) as dec\n"
    "    return linear(h, len(tgt)) as out\n"
    "  }\n"
    "}\n";

static const char *tiny_data =
    "open the file\tabrir el archivo\n"
    "close the file\tcerrar el archivo\n"
    "no tab on this line\n"
    "open the window\tabrir la ventana\n"
    "\tan empty source\n"
    "close the window\tcerrar la ventana\n"
    "save the file\tguardar el archivo\n";

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* vocab, train (malformed lines reported, a loss curve), resume: two
 * epochs at once give the same weights as one, then a resumed second. */
Test(cli, vocab_train_resume_eval, .timeout = 600)
{
    char dir[] = "/tmp/vamos-train-XXXXXX", *out;
    cr_assert(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.tsv", dir);
    write_text(path, tiny_data);
    snprintf(path, sizeof path, "%s/tiny.vam", dir);
    write_text(path, tiny_model);
    cr_assert_eq(vamos(&out, "vocab --data %s/tiny.tsv -o %s/tiny --size 40", dir, dir), 0, "%s", out);
    cr_assert(strstr(out, "tiny.tsv:3: warning: no tab"), "%s", out);
    cr_assert(strstr(out, "tiny.tsv:5: warning: an empty source side"), "%s", out);
    free(out);
    /* nothing to learn from, nowhere to write: said before any work */
    snprintf(path, sizeof path, "%s/empty.tsv", dir);
    write_text(path, "");
    cr_assert_eq(vamos(&out, "vocab --data %s/empty.tsv -o %s/e", dir, dir), 1, "%s", out);
    cr_assert(strstr(out, "empty.tsv: no source<TAB>target pairs"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "train %s/tiny.vam -o %s/e.safetensors --data %s/tiny.tsv --dev %s/empty.tsv", dir, dir,
                       dir, dir), 1, "%s", out);
    cr_assert(strstr(out, "empty.tsv has no usable pairs"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "train %s/tiny.vam -o %s --data %s/tiny.tsv --dev %s/tiny.tsv", dir, dir, dir, dir), 1,
                 "%s", out);
    cr_assert(strstr(out, "is a directory"), "%s", out);
    free(out);
    char cmd[2048];
    cr_assert_eq(vamos(&out, "train %s/tiny.vam -o %s/a.safetensors --data %s/tiny.tsv --dev %s/tiny.tsv "
                             "--batch-tokens 12 --warmup 4 --seed 3 --epochs 2", dir, dir, dir, dir),
                 0, "%s", out);
    cr_assert(strstr(out, "train: 5 pairs (2 malformed"), "%s", out);
    cr_assert(strstr(out, "epoch 2: train loss"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "train %s/tiny.vam -o %s/b.safetensors --data %s/tiny.tsv --dev %s/tiny.tsv "
                             "--batch-tokens 12 --warmup 4 --seed 3 --epochs 1", dir, dir, dir, dir),
                 0, "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "train %s/tiny.vam -o %s/b.safetensors --data %s/tiny.tsv --dev %s/tiny.tsv "
                             "--batch-tokens 12 --warmup 4 --epochs 2 --resume %s/b.safetensors.ckpt",
                       dir, dir, dir, dir, dir),
                 0, "%s", out);
    free(out);
    size_t la = 0, lb = 0;
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    char *wa = read_all(path, &la);
    snprintf(path, sizeof path, "%s/b.safetensors", dir);
    char *wb = read_all(path, &lb);
    cr_assert(wa && wb && la == lb && !memcmp(wa, wb, la), "a resumed run's weights differ from an uninterrupted run's");
    free(wa), free(wb);
    snprintf(path, sizeof path, "%s/a.safetensors.loss.svg", dir);
    char *svg = read_all(path, NULL);
    cr_assert(svg && strstr(svg, "<svg") && strstr(svg, "<polyline"), "no loss curve");
    snprintf(path, sizeof path, "%s/b.safetensors.loss.svg", dir);
    char *svg2 = read_all(path, NULL);
    cr_assert(svg2 && !strcmp(svg, svg2), "the resumed run's loss curve differs:\n%s\n%s", svg, svg2);
    free(svg), free(svg2);
    /* a different seed trains different weights */
    cr_assert_eq(vamos(&out, "train %s/tiny.vam -o %s/c.safetensors --data %s/tiny.tsv --dev %s/tiny.tsv "
                             "--batch-tokens 12 --warmup 4 --seed 4 --epochs 2", dir, dir, dir, dir),
                 0, "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    char *wc = read_all(path, &lb);
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    wa = read_all(path, &la);
    cr_assert(wa && wc && (la != lb || memcmp(wa, wc, la)), "the seed changes nothing");
    free(wa), free(wc);
    /* eval: model + weights, then the built translator; the same scores */
    char *o1, *o2;
    cr_assert_eq(vamos(&o1, "eval %s/tiny.vam -w %s/a.safetensors %s/tiny.tsv 2>/dev/null", dir, dir, dir), 0);
    cr_assert(strstr(o1, "BLEU ") && strstr(o1, "chrF "), "%s", o1);
    cr_assert_eq(vamos(&out, "build %s/tiny.vam -w %s/a.safetensors -o %s/tiny", dir, dir, dir), 0, "%s", out);
    free(out);
    cr_assert_eq(vamos(&o2, "eval %s/tiny %s/tiny.tsv 2>/dev/null", dir, dir), 0);
    cr_assert_str_eq(o1, o2);
    free(o1), free(o2);
    /* bad input: a missing option, a bad number, a missing file */
    cr_assert_eq(vamos(&out, "train %s/tiny.vam --data %s/tiny.tsv -o x", dir, dir), 2);
    cr_assert(strstr(out, "--dev"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "train %s/tiny.vam --data %s/tiny.tsv --dev %s/tiny.tsv -o x --lr -1", dir, dir, dir), 2);
    cr_assert(strstr(out, "--lr wants a positive number"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "train %s/tiny.vam --data %s/nope.tsv --dev %s/tiny.tsv -o %s/x", dir, dir, dir, dir), 1);
    cr_assert(strstr(out, "cannot open"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* A joint vocabulary (vamos vocab --joint) shared by both sides, the
 * decoder's table tied to its output layer, as models/en-es.vam does. */
static const char *tied_model =
    "model tied {\n"
    "  vocab words = file \"tied.bpe\"\n"
    "  encoder(x: tokens<words>[b, n]) {\n"
    "    h = embed(x, 16) + position(n, 16)\n"
    "    return encoder_layer(h, heads: 2, hidden: 32) as enc\n"
    "  }\n"
    "  decoder(y: tokens<words>[b, m], memory: [b, n, 16]) {\n"
    "    param table[len(words), 16]\n"
    "    h = gather(table, y) + position(m, 16)\n"
    "    h = decoder_layer(h, memory, heads: 2, hidden: 32) as dec\n"
    "    return h @ transpose(table)\n"
    "  }\n"
    "}\n";

/* Joint vocabulary, a tied model trained, checkpoint averaging, and eval
 * of two data files in one run. */
Test(cli, joint_vocab_average_eval, .timeout = 600)
{
    char dir[] = "/tmp/vamos-avg-XXXXXX", *out;
    cr_assert(mkdtemp(dir));
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/tiny.tsv", dir);
    write_text(path, tiny_data);
    snprintf(path, sizeof path, "%s/tied.vam", dir);
    write_text(path, tied_model);
    cr_assert_eq(vamos(&out, "vocab --data %s/tiny.tsv -o %s/tied --size 80 --joint 2>/dev/null", dir, dir), 0, "%s", out);
    cr_assert(strstr(out, "tied.bpe"), "%s", out);
    free(out);
    /* one vocabulary holds both languages' words */
    snprintf(path, sizeof path, "%s/tied.bpe", dir);
    char *bpe = read_all(path, NULL);
    cr_assert(bpe && strstr(bpe, "\n▁file\n") && strstr(bpe, "\n▁archivo\n"), "%s", bpe ? bpe : "(none)");
    free(bpe);
    for (int seed = 1; seed <= 2; seed++) {
        cr_assert_eq(vamos(&out, "train %s/tied.vam -o %s/w%d.safetensors --data %s/tiny.tsv --dev %s/tiny.tsv "
                                 "--batch-tokens 12 --warmup 4 --seed %d --epochs 2 --keep 1 2>&1",
                           dir, dir, seed, dir, dir, seed),
                     0, "%s", out);
        free(out);
    }
    /* --keep 1: the last epoch's weights beside the final ones, no older */
    snprintf(path, sizeof path, "%s/w1.safetensors.epoch2", dir);
    cr_assert_eq(access(path, R_OK), 0, "no %s", path);
    snprintf(path, sizeof path, "%s/w1.safetensors.epoch1", dir);
    cr_assert_neq(access(path, F_OK), 0, "%s was not removed", path);
    cr_assert_eq(vamos(&out, "average -o %s/avg.safetensors %s/w1.safetensors %s/w2.safetensors", dir, dir, dir), 0,
                 "%s", out);
    cr_assert(strstr(out, "the mean of 2 weight files"), "%s", out);
    free(out);
    char err[256], p1[512], p2[512], pa[512];
    snprintf(p1, sizeof p1, "%s/w1.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/w2.safetensors", dir);
    snprintf(pa, sizeof pa, "%s/avg.safetensors", dir);
    vamos_weights *w1 = vamos_weights_load(p1, 0, err, sizeof err), *w2 = vamos_weights_load(p2, 0, err, sizeof err);
    vamos_weights *wa = vamos_weights_load(pa, 0, err, sizeof err);
    cr_assert(w1 && w2 && wa, "%s", err);
    cr_assert_eq(vamos_weights_count(wa), vamos_weights_count(w1));
    for (int i = 0; i < vamos_weights_count(wa); i++) {
        const vamos_tensor *a = vamos_weights_at(wa, i), *x = vamos_weights_find(w1, a->name),
                           *y = vamos_weights_find(w2, a->name);
        cr_assert(x && y && a->nbytes == x->nbytes, "%s", a->name);
        const float *fa = a->data, *fx = x->data, *fy = y->data;
        for (size_t e = 0; e < a->nbytes / 4; e++)
            cr_assert_float_eq(fa[e], (float)(((double)fx[e] + fy[e]) / 2), 1e-7, "%s[%zu]", a->name, e);
    }
    cr_assert(vamos_weights_find(wa, "decoder.table") && !vamos_weights_find(wa, "decoder.out.w"));
    vamos_weights_free(w1), vamos_weights_free(w2), vamos_weights_free(wa);
    /* eval of two files: one line each, the same as one file at a time */
    char *both, *one;
    cr_assert_eq(vamos(&both, "eval %s/tied.vam -w %s %s/tiny.tsv %s/tiny.tsv 2>/dev/null", dir, pa, dir, dir), 0);
    cr_assert_eq(vamos(&one, "eval %s/tied.vam -w %s %s/tiny.tsv 2>/dev/null", dir, pa, dir), 0);
    size_t lo = strlen(one);
    cr_assert(strlen(both) == 2 * lo && !strncmp(both, one, lo) && !strcmp(both + lo, one), "%s\n%s", both, one);
    free(both), free(one);
    /* mismatched files, a missing file, an empty data file */
    cr_assert_eq(vamos(&out, "average -o %s/x.safetensors %s models/statquest.safetensors", dir, pa), 1);
    cr_assert(strstr(out, "statquest.safetensors"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "average -o %s/x.safetensors %s %s/nope.safetensors", dir, pa, dir), 1);
    cr_assert(strstr(out, "nope.safetensors"), "%s", out);
    free(out);
    cr_assert_eq(vamos(&out, "average %s", pa), 2);
    free(out);
    snprintf(path, sizeof path, "%s/empty.tsv", dir);
    write_text(path, "");
    cr_assert_eq(vamos(&out, "eval --copy %s", path), 1);
    cr_assert(strstr(out, "no pairs"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
