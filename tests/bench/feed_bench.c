/* feed_bench.c - continuous batching against batches on one thread: the
 * lines of FILE through vamos_translate_lines (sorted over the whole
 * input) and through vamos_translate_feed (every line available, taken as
 * rows free), ROUNDS times each in turn; sentences/s and their ratio, and
 * whether the words are the same.
 *
 *     build/vamos build models/en-es.vam -w models/en-es.safetensors --lib -o /tmp/libenes.a
 *     cc -O2 -Iinclude tests/bench/feed_bench.c /tmp/libenes.a build/libvamosrt.a -lm -lpthread -o /tmp/feed_bench
 *     /tmp/feed_bench ../shared/data/en-es/dev-ood.src ROWS ROUNDS [REFILL]
 *
 * (FILE: one source sentence a line, e.g. cut -f1 of dev-ood.tsv.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vamos/parallel.h"
#include "vamos/vamos.h"

VAMOS_DECLARE_MODEL(en_es);

typedef struct Feed { char **lines; int n, next; char **outs; } Feed;

static int next(void *ctx, int max, bool wait, const char **texts, void **tags)
{
    Feed *f = ctx;
    (void)wait;
    if (f->next == f->n)
        return -1;
    int k = 0;
    for (; k < max && f->next < f->n; k++, f->next++) {
        texts[k] = f->lines[f->next];
        tags[k] = &f->outs[f->next];
    }
    return k;
}

static void done(void *ctx, void *tag, char *out, const char *err)
{
    (void)ctx, (void)err;
    *(char **)tag = out;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return fprintf(stderr, "usage: feed_bench FILE ROWS ROUNDS [REFILL]\n"), 2;
    FILE *in = fopen(argv[1], "r");
    if (!in)
        return perror(argv[1]), 1;
    char **lines = NULL, buf[8192], err[256];
    int n = 0;
    while (fgets(buf, sizeof buf, in)) {
        buf[strcspn(buf, "\n")] = 0;
        lines = realloc(lines, sizeof *lines * (size_t)(n + 1));
        lines[n++] = strdup(buf);
    }
    fclose(in);
    vamos_set_threads(1);
    vamos_parallel_inline(1);
    vamos_settings set = { .batch = atoi(argv[2]), .refill = argc > 4 ? atoi(argv[4]) : 0 };
    vamos_translator *t = vamos_open(&en_es_linked, &set, err, sizeof err);
    if (!t)
        return fprintf(stderr, "%s\n", err), 1;
    char **outs = calloc((size_t)n, sizeof *outs), **fed = calloc((size_t)n, sizeof *fed);
    for (int r = 0; r < atoi(argv[3]); r++) {
        double t0 = now();
        if (vamos_translate_lines(t, (const char *const *)lines, n, outs, err, sizeof err))
            return fprintf(stderr, "%s\n", err), 1;
        double t1 = now();
        Feed f = { lines, n, 0, fed };
        vamos_feed fd = { next, done, &f };
        if (vamos_translate_feed(t, &fd, err, sizeof err))
            return fprintf(stderr, "%s\n", err), 1;
        double t2 = now();
        int same = 0;
        for (int i = 0; i < n; i++) {
            same += fed[i] && !strcmp(outs[i], fed[i]);
            free(outs[i]), free(fed[i]);
            fed[i] = NULL;
        }
        printf("lines %.0f sentences/s, feed %.0f: %.3fx; same words %d of %d\n", n / (t1 - t0), n / (t2 - t1),
               (t1 - t0) / (t2 - t1), same, n);
    }
    vamos_close(t);
    return 0;
}
