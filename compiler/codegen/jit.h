/* jit.h - run a model's graphs as native code compiled by ORC LLJIT.
 *
 * Same inputs and outputs as the interpreter (interp.h), so every test can
 * compare the two. One JIT per model; it must not compile from two threads.
 */
#ifndef VAMOS_JIT_H
#define VAMOS_JIT_H

#include "codegen.h"
#include "interp.h"
#include "compile.h"
#include "vamos/model.h"

typedef struct Jit Jit;

/* Compile the encoder and decoder of m. NULL with a message on failure. */
Jit *jit_compile(const Model *m, char *err, size_t errlen);
void jit_free(Jit *j);

/* For testing op by op: compile with a step function per graph, then run
 * node `node`'s kernel alone on buffers the caller provides (buf[i] for
 * every node, sym the symbols' values). Returns the kernel's status. */
Jit *jit_compile_steps(const Model *m, char *err, size_t errlen);
int32_t jit_step(Jit *j, const Model *m, const Graph *g, int node, void *const *buf, const int64_t *sym);

/* Run graph g (the model's encoder or decoder) like interp_run. Weights
 * that compiled code reads packed (pack.c) are packed on the first run
 * that passes a given array: a weight changed in place afterwards is not
 * seen (pass a new array). */
int jit_run(Jit *j, const Model *m, const Graph *g, float *const *params,
            const InterpInputs *in, Tensor *out, char *err, size_t errlen);

/* The same, keeping every node's value (like interp_run_all). */
int jit_run_all(Jit *j, const Model *m, const Graph *g, float *const *params,
                const InterpInputs *in, Tensor *all, char *err, size_t errlen);

/* What a built translator runs, in process: the runtime model over j's
 * compiled graphs (from jit_compile) and the weights w, as `vamos build`
 * would carry them. *blob holds it (free(blob->p) after
 * vamos_model_close). 0, or -1 with a message. */
struct Blob;
int jit_translator(const Jit *j, const Model *m, const Bound *w, struct Blob *blob, vamos_model *out, char *err,
                   size_t errlen);

/* For the tuner: one graph's step function compiled alone, in a
 * resource tracker of its own (KernelCode) that kjit_drop frees, so
 * trying many candidates does not grow the process. Graphs added to one
 * KernelJit need distinct names while both are alive. */
typedef struct KernelJit KernelJit;
typedef struct LLVMOrcOpaqueResourceTracker KernelCode;
KernelJit *kjit_new(char *err, size_t errlen);
KernelCode *kjit_add(KernelJit *k, const Model *m, const Graph *g, vamos_step_fn *fn, char *err, size_t errlen);
void kjit_drop(KernelCode *code);
void kjit_free(KernelJit *k);

#endif
