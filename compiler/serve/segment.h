/* segment.h - what of a request's text the translator sees.
 *
 * A translator takes one sentence at a time. A q string is cut into
 * pieces: sentences to translate, and everything else kept byte for byte
 * (line breaks, the spaces between sentences, and with format html the
 * tags, comments, <script> and <style>). HTML text is translated with its
 * entities decoded (&amp; is &) and escaped again after. */
#ifndef VAMOS_SEGMENT_H
#define VAMOS_SEGMENT_H

#include <stdbool.h>

typedef struct Piece {
    char *text;       /* malloc'd */
    bool translate;   /* a sentence; else kept as it is */
    bool escape;      /* html: escape & < > in its translation */
} Piece;

typedef struct Pieces {
    Piece *p;
    int n, cap;
    bool oom;
} Pieces;

/* Append the pieces of s (html: as markup). false when out of memory. */
bool segment(const char *s, bool html, Pieces *out);

/* The text again, the i-th translate piece replaced by tr[i] (NULL: out
 * of memory). */
char *pieces_join(const Pieces *ps, char *const *tr);

/* How many pieces are to translate. */
int pieces_count(const Pieces *ps);

void pieces_free(Pieces *ps);

#endif
