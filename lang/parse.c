/* parse.c - run the flex scanner and bison parser over one source file. */
#include "parse.h"

#include "parser.h"
#define YYSTYPE VAMSTYPE
#define YYLTYPE VAMLTYPE
#include "lexer.h"

int parse_file(Arena *a, Diag *d, int file, DeclList *out)
{
    ParseCtx ctx = { .arena = a, .diag = d, .file = file };
    int before = d->errors;
    yyscan_t scanner;
    if (vamlex_init_extra(&ctx, &scanner)) {
        diag_plain(d, "cannot start the lexer");
        return 1;
    }
    const DiagFile *f = &d->files[file];
    YY_BUFFER_STATE buf = vam_scan_bytes(f->text, (int)f->len, scanner);
    int rc = vamparse(scanner, &ctx);
    vam_delete_buffer(buf, scanner);
    vamlex_destroy(scanner);
    if (rc != 0 && d->errors == before)
        diag_plain(d, "%s: could not parse the file", f->path);
    *out = ctx.decls;
    return d->errors - before;
}
