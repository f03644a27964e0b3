/* compile.c - the front half of the pipeline in one call (see compile.h). */
#include "compile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elab.h"
#include "parse.h"
#include "passes.h"
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

/* Verify a graph after a pass (debug builds only, like every verifier). */
static void check(const Model *m, const char *pass)
{
#ifndef NDEBUG
    graph_check(m, &m->enc, pass);
    graph_check(m, &m->dec, pass);
#else
    (void)m, (void)pass;
#endif
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
    check(m, "elab");
    bool train = after && !strcmp(after, "train");
    if (!train) {
        m->enc = pass_strip_dropout(a, &m->enc);
        m->dec = pass_strip_dropout(a, &m->dec);
    }
    if (after && !strcmp(after, "elab"))
        return m;
    m->enc = pass_fold(a, &m->enc);
    m->dec = pass_fold(a, &m->dec);
    check(m, "fold");
    if (after && !strcmp(after, "fold"))
        return m;
    m->enc = pass_dce(a, &m->enc);
    m->dec = pass_dce(a, &m->dec);
    check(m, "dce");
    if (train)
        return m;   /* unfused, dropout kept: for derive_training */
    if (after && strcmp(after, "incremental"))
        return m;
    if (derive_step(a, m)) {
#ifndef NDEBUG
        graph_check(m, &m->prep, "incremental");
        graph_check(m, &m->step, "incremental");
#endif
    }
    if (!after) {
        m->step_out = pass_output_logits(&m->step);
        Graph *graphs[] = { &m->enc, &m->dec, &m->prep, &m->step };
        for (int i = 0; i < 4; i++) {
            *graphs[i] = pass_fuse_attention(a, graphs[i]);
            *graphs[i] = pass_fuse_linear(a, graphs[i]);
            *graphs[i] = pass_fuse_norm(a, graphs[i]);
            *graphs[i] = pass_fuse_map(a, graphs[i]);
            *graphs[i] = pass_fuse_transpose(a, graphs[i]);
            *graphs[i] = pass_dce(a, graphs[i]);   /* constants only the fused groups read */
#ifndef NDEBUG
            graph_check(m, graphs[i], "fuse");
#endif
        }
    }
    pass_pack(m);
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
