/* translator_main.c - main() of a translator built by `vamos build`.
 *
 * The model (kernels, weights, vocabularies) is linked in: the descriptor
 * vamos_linked (include/vamos/vamos.h) of vamos build's object, which
 * points at its blob and graphs. Depends on libc, libm and pthreads.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vamos/parallel.h"
#include "vamos/translate.h"
#include "vamos/vamos.h"

/* the model, linked in as the descriptor of include/vamos/vamos.h */
VAMOS_DECLARE_MODEL(vamos);

#define MAX_LINE (1L << 20)
#define MAX_BATCH 1024   /* sentences in a batch, lines in a window */
#define DEF_WINDOW 256
#define MAX_SRC 1024     /* source words translated (vamos_opts.max_src's default) */

static void usage(FILE *f, const vamos_model *m)
{
    fprintf(f,
            "usage: translator [options] [\"SENTENCE\"]\n\n"
            "Translates with the built-in model '%s' (%s -> %s vocabularies of %d and %d words).\n"
            "With a sentence, prints its translation. Without, reads one sentence per line from\n"
            "standard input and writes one translation per line, in order. Lines already\n"
            "waiting are read ahead (up to --window), sorted by length and translated in\n"
            "batches; the output is flushed whenever the input has nothing more waiting, so\n"
            "a line typed alone is translated at once.\n\n"
            "options:\n"
            "  --max-len N       at most N target words (default: 2 * source words + 10)\n"
            "  --beam N          beam search with N hypotheses (default 1: greedy)\n"
            "  --batch N         at most N sentences decoded together (default %d)\n"
            "  --batch-tokens N  at most N source tokens in a batch, padding included\n"
            "                    (default: no bound)\n"
            "  --window N        at most N waiting lines read ahead (default %d)\n"
            "  --threads N       N threads (default: one per CPU, here %d); with 4 or more\n"
            "                    batches waiting per thread, each thread decodes whole batches,\n"
            "                    else every kernel is split between them\n"
            "  --stats       print sentences, tokens, encoder/decoder ms, ms per target token,\n"
            "                sentences/s and the ms of a decoder step at positions 1, 8, 64,\n"
            "                256 and 1024 (where reached) to standard error at the end\n"
            "  --help        this help\n"
            "  --version     the model's name and the xxHash of its weights\n\n"
            "Input lines longer than 1 MiB are cut there; sentences of more than 1024 words\n"
            "keep their first 1024 (both with a warning naming the line). Words not in the\n"
            "source vocabulary become <unk>, or are skipped when the model has no <unk>.\n"
            "Every input line gets one output line.\n",
            m->name, "source", "target", m->src.n, m->tgt.n, VAMOS_DEFAULT_BATCH, DEF_WINDOW, vamos_threads());
}

/* Standard input, read by this program rather than stdio so that it can
 * tell whether more input is waiting (in its buffer, or poll()). */
typedef struct Reader {
    int fd, err;   /* err: errno of a failed read */
    bool eof;
    size_t at, end;
    char buf[1 << 16];
} Reader;

static int rd_getc(Reader *r)
{
    if (r->at == r->end) {
        if (r->eof)
            return EOF;
        ssize_t k;
        do
            k = read(r->fd, r->buf, sizeof r->buf);
        while (k < 0 && errno == EINTR);
        if (k <= 0) {
            r->eof = true;
            r->err = k < 0 ? errno : 0;
            return EOF;
        }
        r->at = 0, r->end = (size_t)k;
    }
    return (unsigned char)r->buf[r->at++];
}

/* Is a whole line (or the end) waiting, so that reading it does not
 * block? A part of a line is not: its writer may finish it much later,
 * and the lines before it are translated first. What poll() says is
 * waiting is read into the buffer (one read, which does not block). */
static bool rd_waiting(Reader *r)
{
    for (;;) {
        if (memchr(r->buf + r->at, '\n', r->end - r->at))
            return true;
        if (r->eof)
            return r->at < r->end;
        if (r->at > 0) {   /* room at the end for more */
            memmove(r->buf, r->buf + r->at, r->end - r->at);
            r->end -= r->at, r->at = 0;
        }
        if (r->end == sizeof r->buf)   /* a line longer than the buffer: read_line takes it */
            return true;
        struct pollfd p = { r->fd, POLLIN, 0 };
        if (poll(&p, 1, 0) <= 0)
            return false;
        ssize_t k;
        do
            k = read(r->fd, r->buf + r->end, sizeof r->buf - r->end);
        while (k < 0 && errno == EINTR);
        if (k <= 0) {
            r->eof = true;
            r->err = k < 0 ? errno : 0;
        } else {
            r->end += (size_t)k;
        }
    }
}

