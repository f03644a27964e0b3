/* compile.c - the front half of the pipeline in one call (see compile.h). */
#include "compile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elab.h"
#include "parse.h"
#include "passes.h"
#include "pipeline.h"
#include "readfile.h"
#include "resolve.h"

#define MAX_SOURCE (16L << 20)

/* The standard library, embedded at build time (std_lib.c). */
extern const char vamos_std_nn[];
extern const long vamos_std_nn_len;

static const char *dir_of(Arena *a, const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? arena_strndup(a, path, (size_t)(slash - path + (slash == path))) : ".";
}

static Model *pipeline(Arena *a, Diag *d, int file, const char *dir, const char *after)
{
    DeclList std = { 0 }, main = { 0 }, all = { 0 };
    int std_file = diag_add_file(d, "<std>/nn.vam", vamos_std_nn, vamos_std_nn_len);
    parse_file(a, d, std_file, &std);
    parse_file(a, d, file, &main);
    if (d->errors)
        return NULL;
    for (int i = 0; i < std.n; i++)
        ast_decls_push(a, &all, std.items[i]);
    for (int i = 0; i < main.n; i++)
        ast_decls_push(a, &all, main.items[i]);
    if (resolve_program(a, d, &all, file))
        return NULL;
    Model *m = elab_program(a, d, &all, dir);
    if (d->errors)
        return NULL;
    Pipeline p = { .last = STAGE_COUNT - 1 };
    if (after && !strcmp(after, "train"))
        p = (Pipeline){ .last = STAGE_DCE, .training = true };
    else if (after && stage_by_name(after) >= 0)
        p.last = (Stage)stage_by_name(after);
    pipeline_run(a, m, STAGE_ELAB, &p);
    return m;
}

Model *compile_text(Arena *a, Diag *d, const char *name, const char *text, long len, const char *after)
{
    int file = diag_add_file(d, name, text, len);
    return pipeline(a, d, file, dir_of(a, name), after);
}

Model *compile_file(Arena *a, Diag *d, const char *path, const char *after)
{
    long len;
    char *text = read_file(a, path, MAX_SOURCE, &len);
    if (!text) {
        if (errno == EFBIG)
            diag_plain(d, "'%s' is larger than %ld bytes", path, MAX_SOURCE);
        else
            diag_plain(d, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    return compile_text(a, d, path, text, len, after);
}

int model_sym(const Model *m, SymRole role)
{
    for (int i = 0; i < m->nsyms; i++)
        if (m->syms[i].role == role)
            return i;
    return -1;
}
