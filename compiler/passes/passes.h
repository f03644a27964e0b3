/* passes.h - graph passes, one file each. Each takes a graph and returns a
 * new one (in the same arena); the verifier runs after each in debug builds.
 *
 *   dropout.c  dropout removed (inference graphs)
 *   autodiff.c the training graph: loss and every weight's gradient
 *   fold.c  constant folding of elementwise ops on scalar constants
 *   dce.c   dead node elimination (nodes the output does not need)
 *   incremental.c  the one-token decoder step derived from the decoder
 *   fuse_attention.c  scaled dot-product attention fused into one ATTENTION node
 *   fuse_linear.c  matmul + bias (+ relu) fused into one LINEAR node
 *   fuse_norm.c    (residual add +) layer norm fused into one LAYER_NORM
 *   fuse_map.c     chains of elementwise ops fused into one MAP node
 *   fuse_output.c  the decoder step returns logits, not their softmax
 *   pack.c  which weights compiled matmuls read pre-packed in panels
 *   plan.c  the static memory plan (which buffer holds each node's value)
 *   chunk_output.c  the training graph's output layer, ordered to run in chunks of rows
 *
 * pipeline.h runs them in order, as a table of stages.
 */
#ifndef VAMOS_PASSES_H
#define VAMOS_PASSES_H

#include "graph.h"

struct Arena;
Graph pass_fold(struct Arena *a, const Graph *g);
Graph pass_strip_dropout(struct Arena *a, const Graph *g);
/* The training graph of m (see autodiff.c); on failure a graph with
 * output -1 and a message. */
Graph derive_training(struct Arena *a, const Model *m, float smoothing, char *err, size_t errlen);
Graph pass_dce(struct Arena *a, const Graph *g);

/* Derive m->prep and m->step (see incremental.c). false, with the reason
 * in m->no_step, when the decoder cannot be decoded incrementally. */
bool derive_step(struct Arena *a, Model *m);

/* Replace each attention pattern (matmul, scale, mask, softmax, matmul)
 * by one ATTENTION node. */
Graph pass_fuse_attention(struct Arena *a, const Graph *g);
/* Replace each x @ w + bias (then maximum(., 0)) by one LINEAR node. */
Graph pass_fuse_linear(struct Arena *a, const Graph *g);
/* When g's output is softmax(x) or log_softmax(x) along the last axis,
 * make x the output (the step of decoding needs no more) and say which. */
StepOut pass_output_logits(Graph *g);
/* Replace each layer norm (of a sum h + r) by one LAYER_NORM node. */
Graph pass_fuse_norm(struct Arena *a, const Graph *g);
/* Replace each chain of two or more elementwise ops by one MAP node. */
Graph pass_fuse_map(struct Arena *a, const Graph *g);
/* Fold a transpose of a matmul's b (last two axes) into the matmul
 * (attr.mm.bt), and cancel double transposes. */
Graph pass_fuse_transpose(struct Arena *a, const Graph *g);
/* Training graphs: a matmul reads a head-split operand, and writes a
 * result that is transposed back, in place (attr.mm.heads). */
Graph pass_fuse_heads(struct Arena *a, const Graph *g);

/* The training graph's output layer, which its runner calls a few
 * sentences at a time (chunk_output.c): nodes first .. first + 4 are the
 * logits' product, the loss, its gradient, the gradient of the product's
 * input h and the weight's (matmul_tn, whose row operand is t_rows). The
 * row values (h, labels, t_rows and the five but the last) are [batch,
 * length, ...] with batch and length the symbols named. first is -1 when
 * the graph has no such layer. */
typedef struct OutputChunk {
    int first, h, labels, t_rows, batch_sym, len_sym;
} OutputChunk;
/* g with those five nodes one after another (the backward pass's two
 * products moved up), and where they are; g itself when it has no output
 * layer that can run so. */
Graph pass_chunk_output(struct Arena *a, const Graph *g, OutputChunk *oc);

/* Mark the weights that are only ever the right operand of a matmul (or
 * the w of a linear) as packed (ParamInfo.packed) and those nodes as
 * reading them packed (Node.attr.mm.packed), in every graph of m. Returns
 * how many are packed. */
int pass_pack(Model *m);
/* The floats compiled code reads for a weight (padded when packed), and
 * the packing of its row-major values w into out (that many floats; -1:
 * out of memory). A packed_t weight's panels begin at param_t_offset. */
int64_t param_floats(const ParamInfo *p);
int pack_param(const ParamInfo *p, const float *w, float *out);
int64_t param_t_offset(const ParamInfo *p);
/* After pass_pack: every packed weight (and a transposed table's panels)
 * becomes int8 with one scale per output column (ParamInfo.q8, and
 * attr.mm.q8 on the products that read it); embeddings, norms and biases
 * stay f32. With a8 (8 or 7), the products that read them take their
 * activations as int8 too, each row with one scale, in a8 bits
 * (rt_quantize_rows; attr.mm.a8, ParamInfo.a8): integer dot products,
 * VNNI's with 8 bits, AVX2's with 7 (cg_int8.c). Returns how many weights. */
int pass_quantize(Model *m, int a8);
/* w as the int8 products see it: each column's values rounded to its
 * scale's grid (a packed_t table's rows: the output layer reads it
 * transposed; w itself for a weight that is not q8), row-major. out may
 * be w. */
void param_dequantized(const ParamInfo *p, const float *w, float *out);

/* Give each node a buffer number slot[i] (-1 for weights); values whose
 * lifetimes do not overlap share a buffer when `reuse`. Returns the
 * number of buffers, or -1 when out of memory. */
int plan_memory(const Graph *g, bool reuse, int *slot);
/* The same with views: a reshape of a computed value (not a weight, an
 * input or a state) of the same size takes its input's buffer, which is
 * then kept until the last reader of either; its kernel need not run
 * (plan_is_view). The training step's runner plans so; the translators'
 * runtimes plan without. */
int plan_memory_views(const Graph *g, bool reuse, int *slot);
/* Under such a plan, is node i a view (its value already in place)? */
bool plan_is_view(const Graph *g, const int *slot, int i);
/* The plan stage: g->slot and g->nslots from plan_memory with reuse. */
void pass_plan(struct Arena *a, Graph *g);
/* A state input or a store into a state: its buffer is the state's. */
bool is_state(const Node *n);

/* Copy node n of a graph into dst with its inputs renamed through remap. */
int graph_copy_node(struct Arena *a, Graph *dst, const Node *n, const int *remap);

#endif
