/* tsv.h - parallel corpora: one pair per line, "source<TAB>target", UTF-8.
 *
 * A line that is not exactly two non-empty fields of valid UTF-8 is
 * reported as "FILE:LINE: ..." on the warnings stream and skipped; it
 * never stops the reading. A final line without a newline counts.
 */
#ifndef VAMOS_TSV_H
#define VAMOS_TSV_H

#include <stddef.h>
#include <stdio.h>

typedef struct TsvPair {
    char *src, *tgt;   /* NUL-terminated, in the corpus's one block */
    int line;          /* 1-based */
} TsvPair;

typedef struct Tsv {
    TsvPair *p;
    int n;
    int skipped;       /* malformed lines */
    char *text;        /* the file, owned */
} Tsv;

/* Read path; warnings (at most `max_warn` lines, then a count) to warn.
 * 0, or -1 with a message (cannot read the file, out of memory). */
int tsv_read(const char *path, Tsv *out, FILE *warn, int max_warn, char *err, size_t errlen);
void tsv_free(Tsv *t);

#endif
