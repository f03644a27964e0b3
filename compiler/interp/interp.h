/* interp.h - the reference interpreter: runs a graph with the plain C
 * kernels of runtime/kernels.c. It is the oracle compiled code is checked
 * against, so it does nothing clever: every node gets its own buffer.
 */
#ifndef VAMOS_INTERP_H
#define VAMOS_INTERP_H

#include <stdint.h>

#include "graph.h"
#include "kernels.h"

/* A dense tensor owned by the caller (data: float or int32_t). */
typedef struct Tensor {
    rt_shape shape;
    DType dtype;
    void *data;
} Tensor;

/* What a graph run is fed with. */
typedef struct InterpInputs {
    int64_t sym[MAX_SYMS];         /* the value of every symbolic dim; sym[SYM_SEED]: dropout's seed */
    const int32_t *tokens;         /* [batch, len] of the entry's tokens */
    const int32_t *tokens_of[MAX_SYMS]; /* a training graph's: per length symbol
                                      (NULL: tokens) */
    const int32_t *labels;         /* a training graph's targets [batch, len] */
    const int32_t *lengths[MAX_SYMS]; /* [batch] per sequence symbol */
    const Tensor *memory;          /* decoder: the encoder's output */
    Tensor **state;                /* derived steps: Model.states, updated by store */
} InterpInputs;

/* Run g; on success *out holds the output (free with tensor_free).
 * params[i] holds Model.params[i]'s data. Returns 0, or -1 with a message. */
int interp_run(const Model *m, const Graph *g, float *const *params,
               const InterpInputs *in, Tensor *out, char *err, size_t errlen);

/* The same, keeping every node's value: all[i] for node i (g->n tensors;
 * free each with tensor_free). For testing compiled code op by op. */
int interp_run_all(const Model *m, const Graph *g, float *const *params,
                   const InterpInputs *in, Tensor *all, char *err, size_t errlen);

void tensor_free(Tensor *t);

#endif