/* Read one line of any length (cut at MAX_LINE: *cut); NULL at end of
 * input. */
static char *read_line(Reader *in, char **buf, size_t *cap, bool *cut)
{
    size_t n = 0;
    *cut = false;
    int c;
    bool any = false;
    while ((c = rd_getc(in)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (n + 1 >= *cap) {
            if ((long)*cap >= MAX_LINE) {
                *cut = true;               /* drop the rest of the line */
                continue;
            }
            size_t nc = *cap ? *cap * 2 : 256;
            char *p = realloc(*buf, nc);
            if (!p)
                continue;
            *buf = p, *cap = nc;
        }
        (*buf)[n++] = c ? (char)c : ' ';   /* a NUL byte is a space */
    }
    if (!any)
        return NULL;
    if (!*buf) {                           /* an empty first line */
        *buf = malloc(*cap = 256);
        if (!*buf)
            return NULL;
    }
    (*buf)[n] = 0;
    return *buf;
}

/* Whitespace-separated words in text, as the tokenizer splits it. */
static long count_words(const char *text)
{
    long n = 0;
    for (bool in = false; *text; text++) {
        bool space = *text == ' ' || (*text >= '\t' && *text <= '\r');
        n += !space && !in;
        in = !space;
    }
    return n;
}

/* Say on standard error when line `line` (0: the argument) is cut. */
static void warn_long(long line, const char *text, bool cut, int max_src)
{
    char where[48] = "the sentence";
    if (line)
        snprintf(where, sizeof where, "line %ld", line);
    if (cut)
        fprintf(stderr, "translator: warning: %s is longer than %ld bytes; the rest of it is dropped\n", where,
                MAX_LINE);
    long words = count_words(text);
    if (words > max_src)
        fprintf(stderr, "translator: warning: %s has %ld words; only its first %d are translated\n", where, words,
                max_src);
}

/* Translate n lines; print one line each (empty on an internal error). */
static int translate_lines(vamos_session *s, const char *const *texts, int n, const vamos_opts *o, vamos_stats *st)
{
    char err[512] = "";
    char *outs[MAX_BATCH] = { 0 };
    int rc = vamos_translate_batch(s, texts, n, o, st, outs, err, sizeof err);
    if (rc)
        fprintf(stderr, "translator: %s\n", err[0] ? err : "out of memory");
    for (int i = 0; i < n; i++) {
        printf("%s\n", rc ? "" : outs[i]);   /* one output line per input line */
        free(outs[i]);
    }
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "translator: cannot write the translations: %s\n", strerror(errno));
        exit(1);
    }
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    vamos_model m;
    char err[512];
    if (vamos_cpu_check(vamos_linked.cpu, err, sizeof err)) {
        fprintf(stderr, "translator: %s\n", err);
        return 1;
    }
    const vamos_kernel_fn fns[4] = { vamos_linked.encoder, vamos_linked.decoder, vamos_linked.prep, vamos_linked.step };
    if (vamos_model_open(&m, vamos_linked.blob, 0, fns, err, sizeof err)) {
        fprintf(stderr, "translator: %s\n", err);
        return 1;
    }
    vamos_opts o = { .max_src = MAX_SRC, .batch_rows = VAMOS_DEFAULT_BATCH };
    bool stats = false, dashes = false;
    int window = DEF_WINDOW;
    const char *sentence = NULL;
    for (int i = 1; i < argc; i++) {
        if (!dashes && !strcmp(argv[i], "--")) {   /* what follows is the sentence */
            dashes = true;
            continue;
        }
        if (dashes) {
            if (sentence) {
                fprintf(stderr, "translator: one sentence per call; quote it (see --help)\n");
                return 2;
            }
            sentence = argv[i];
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout, &m);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("%s (weights xxh3 %016llx)\n", m.name, (unsigned long long)m.weights_hash);
            return 0;
        } else if (!strcmp(argv[i], "--stats")) {
            stats = true;
        } else if ((!strcmp(argv[i], "--beam") || !strcmp(argv[i], "--batch") || !strcmp(argv[i], "--window") ||
                    !strcmp(argv[i], "--batch-tokens")) &&
                   i + 1 < argc) {
            char *end;
            const char *opt = argv[i];
            long most = !strcmp(opt, "--beam") ? VAMOS_MAX_BEAM : !strcmp(opt, "--batch-tokens") ? 1L << 30 : MAX_BATCH;
            errno = 0;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || errno || v < 1 || v > most) {
                fprintf(stderr, "translator: %s needs an integer in 1..%ld, not '%s'\n", opt, most, argv[i]);
                return 2;
            }
            if (!strcmp(opt, "--beam"))
                o.beam = (int)v;
            else if (!strcmp(opt, "--batch"))
                o.batch_rows = (int)v;
            else if (!strcmp(opt, "--window"))
                window = (int)v;
            else
                o.batch_tokens = (int)v;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > VAMOS_MAX_THREADS) {
                fprintf(stderr, "translator: --threads needs an integer in 1..%d, not '%s'\n", VAMOS_MAX_THREADS,
                        argv[i]);
                return 2;
            }
            vamos_set_threads((int)v);
        } else if (!strcmp(argv[i], "--max-len") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 100000) {
                fprintf(stderr, "translator: --max-len needs an integer in 1..100000, not '%s'\n", argv[i]);
                return 2;
            }
            o.max_len = (int)v;
        } else if (i + 1 == argc && (!strcmp(argv[i], "--beam") || !strcmp(argv[i], "--batch") ||
                                     !strcmp(argv[i], "--threads") || !strcmp(argv[i], "--max-len") ||
                                     !strcmp(argv[i], "--window") || !strcmp(argv[i], "--batch-tokens"))) {
            fprintf(stderr, "translator: %s needs a value (see --help)\n", argv[i]);
            return 2;
        } else if (argv[i][0] == '-' && argv[i][1] && !sentence) {
            fprintf(stderr, "translator: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        } else if (!sentence) {
            sentence = argv[i];
        } else {
            fprintf(stderr, "translator: one sentence per call; quote it (see --help)\n");
            return 2;
        }
    }
    vamos_session *s = vamos_session_new(&m);
    vamos_stats st = { 0 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = 0;
    if (sentence) {
        warn_long(0, sentence, false, MAX_SRC);
        rc = translate_lines(s, &sentence, 1, &o, &st);
    } else {
        static char *bufs[MAX_BATCH];
        static size_t caps[MAX_BATCH];
        static Reader r = { .fd = 0 };
        long line = 0;
        for (bool more = true; more;) {
            int n = 0;
            bool cut;
            /* the first line as it comes; then only what is already waiting */
            while (n < window && (n == 0 || rd_waiting(&r)) &&
                   (more = read_line(&r, &bufs[n], &caps[n], &cut) != NULL)) {
                warn_long(++line, bufs[n], cut, MAX_SRC);
                n++;
            }
            if (n)
                rc |= translate_lines(s, (const char *const *)bufs, n, &o, &st);
        }
        for (int i = 0; i < window; i++)
            free(bufs[i]);
        if (r.err) {
            fprintf(stderr, "translator: cannot read standard input: %s\n", strerror(r.err));
            rc = 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (stats) {
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        fprintf(stderr, "sentences %ld, source tokens %ld, target tokens %ld, encoder %.1f ms, decoder %.1f ms, "
                        "%.2f ms per target token, %.2f sentences/s\n",
                st.sentences, st.src_tokens, st.tgt_tokens, st.enc_ms, st.dec_ms,
                st.tgt_tokens ? st.dec_ms / (double)st.tgt_tokens : 0.0, secs > 0 ? (double)st.sentences / secs : 0.0);
        static const int at[] = { 1, 8, 64, 256, 1024 };
        const char *sep = "decoder step ms by position (1 = first word):";
        for (int i = 0; i < 5; i++)
            if (st.steps[at[i] - 1]) {
                fprintf(stderr, "%s %d: %.2f", sep, at[i], st.step_ms[at[i] - 1] / (double)st.steps[at[i] - 1]);
                sep = ",";
            }
        if (st.steps[0])
            fprintf(stderr, "\n");
    }
    vamos_session_free(s);
    vamos_model_close(&m);
    return rc;
}
