/* train_graph.h - one training step of a model: the loss of a batch and
 * every weight's gradient, from the training graph (autodiff.c) run as
 * native code (fused, compiled through the same LLVM path as inference)
 * or by the reference interpreter.
 */
#ifndef VAMOS_TRAIN_GRAPH_H
#define VAMOS_TRAIN_GRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "graph.h"

/* A batch of sentence pairs, padded: rows x src_len source ids, rows x
 * tgt_len decoder inputs (the start word, then the target) and labels
 * (the target, then <eos>; -1 on padding). */
typedef struct TrainBatch {
    int rows, src_len, tgt_len;
    const int32_t *src, *src_lengths;
    const int32_t *tgt_in, *tgt_lengths, *labels;
} TrainBatch;

typedef struct TrainGraph TrainGraph;

/* Derive m's training graph (m compiled with "train"), with label
 * smoothing `smoothing`; with `jit`, fuse it and compile it. NULL with a
 * message. */
TrainGraph *train_graph_new(Arena *a, const Model *m, float smoothing, bool jit, char *err, size_t errlen);

/* train_graph_new with tuned schedules: before its kernels are compiled,
 * the graph's tunable nodes take db's records (vamos tune --train);
 * *tuned and *kernels say how many of its distinct kernels db had. */
struct TuneDB;
TrainGraph *train_graph_new_tuned(Arena *a, const Model *m, float smoothing, bool jit, const struct TuneDB *db,
                                  int *tuned, int *kernels, char *err, size_t errlen);

/* The training graph as train_graph_new(jit) compiles it (derived,
 * folded, fused, the output layer chunked), not compiled: what vamos tune
 * --train times. out->output < 0 on error. */
Graph train_graph_compiled_form(Arena *a, const Model *m, float smoothing, char *err, size_t errlen);
void train_graph_free(TrainGraph *t);
/* The graph that runs (fused when compiled). */
const Graph *train_graph_graph(const TrainGraph *t);
/* bytes of zeroed memory for free(); 2 MB and more in huge pages where
 * the system gives them (see train_graph.c). NULL when out of memory. */
void *train_alloc(size_t bytes);
/* The chunks the compiled graph runs its output layer in for a batch of
 * `rows` sentences of target length len (chunk_output.c); 1: whole. */
int train_graph_output_chunks(const TrainGraph *t, int64_t rows, int64_t len);

/* Run one batch: *loss = the summed loss over the labelled positions,
 * grads[p] = its gradient with respect to params[p] (zero for a weight
 * the loss does not depend on). seed picks dropout's masks. 0, or -1
 * with a message. */
int train_graph_run(TrainGraph *t, float *const *params, const TrainBatch *b, uint64_t seed, float *const *grads,
                    double *loss, char *err, size_t errlen);

/* Run lanes batches b[0..lanes) at once (together) or one after another,
 * sharing the compiled code: lane l computes loss[l] and grads[l][p], with
 * dropout's masks from seeds[l]. Together, each lane runs on a thread of
 * its own with its kernels unsplit: on few cores, whole batches side by
 * side beat splitting every kernel between the threads (they meet once,
 * not at each of the step's ~1,400 kernels). 0, or -1 with a message. */
#define TRAIN_MAX_LANES 8
int train_graph_run_lanes(TrainGraph *t, int lanes, bool together, float *const *params, const TrainBatch *b,
                          const uint64_t *seeds, float **const *grads, double *loss, char *err,
                          size_t errlen);

/* The floating-point operations of the products (matmul, linear,
 * matmul_tn: 2 per multiply-add) of one step on batch b: what the FMA
 * units must do at least (tests/bench/train_torch.py's bound). */
double train_graph_flop(const TrainGraph *t, const TrainBatch *b);

/* With VAMOS_PROFILE set when the graph was made: time per op kind,
 * summed over the runs so far, to out; VAMOS_PROFILE=nodes adds the slowest
 * nodes with their operands' shapes. */
void train_graph_profile(const TrainGraph *t, FILE *out);

#endif
