/* resolve.h - name resolution over the whole program, before elaboration.
 *
 * Requires: parsed declarations (the main file and the standard library).
 * Guarantees when it reports no error: one model; no duplicate functions,
 * constants or vocabularies; every called function exists; every name used
 * in a body can be defined there; no function is recursive (they are all
 * inlined). Reports every problem it finds, each with its place.
 */
#ifndef VAMOS_RESOLVE_H
#define VAMOS_RESOLVE_H

#include "diag.h"

int resolve_program(Arena *a, Diag *d, DeclList *decls, int main_file);
#include "spell.h"   /* edit_distance, for "did you mean" */

#endif
