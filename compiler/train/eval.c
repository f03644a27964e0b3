/* eval.c - `vamos eval`: score translations of a TSV's sources against its
 * targets with corpus BLEU and chrF (runtime/metrics.c: sacreBLEU's
 * default definitions).
 *
 * What translates: a built translator (run as a child process, lines on
 * its stdin, one translation per line on its stdout), or a model and its
 * weights, compiled in process to exactly what `vamos build` would carry
 * (jit_translator) and run by the same runtime. --copy scores the
 * sources themselves, the "copy" reference point.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "cli.h"
#include "compile.h"
#include "jit.h"
#include "metrics.h"
#include "tsv.h"
#include "vamos/translate.h"

static const char *usage =
    "usage: vamos eval TRANSLATOR DATA.tsv... [options]\n"
    "       vamos eval MODEL.vam -w W.safetensors DATA.tsv... [options]\n"
    "       vamos eval --copy DATA.tsv...\n\n"
    "Translate the source side of each DATA.tsv (lines source<TAB>reference) and\n"
    "print corpus BLEU (sacreBLEU's 13a tokenisation) and chrF (character\n"
    "6-grams, beta 2) against the references, one line per file. Give both dev\n"
    "sets, in-domain and out-of-domain, to see whether a model generalises.\n\n"
    "  -w FILE        the model's weights (with MODEL.vam)\n"
    "  --beam N       beam search (default 1: greedy)\n"
    "  --out FILE     also write the translations, one per line (one DATA file)\n"
    "  --copy         score the sources as they are (a baseline)\n";

#define BATCH 32

/* A model compiled in process, once for every data file. */
typedef struct InProcess {
    Arena a;
    Bound b;
    Jit *j;
    vamos_model rt;
    Blob blob;
    vamos_session *s;
} InProcess;

static void in_process_close(InProcess *p)
{
    vamos_session_free(p->s);
    if (p->j)
        vamos_model_close(&p->rt);
    free(p->blob.p);
    jit_free(p->j);
    bound_free(&p->b);
    arena_free(&p->a);
}

static int in_process_open(InProcess *p, const char *model, const char *weights)
{
    Diag d;
    diag_init(&d, stderr);
    Model *m = compile_file(&p->a, &d, model, NULL);
    char err[1024];
    if (!m || d.errors || bind_weights(m, weights, &p->b, stderr))
        return -1;
    if (!(p->j = jit_compile(m, err, sizeof err)) || jit_translator(p->j, m, &p->b, &p->blob, &p->rt, err, sizeof err)) {
        fprintf(stderr, "vamos eval: %s\n", err);
        return -1;
    }
    return (p->s = vamos_session_new(&p->rt)) ? 0 : -1;
}

/* Translations by a model compiled in process. */
static int translate_model(InProcess *p, const char *data, const Tsv *t, int beam, char **hyp)
{
    char err[1024];
    vamos_opts o = { .beam = beam };
    for (int i = 0; i < t->n; i += BATCH) {
        int k = t->n - i < BATCH ? t->n - i : BATCH;
        const char *src[BATCH];
        for (int r = 0; r < k; r++)
            src[r] = t->p[i + r].src;
        if (vamos_translate_batch(p->s, src, k, &o, NULL, hyp + i, err, sizeof err)) {
            fprintf(stderr, "vamos eval: %s: lines %d to %d: %s\n", data, t->p[i].line, t->p[i + k - 1].line, err);
            return -1;
        }
        fprintf(stderr, "\rtranslated %d of %d", i + k, t->n);
    }
    fputc('\n', stderr);
    return 0;
}

/* Translations by a built translator: the sources in a file, the
 * translator's stdout read back line by line. */
static int translate_binary(const char *bin, const Tsv *t, int beam, char **hyp)
{
    char in[] = "/tmp/vamos-eval-XXXXXX";
    int fd = mkstemp(in);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "vamos eval: cannot write a temporary file\n");
        return -1;
    }
    for (int i = 0; i < t->n; i++)
        fprintf(f, "%s\n", t->p[i].src);
    fclose(f);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --batch %d --beam %d < '%s'", bin, BATCH, beam, in);
    FILE *p = popen(cmd, "r");
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (p && (len = getline(&line, &cap, p)) >= 0) {
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        if (n < t->n)
            hyp[n] = strdup(line);
        n++;
    }
    free(line);
    int status = p ? pclose(p) : -1;
    remove(in);
    if (status != 0 || n != t->n) {
        fprintf(stderr, "vamos eval: '%s' %s (%d translations for %d lines)\n", bin,
                status ? "failed" : "gave the wrong number of lines", n, t->n);
        return -1;
    }
    return 0;
}

