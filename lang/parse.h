/* parse.h - front end entry: source text -> declarations.
 *
 * Requires: a Diag with the file registered. Guarantees: every syntax or
 * lexical error is reported through the Diag with its location; the returned
 * list holds the declarations that parsed (possibly partial on errors).
 */
#ifndef VAMOS_PARSE_H
#define VAMOS_PARSE_H

#include "ast.h"
#include "diag.h"

typedef struct ParseCtx {
    Arena *arena;
    Diag *diag;
    int file;
    DeclList decls;
    int depth;          /* nesting depth, bounded against stack overflow */
    bool too_deep;
    /* brackets the lexer has seen opened and not closed, innermost last
     * (the first 64): a syntax error inside one gets a note at it */
    int nopen;
    char open_ch[64];
    SrcLoc open_at[64];
} ParseCtx;

/* Parse one registered file; returns the number of errors it reported. */
int parse_file(Arena *a, Diag *d, int file, DeclList *out);

#define PARSE_MAX_DEPTH 200
#define PARSE_MAX_EXPR_DEPTH 1000

#endif
