/* cmd_build.c - `vamos build`: compile a model and link a standalone translator. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "tunedb.h"
#include "aot.h"
#include "passes.h"

static const char usage[] =
    "usage: vamos build MODEL.vam -w W.safetensors -o TRANSLATOR\n"
    "       vamos build MODEL.vam -w W.safetensors --lib -o LIB.{o,a,so} [--prefix NAME]\n\n"
    "Compile the model to native code and link it, with its weights and vocabularies,\n"
    "into one executable that needs only libc and libm: `TRANSLATOR \"Let's go\"`, or\n"
    "one sentence per line on standard input (TRANSLATOR --help). Uses the system C\n"
    "compiler (cc, or $CC) to link. The kernels get the schedules `vamos tune` stored\n"
    "for this machine, and the translator carries them.\n"
    "options:\n"
    "  --db FILE            the tuning database (default: see vamos tune --help)\n"
    "  --no-tune            ignore the tuning database: default schedules\n"
    "  --quantize int8      store the matmul and linear weights (the output layer's\n"
    "                       too) as int8 with one scale per output column: a quarter\n"
    "                       of the bytes; embeddings, norms and biases stay f32.\n"
    "                       Each row of activations is rounded to int8 too, and the\n"
    "                       products are integer dot products with int32 sums:\n"
    "                       8 bits with VNNI (AVX-512 VNNI, AVX-VNNI: --cpu native),\n"
    "                       7 with AVX2 only (so that its 16-bit pair sums cannot\n"
    "                       saturate); without AVX2, int8w\n"
    "  --quantize int8w     int8 weights only, f32 activations, on any CPU\n"
    "  --cpu CPU            the CPUs the translator runs on: native (default: this\n"
    "                       machine's, every feature it has), or an x86-64 level,\n"
    "                       x86-64-v3 (AVX2 and FMA: most machines since 2015),\n"
    "                       x86-64-v2 or x86-64 (any); slower the lower it is. A\n"
    "                       translator started on a CPU it cannot run on says so\n"
    "  --lib                the model for your own program instead of a translator\n"
    "                       (include/vamos/vamos.h): -o NAME.o an object file,\n"
    "                       NAME.a a static library (link the runtime too:\n"
    "                       pkg-config --libs vamos), NAME.so a shared library that\n"
    "                       holds the runtime. It defines NAME_linked for vamos_open()\n"
    "  --prefix NAME        with --lib: the prefix of every symbol it defines (default:\n"
    "                       the model's name), so one program can link several models\n"
    "  --langs SRC:TGT      the language codes the model translates between (en:es;\n"
    "                       vamos serve offers them). Default: from a model named\n"
    "                       like en_es, else none\n";


/* "en:es" (or a model name "en_es") into two codes of letters, digits
 * and '-' (pt-BR, zh-Hans); 0, or -1 if it is not that. */
static int parse_langs(const char *s, char src[16], char tgt[16])
{
    const char *sep = strpbrk(s, ":_");
    if (!sep || sep == s || sep - s > 15 || strlen(sep + 1) == 0 || strlen(sep + 1) > 15)
        return -1;
    for (const char *c = s; *c; c++)
        if (c != sep && !(isalnum((unsigned char)*c) || *c == '-'))
            return -1;
    snprintf(src, 16, "%.*s", (int)(sep - s), s);
    snprintf(tgt, 16, "%s", sep + 1);
    return 0;
}

/* The codes of a model named like en_es or de_en: two or three lowercase
 * letters each side; -1 for any other name. */
static int guess_langs(const char *name, char src[16], char tgt[16])
{
    size_t n = strlen(name);
    const char *sep = strchr(name, '_');
    if (!sep || sep - name < 2 || sep - name > 3 || n - (size_t)(sep - name) - 1 < 2 || n - (size_t)(sep - name) - 1 > 3)
        return -1;
    for (const char *c = name; *c; c++)
        if (c != sep && !islower((unsigned char)*c))
            return -1;
    return parse_langs(name, src, tgt);
}

static int build_cmd(Arena *a, const Opts *o)
{
    if (!o->weights)
        return usage_error(usage, "%s", "missing -w W.safetensors");
    if (!o->out)
        return usage_error(usage, "%s", "missing -o TRANSLATOR");
    bool cpu_ok = !o->cpu || !strcmp(o->cpu, "native");
    for (int k = 0; cg_cpu_levels[k] && !cpu_ok; k++)
        cpu_ok = !strcmp(o->cpu, cg_cpu_levels[k]);
    if (!cpu_ok)
        return usage_error(usage, "--cpu takes native, x86-64, x86-64-v2, x86-64-v3 or x86-64-v4, not '%s'",
                           o->cpu);
    AotOptions ao = { .output = o->out, .cpu_level = o->cpu, .prefix = o->prefix, .kind = AOT_EXE };
    if (o->prefix && !o->lib)
        return usage_error(usage, "%s", "--prefix names a library's symbols: it goes with --lib");
    if (o->prefix && !aot_prefix_ok(o->prefix))
        return usage_error(usage, "--prefix needs a C identifier (letters, digits, _; at most 64), not '%s'", o->prefix);
    if (o->lib) {
        const char *dot = strrchr(o->out, '.');
        ao.kind = !dot ? AOT_EXE : !strcmp(dot, ".o") ? AOT_OBJECT : !strcmp(dot, ".a") ? AOT_STATIC
                : !strcmp(dot, ".so") ? AOT_SHARED : AOT_EXE;
        if (ao.kind == AOT_EXE)
            return usage_error(usage, "--lib writes NAME.o, NAME.a or NAME.so; '%s' is none of them", o->out);
    }
    char src[16], tgt[16];
    if (o->langs) {
        if (parse_langs(o->langs, src, tgt))
            return usage_error(usage, "--langs needs two language codes, SRC:TGT (en:es), not '%s'", o->langs);
        ao.source_lang = src, ao.target_lang = tgt;
    }
    if (!quantize_ok(o))
        return usage_error(usage, "--quantize takes int8 or int8w, not '%s'", o->quantize);
    double t0 = now_s();
    Bound b;
    Model *m = load_with_weights(a, o, &b);
    if (!m)
        return 1;
    tune_set_target(o->cpu);   /* code for another CPU level takes records tuned for it */
    if (apply_tuning(m, o)) {
        bound_free(&b);
        return 1;
    }
    char err[512];
    if (!o->langs && guess_langs(m->name, src, tgt) == 0)
        ao.source_lang = src, ao.target_lang = tgt;
    if (o->lib && !o->prefix)   /* the model's name; `model en_es` is an identifier */
        ao.prefix = m->name;
    int rc = aot_build(m, &b, &ao, err, sizeof err);
    bound_free(&b);
    if (rc) {
        fprintf(stderr, "vamos: error: %s\n", err);
        return 1;
    }
    if (o->lib)
        fprintf(stderr, "built %s from model '%s' in %.2f s: vamos_open(&%s_linked, ...) (include/vamos/vamos.h)\n",
                o->out, m->name, now_s() - t0, ao.prefix);
    else
        fprintf(stderr, "built %s from model '%s' in %.2f s\n", o->out, m->name, now_s() - t0);
    return 0;
}

int cmd_build_main(int argc, char **argv)
{
    return cli_run(argc, argv, usage, "woBNCqLPg", false, build_cmd);
}
