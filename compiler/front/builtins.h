/* builtins.h - the built-in functions of the language: the primitive ops
 * (exp, sum, reshape, gather, masks, ...) and compile-time helpers (len,
 * size, vocab). Each has named parameters like a `def`. */
#ifndef VAMOS_BUILTINS_H
#define VAMOS_BUILTINS_H

#include "elab_internal.h"

#define BUILTIN_MAX_PARAMS 4

typedef struct Builtin Builtin;
typedef Value (*BuiltinFn)(Elab *e, const Builtin *b, Value *args, SrcLoc loc);

struct Builtin {
    const char *name;
    const char *params[BUILTIN_MAX_PARAMS]; /* names; NULL-terminated */
    int nreq;                               /* how many are required */
    BuiltinFn fn;
    Op op;                                  /* for the generic math ones */
    const char *doc;
};

const Builtin *builtin_find(const char *name);
Value builtin_call(Elab *e, const Builtin *b, Expr *call, Value *vals);
/* For `vamos help` and the docs: the table. */
const Builtin *builtin_table(int *n);

#endif
