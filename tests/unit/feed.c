/* feed.c - continuous batching against batches (test_aot.c builds and
 * runs it): the lines of a file are translated by vamos_translate_lines
 * and by vamos_translate_feed, whose feed hands out `per` sentences a
 * call, so sentences join the running decoder at different steps and
 * take the rows others leave. Every line must come out the same.
 * Written against the installed interface only: vamos/vamos.h.
 *
 *     feed FILE ROWS PER [REFILL]   ->  "same N of N (...)" and exit 0
 *
 * REFILL: vamos_settings.refill (default 1: a row's sentence joins as soon
 * as the row frees, the others at their own positions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vamos/vamos.h"

VAMOS_DECLARE_MODEL(en_es);

typedef struct Feed {
    char **lines;
    int n, next, per, calls, done;
    char **outs;
} Feed;

static int next(void *ctx, int max, bool wait, const char **texts, void **tags)
{
    Feed *f = ctx;
    (void)wait;
    f->calls++;
    if (f->next == f->n)
        return -1;
    int k = 0;
    for (; k < max && k < f->per && f->next < f->n; k++, f->next++) {
        texts[k] = f->lines[f->next];
        tags[k] = &f->outs[f->next];
    }
    return k;
}

static void done(void *ctx, void *tag, char *out, const char *err)
{
    Feed *f = ctx;
    char **slot = tag;
    if (*slot)
        fprintf(stderr, "a sentence answered twice\n"), exit(1);
    *slot = out ? out : strdup(err && *err ? err : "(error)");
    f->done++;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5)
        return fprintf(stderr, "usage: feed FILE ROWS PER [REFILL]\n"), 2;
    FILE *in = fopen(argv[1], "r");
    if (!in)
        return perror(argv[1]), 1;
    Feed f = { .per = atoi(argv[3]) };
    char **lines = NULL, buf[8192];
    while (fgets(buf, sizeof buf, in)) {
        buf[strcspn(buf, "\n")] = 0;
        lines = realloc(lines, sizeof *lines * (size_t)(f.n + 1));
        lines[f.n++] = strdup(buf);
    }
    fclose(in);
    f.lines = lines;
    f.outs = calloc((size_t)f.n, sizeof *f.outs);
    char **want = calloc((size_t)f.n, sizeof *want), err[512];
    vamos_settings set = { .batch = atoi(argv[2]), .refill = argc > 4 ? atoi(argv[4]) : 1 };
    vamos_translator *t = vamos_open(&en_es_linked, &set, err, sizeof err);
    if (!t || vamos_translate_lines(t, (const char *const *)lines, f.n, want, err, sizeof err))
        return fprintf(stderr, "batches: %s\n", err), 1;
    vamos_feed feed = { next, done, &f };
    if (vamos_translate_feed(t, &feed, err, sizeof err))
        return fprintf(stderr, "feed: %s\n", err), 1;
    int same = 0;
    for (int i = 0; i < f.n; i++) {
        if (!f.outs[i])
            return fprintf(stderr, "line %d: no answer\n", i + 1), 1;
        if (strcmp(f.outs[i], want[i]))
            fprintf(stderr, "line %d: '%s': fed '%s', batched '%s'\n", i + 1, lines[i], f.outs[i], want[i]);
        else
            same++;
        free(f.outs[i]), free(want[i]), free(lines[i]);
    }
    printf("same %d of %d (%d answers, %d calls)\n", same, f.n, f.done, f.calls);
    free(f.outs), free(want), free(lines);
    vamos_close(t);
    return same == f.n ? 0 : 1;
}
