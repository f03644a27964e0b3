/* compile.h - the pipeline, as one call:
 *
 *   file.vam + lang/std -> parse -> resolve -> elaborate -> the stages of
 *   passes/pipeline.h (fold, dce, incremental, fuse, pack, plan)
 *
 * and the model-level services the driver needs: binding a weights file to
 * the model's parameters, initialising weights, tokenising, greedy decoding.
 */
#ifndef VAMOS_COMPILE_H
#define VAMOS_COMPILE_H

#include <stdio.h>

#include "diag.h"
#include "graph.h"
#include "interp.h"
#include "vamos/weights.h"

/* Compile a model file: the front end, then the stages of
 * passes/pipeline.h. NULL (with diagnostics) on any error. If `after` is
 * non-NULL, stop after the stage of that name ("elab", "fold", "dce",
 * "incremental": the derived step but no fusion, ...), or with "train"
 * after dce with dropout kept: the graphs derive_training differentiates.
 * Otherwise every stage runs, and dropout is gone (inference). */
Model *compile_file(Arena *a, Diag *d, const char *path, const char *after);
/* The same from text in memory (tests, fuzzing). */
Model *compile_text(Arena *a, Diag *d, const char *name, const char *text, long len, const char *after);

/* Weights bound to a model: params[i] is Model.params[i]'s data. */
typedef struct Bound {
    vamos_weights *w;
    float **params;
} Bound;

/* Load path and match it to the model: every weight present with its shape
 * and dtype, nothing unexpected. Messages name the tensor. */
int bind_weights(const Model *m, const char *path, Bound *out, FILE *errs);
void bound_free(Bound *b);

/* Deterministic initialisation (Xavier/Glorot uniform for matrices, zeros
 * for biases, ones for gains) written to path. */
int init_weights(const Model *m, const char *path, uint64_t seed, char *err, size_t errlen);

/* Word-level tokenisation against a vocabulary: whitespace-separated words,
 * exact match, then lowercase match, then <unk>. Returns the number of ids,
 * or -1 with a message naming the word when it is unknown and there is no
 * <unk>. ids has room for max ids. */
int tokenize(const Vocab *v, const char *text, int32_t *ids, int max, char *err, size_t errlen);

/* ids back to text, malloc'd (NULL if out of memory): subwords joined as
 * runtime/bpe.h says, words with spaces. */
char *detokenize_ids(const Vocab *v, const int32_t *ids, int n);
/* What runs the graphs: the JIT's native code, or (jit == NULL) the
 * reference interpreter. */
struct Jit;
typedef struct Engine {
    struct Jit *jit;
} Engine;

int engine_run(const Engine *e, const Model *m, const Graph *g, float *const *params,
               const InterpInputs *in, Tensor *out, char *err, size_t errlen);

/* Greedy decoding, one sentence (eng NULL: the interpreter). out gets the target
 * ids (without the start token and <eos>). Returns the count or -1. */
int greedy_decode(const Engine *eng, const Model *m, float *const *params, const int32_t *src, int n,
                  int max_len, int32_t *out, char *err, size_t errlen);

/* Run the encoder, and the decoder on given target ids (teacher forcing),
 * for a batch with lengths; outputs are allocated. */
int run_batch(const Engine *eng, const Model *m, float *const *params, int batch,
              const int32_t *src, const int32_t *src_len, int n,
              const int32_t *tgt, const int32_t *tgt_len, int mlen,
              Tensor *enc_out, Tensor *dec_out, char *err, size_t errlen);

int model_sym(const Model *m, SymRole role);

#endif
