/* diag.h - diagnostics: `file:line:col: error: message`, the source line,
 * and a caret under the offending token; `note:` lines for related places.
 *
 * Every user error in Vamos goes through here. Errors are counted so that a
 * run reports several and then stops; past DIAG_MAX_ERRORS the rest are
 * summarised in one line.
 */
#ifndef VAMOS_DIAG_H
#define VAMOS_DIAG_H

#include <stdbool.h>
#include <stdio.h>

#include "ast.h"

#define DIAG_MAX_ERRORS 20
#define DIAG_MAX_FILES 64

typedef struct DiagFile {
    const char *path;   /* as given by the user, for messages */
    const char *text;   /* whole contents, NUL-terminated */
    long len;
} DiagFile;

typedef struct Diag {
    DiagFile files[DIAG_MAX_FILES];
    int nfiles;
    int errors;
    bool suppressed_notes;  /* the last error was past the limit */
    FILE *out;
    bool color;
} Diag;

void diag_init(Diag *d, FILE *out);
/* Register a source text; returns its file id, or -1 if the table is full. */
int diag_add_file(Diag *d, const char *path, const char *text, long len);
void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error without a source place (file missing, etc.). */
void diag_plain(Diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool diag_too_many(const Diag *d);

#endif
