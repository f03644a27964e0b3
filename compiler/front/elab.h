/* elab.h - elaboration: the checked AST -> the model's graph IR.
 *
 * Requires: declarations that passed resolve (names exist, no recursion).
 * Guarantees: on success (no new errors) a Model whose encoder and decoder
 * graphs have every library function inlined, every compile-time value
 * folded (constants, loops, conditions, dims) and every node's symbolic
 * shape inferred and checked; each weight is listed with its hierarchical
 * name and shape. Errors are reported with the inlining stack as notes.
 */
#ifndef VAMOS_ELAB_H
#define VAMOS_ELAB_H

#include "diag.h"
#include "graph.h"

/* `dir` is the directory of the main file, for `vocab x = file "..."`. */
Model *elab_program(Arena *a, Diag *d, DeclList *decls, const char *dir);

#endif
