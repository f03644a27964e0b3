/* mask.h - the parts of a software message a translation must keep
 * exactly, hidden from the translator and put back after.
 *
 * Protected spans: printf directives (%s, %d, %1$s, %-10s, %%, %(name)s,
 * %<PRId64>), brace placeholders ({name}, {0}), markup (<b>, </b>,
 * &amp;), command-line options (--recursive, -r), URLs, paths (/etc/x),
 * shell variables ($HOME, ${X}). Each becomes a token X1, X2, ... (a
 * letter the text does not use), which the model copies like a name. An
 * accelerator (_File) loses its underscore, and the translation gets one
 * before its first letter.
 *
 *     Masked m;
 *     mask_text("Cannot open %s: %s", &m);      // m.text "Cannot open X1: X2"
 *     char *back = unmask(&m, "No se puede abrir X1: X2", false);   // "... %s: %s"
 *
 * unmask refuses (NULL) a translation that lost, doubled or invented a
 * token; the caller then translates the text between the spans alone
 * (mask_segments) and joins it in the original order. */
#ifndef VAMOS_MASK_H
#define VAMOS_MASK_H

#include <stdbool.h>
#include <stddef.h>

#define MASK_MAX 64

typedef struct Masked {
    char *text;               /* the message with tokens for spans */
    char *span[MASK_MAX];     /* the spans, in order */
    char *orig;               /* the message as it came */
    size_t off[MASK_MAX];     /* where each span is in orig */
    int n;
    char letter;              /* the tokens' letter */
    bool accel;               /* an accelerator was removed */
    char accel_mark;          /* '_' or '&' */
    bool printf_plain;        /* printf directives, all unnumbered and without '*' */
} Masked;

/* Mask s. false when out of memory or when s has more spans than
 * MASK_MAX (then translate it whole, or keep it). */
bool mask_text(const char *s, Masked *m);

/* The translation tr of m->text with the spans back. Reordered printf
 * directives (when printf_plain) become numbered (%2$s ... %1$d), which
 * gettext's msgfmt accepts. NULL when the tokens of tr are not exactly
 * m's. */
char *unmask(const Masked *m, const char *tr);

/* The text between the spans in the message as it came, in order (n + 1
 * strings, some empty; the accelerator's mark removed), to translate one
 * by one; join_segments puts the spans (and the mark) back between them. */
char **mask_segments(const Masked *m);
char *join_segments(const Masked *m, char *const *seg);

void mask_free(Masked *m);

#endif
