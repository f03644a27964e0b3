/* helpers.h - shared by the test suites: compile text, capture diagnostics,
 * run the vamos binary. Tests run from the source directory. */
#ifndef VAMOS_TEST_HELPERS_H
#define VAMOS_TEST_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"

/* Compile text up to pass `after` (NULL: every pass; see compile.h);
 * diagnostics go to *diags (malloc'd). NULL model on error. */
static inline Model *compile_capture_after(Arena *a, const char *name, const char *text, const char *after,
                                           char **diags, int *errors)
{
    size_t len;
    FILE *f = open_memstream(diags, &len);
    Diag d;
    diag_init(&d, f);
    Model *m = compile_text(a, &d, name, text, (long)strlen(text), after);
    fclose(f);
    *errors = d.errors;
    return m;
}

static inline Model *compile_capture(Arena *a, const char *name, const char *text, char **diags, int *errors)
{
    return compile_capture_after(a, name, text, NULL, diags, errors);
}

/* Read a whole file (malloc'd, NUL-terminated); NULL if it cannot. */
static inline char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = 0;
    if (len)
        *len = (size_t)n;
    fclose(f);
    return buf;
}

/* Run a shell command; its stdout+stderr in *out (malloc'd); exit status. */
static inline int run_cmd(const char *cmd, char **out)
{
    char full[16384];
    snprintf(full, sizeof full, "{ %s; } 2>&1", cmd);   /* the command's own 2> still wins */
    FILE *p = popen(full, "r");
    size_t cap = 1 << 16, n = 0;
    *out = malloc(cap);
    for (size_t k; p && (k = fread(*out + n, 1, cap - n - 1, p)) > 0;) {
        n += k;
        if (n + 1 == cap)
            *out = realloc(*out, cap *= 2);
    }
    (*out)[n] = 0;
    int st = p ? pclose(p) : -1;
    return st >= 0 && (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f);
}

static inline const char *vamos_bin(void)
{
    const char *v = getenv("VAMOS");
    return v ? v : "build/vamos";
}

#endif
