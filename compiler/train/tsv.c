/* tsv.c - read a parallel corpus (see tsv.h). */
#include "tsv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define TSV_MAX_FILE (1L << 30)

static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            if (cap >= (size_t)TSV_MAX_FILE) {
                snprintf(err, errlen, "'%s' is larger than %ld bytes", path, TSV_MAX_FILE);
                free(buf), fclose(f);
                return NULL;
            }
            char *p = realloc(buf, cap * 2 + 1);
            if (!p)
                free(buf);
            buf = p, cap *= 2;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        snprintf(err, errlen, bad ? "cannot read '%s'" : "out of memory reading '%s'", path);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

int tsv_read(const char *path, Tsv *out, FILE *warn, int max_warn, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t len;
    char *text = slurp(path, &len, err, errlen);
    if (!text)
        return -1;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    out->p = malloc(sizeof(TsvPair) * lines);
    if (!out->p) {
        free(text);
        snprintf(err, errlen, "out of memory reading '%s'", path);
        return -1;
    }
    out->text = text;
    char *p = text, *end = text + len;
    for (int line = 1; p < end; line++) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        char *stop = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        *stop = 0;
        const char *why = NULL;
        char *tab = memchr(p, '\t', (size_t)(stop - p));
        if (stop == p)
            why = "an empty line";
        else if (memchr(p, 0, (size_t)(stop - p)))
            why = "a NUL byte";
        else if (!tab)
            why = "no tab (expected source<TAB>target)";
        else if (memchr(tab + 1, '\t', (size_t)(stop - tab - 1)))
            why = "more than one tab (expected source<TAB>target)";
        else if (tab == p || tab + 1 == stop)
            why = tab == p ? "an empty source side" : "an empty target side";
        else if (!utf8_valid(p, (size_t)(stop - p)))
            why = "invalid UTF-8";
        if (why) {
            if (warn && out->skipped < max_warn)
                fprintf(warn, "%s:%d: warning: %s; line skipped\n", path, line, why);
            out->skipped++;
        } else {
            *tab = 0;
            out->p[out->n++] = (TsvPair){ p, tab + 1, line };
        }
        p = eol + 1;
    }
    if (warn && out->skipped > max_warn)
        fprintf(warn, "%s: warning: %d more malformed lines skipped\n", path, out->skipped - max_warn);
    return 0;
}

void tsv_free(Tsv *t)
{
    free(t->p);
    free(t->text);
    memset(t, 0, sizeof *t);
}
