/* diag.c - print diagnostics with the source line and a caret. */
#include "diag.h"

#include <stdarg.h>
#include <string.h>

void diag_init(Diag *d, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->out = out;
}

int diag_add_file(Diag *d, const char *path, const char *text, long len)
{
    if (d->nfiles == DIAG_MAX_FILES)
        return -1;
    d->files[d->nfiles] = (DiagFile){ path, text, len };
    return d->nfiles++;
}

/* True once an error past the limit was seen: phases stop then. */
bool diag_too_many(const Diag *d) { return d->errors > DIAG_MAX_ERRORS; }

/* Characters of a source line shown around the caret: a longer line
 * (generated code, a minified file) is cut to a window, with "..." where
 * it was cut. */
#define SHOWN_CHARS 100

/* Print the line `line` of the file and a caret run under [col, end_col]. */
static void show_line(Diag *d, const DiagFile *f, SrcLoc loc)
{
    const char *p = f->text, *end = f->text + f->len;
    for (int l = 1; l < loc.line && p < end; p++)
        if (*p == '\n')
            l++;
    const char *eol = p;
    int width = 0;   /* characters: UTF-8 continuation bytes do not count */
    while (eol < end && *eol != '\n')
        width += (*eol++ & 0xC0) != 0x80;
    int col = loc.col < 1 ? 1 : loc.col;
    int last = loc.end_col >= col ? loc.end_col : col;
    if (col > width + 1)
        col = width + 1;
    if (last > width + 1)
        last = width + 1;
    /* the window [lo, hi] of characters shown: the whole line when it
     * fits, else SHOWN_CHARS from a little before the caret */
    int lo = 1, hi = width;
    if (width > SHOWN_CHARS) {
        lo = col - SHOWN_CHARS / 3 < 1 ? 1 : col - SHOWN_CHARS / 3;
        hi = lo + SHOWN_CHARS - 1;
        if (hi > width)
            hi = width, lo = width - SHOWN_CHARS + 1;
        if (last > hi + 1)
            last = hi + 1;
    }
    fputs(lo > 1 ? "  ..." : "  ", d->out);
    int at = 0;
    for (const char *c = p; c < eol; c++) {
        /* Tabs become one space so the caret lines up; controls become '?'. */
        unsigned char ch = (unsigned char)*c;
        at += (ch & 0xC0) != 0x80;
        if (at >= lo && at <= hi)
            fputc(ch == '\t' ? ' ' : (ch < 32 || ch == 127) ? '?' : ch, d->out);
    }
    fputs(hi < width ? "...\n  " : "\n  ", d->out);
    for (int i = lo > 1 ? lo - 3 : 1; i < col; i++)
        fputc(' ', d->out);
    for (int i = col; i <= last; i++)
        fputc(i == col ? '^' : '~', d->out);
    fputc('\n', d->out);
}

static void vreport(Diag *d, SrcLoc loc, const char *kind, const char *fmt,
                    va_list ap)
{
    const DiagFile *f = loc.file >= 0 && loc.file < d->nfiles ? &d->files[loc.file] : NULL;
    if (f && loc.line > 0)
        fprintf(d->out, "%s:%d:%d: %s: ", f->path, loc.line, loc.col, kind);
    else
        fprintf(d->out, "vamos: %s: ", kind);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    if (f && loc.line > 0)
        show_line(d, f, loc);
}

void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...)
{
    d->errors++;
    d->suppressed_notes = d->errors > DIAG_MAX_ERRORS;
    if (d->errors == DIAG_MAX_ERRORS + 1)
        fprintf(d->out, "vamos: error: too many errors, stopping\n");
    if (d->suppressed_notes)
        return;
    va_list ap;
    va_start(ap, fmt);
    vreport(d, loc, "error", fmt, ap);
    va_end(ap);
}

void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...)
{
    if (d->suppressed_notes)
        return;
    va_list ap;
    va_start(ap, fmt);
    vreport(d, loc, "note", fmt, ap);
    va_end(ap);
}

void diag_plain(Diag *d, const char *fmt, ...)
{
    d->errors++;
    va_list ap;
    va_start(ap, fmt);
    fputs("vamos: error: ", d->out);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    va_end(ap);
}