/* Translate one data file (by ip, or the translator at bin, or not at all
 * when both are NULL: --copy), score it and print the line. */
static int eval_file(InProcess *ip, const char *bin, const char *data, int beam, const char *out)
{
    Tsv t;
    char err[1024];
    if (tsv_read(data, &t, stderr, 20, err, sizeof err)) {
        fprintf(stderr, "vamos eval: %s\n", err);
        return -1;
    }
    if (t.n == 0) {
        fprintf(stderr, "vamos eval: %s: no pairs to score\n", data);
        tsv_free(&t);
        return -1;
    }
    bool copy = !ip && !bin;
    char **hyp = calloc((size_t)t.n + 1, sizeof *hyp);
    int rc = !hyp ? -1 : copy ? 0 : ip ? translate_model(ip, data, &t, beam, hyp) : translate_binary(bin, &t, beam, hyp);
    vamos_metrics *mt = rc ? NULL : vamos_metrics_new();
    FILE *of = !rc && out ? fopen(out, "w") : NULL;
    if (!rc && out && !of) {
        fprintf(stderr, "vamos eval: cannot write '%s'\n", out);
        rc = -1;
    }
    for (int i = 0; !rc && i < t.n; i++) {
        const char *h = copy ? t.p[i].src : hyp[i] ? hyp[i] : "";
        if (!mt || vamos_metrics_add(mt, h, t.p[i].tgt)) {
            fprintf(stderr, "vamos eval: out of memory\n");
            rc = -1;
        }
        if (of)
            fprintf(of, "%s\n", h);
    }
    if (of && fclose(of) && !rc) {
        fprintf(stderr, "vamos eval: cannot write '%s'\n", out);
        rc = -1;
    }
    if (!rc)
        printf("BLEU %.1f  chrF %.1f  (%d segments of %s%s)\n", vamos_metrics_bleu(mt), vamos_metrics_chrf(mt), t.n, data,
               t.skipped ? ", malformed lines skipped" : "");
    vamos_metrics_free(mt);
    for (int i = 0; hyp && i < t.n; i++)
        free(hyp[i]);
    free(hyp);
    tsv_free(&t);
    return rc;
}

int cmd_eval_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, 0, 'h' }, { "weights", required_argument, 0, 'w' },
        { "beam", required_argument, 0, 'b' }, { "out", required_argument, 0, 'o' },
        { "copy", no_argument, 0, 'c' }, { 0, 0, 0, 0 },
    };
    const char *weights = NULL, *out = NULL;
    int beam = 1, c;
    bool copy = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hw:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return 0;
        case 'w': weights = optarg; break;
        case 'o': out = optarg; break;
        case 'c': copy = true; break;
        case 'b': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > VAMOS_MAX_BEAM) {
                fprintf(stderr, "vamos eval: --beam wants a number from 1 to %d, not '%s'\n", VAMOS_MAX_BEAM, optarg);
                return 2;
            }
            beam = (int)v;
            break;
        }
        default: fputs(usage, stderr); return 2;
        }
    }
    int want = copy ? 1 : 2;
    if (argc - optind < want) {
        fprintf(stderr, "vamos eval: expected %s\n\n%s", copy ? "DATA.tsv" : "TRANSLATOR (or MODEL.vam) and DATA.tsv", usage);
        return 2;
    }
    const char *what = copy ? NULL : argv[optind];
    int first = copy ? optind : optind + 1;
    if (out && argc - first > 1) {
        fprintf(stderr, "vamos eval: --out takes the translations of one DATA file, not %d\n", argc - first);
        return 2;
    }
    size_t wl = what ? strlen(what) : 0;
    bool model = what && wl > 4 && !strcmp(what + wl - 4, ".vam");
    if (model && !weights) {
        fprintf(stderr, "vamos eval: a model needs its weights: -w W.safetensors\n");
        return 2;
    }
    InProcess ip = { 0 };
    int rc = model ? in_process_open(&ip, what, weights) : 0;
    for (int f = first; !rc && f < argc; f++)
        rc = eval_file(copy ? NULL : model ? &ip : NULL, what, argv[f], beam, out);
    in_process_close(&ip);
    return rc ? 1 : 0;
}
