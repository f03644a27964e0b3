/* graph.h - the graph IR: typed nodes with symbolic shapes, in topological
 * order, plus the model around them (weights, vocabularies, symbols).
 *
 * A node's inputs always have smaller ids than the node. Shapes are lists of
 * dims, each a constant or a symbol (the batch size, the source length, the
 * target length) bound only when the graph runs. Everything lives in the
 * compile's arena.
 */
#ifndef VAMOS_GRAPH_H
#define VAMOS_GRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ast.h"
#include "ops.h"

#define MAX_RANK 8
#define MAX_DIM ((int64_t)1 << 31)   /* largest dimension accepted */

/* A dimension: a constant (sym < 0, value n) or a symbol (sym >= 0). */
typedef struct Dim {
    int64_t n;
    int sym;
} Dim;

typedef struct Shape {
    int rank;
    Dim d[MAX_RANK];
} Shape;

typedef enum DType { DT_F32, DT_I32 } DType;

/* What an INPUT node is fed with when the graph runs. */
typedef enum InputRole {
    IN_TOKENS,    /* i32 [batch, len]: token ids of a sequence */
    IN_LENGTHS,   /* i32 [batch]: valid length of each row of a sequence */
    IN_TENSOR,    /* f32: the encoder's output given to the decoder */
    IN_STATE,     /* f32: state kept between decoder steps (sym: its index) */
    IN_LABELS     /* i32 [batch, len]: training targets, -1 where none (sym: len) */
} InputRole;

#define MAX_IN 4   /* inputs of a node (op_info[op].arity of them) */
#define ATTENTION_MAX_WIDTH 256   /* widest query, key and value rows a fused attention takes */

/* One step of a MAP node's program. Its value is register 4 + its index;
 * registers 0..3 are the node's inputs, broadcast to its shape. op is a
 * unary op (reads a), a binary op (reads a, b) or CONST (the scalar
 * value). The last step's value is the node's. */
typedef struct MapStep {
    Op op;
    unsigned char a, b;
    float value;
} MapStep;
#define MAP_MAX_STEPS 16

/* A kernel's schedule (schedule.h): how its loops are blocked. 0 in a
 * field: the default. Set by vamos tune's results (schedule.c). */
typedef struct Sched {
    unsigned char qb;   /* ATTENTION: query rows per parallel iteration */
    unsigned char bk;   /* ATTENTION: keys per block */
    unsigned char rb;   /* MATMUL, LINEAR, ATTENTION: rows of a register tile */
    unsigned char th;   /* all three: threads, 1 (one) or 2 (the pool's, when
                         * the work is worth waking it) */
} Sched;

typedef struct Node {
    Op op;
    int in[MAX_IN];
    DType dtype;
    Shape shape;
    SrcLoc loc;         /* where the program made it (maybe in a library) */
    SrcLoc site;        /* the outermost call in the model that led here */
    Sched sched;
    union {
        double value;   /* CONST: a scalar broadcast to its shape */
        int param;      /* PARAM: index into Model.params */
        struct { InputRole role; int sym; const char *name; } input; /* INPUT */
        int axis;       /* SUM MAX MEAN */
        int perm[MAX_RANK]; /* TRANSPOSE: out.d[i] = in.d[perm[i]] */
        /* MATMUL, LINEAR: b is a weight stored in panels (pack.c);
         * LINEAR: relu after the bias */
        /* bt: MATMUL b is [.., N, K], read transposed; q8: b is a packed
         * weight stored as int8 with one scale per column (pack.c); a8:
         * 0, or a's rows are int8 too, one scale per row, with a8 bits
         * (8: VNNI's dot products, 7: AVX2's, pass_quantize); heads
         * (MATMUL, fuse_heads.c): the result [B, H, M, N] is written as
         * its transpose(x, 1, 2), [B, M, H, N], the node's shape; at
         * (MATMUL, fuse_heads.c): a is x [.., K, M], read transposed */
        struct { bool packed, relu, bt, q8, at, heads; unsigned char a8; } mm;
        float eps;      /* LAYER_NORM */
        /* XENT, XENT_GRAD: label smoothing eps; peer 0, or 1 + the other
         * of the pair on the same logits when one kernel computes both
         * (chunk_output.c): XENT_GRAD's then also writes XENT's values */
        struct { float eps; int peer; } xent;
        struct { float p; uint32_t salt; } drop;   /* DROPOUT */
        struct { const MapStep *code; int nstep, nin; } map;   /* MAP */
        /* ATTENTION: scores = (q @ kt) / scale when div, else * scale */
        struct { float scale; bool div; } attn;
        int offset;     /* ARANGE, CAUSAL_MASK: 1 + the symbol whose value
                           is added to the (row) index; 0: none */
        /* STORE(state, x, positions): state k with x's row r written at
         * index positions[r] of `axis` (x has size 1 there; the state's
         * first dim is the batch), or all of x at positions[0] (shared: a
         * step whose rows share one position, the state without a batch),
         * or all of x (axis -1) */
        struct { int state, axis; bool shared; } store;
    } attr;
} Node;

typedef struct Graph {
    const char *name;   /* "encoder" or "decoder" */
    Node *nodes;
    int n, cap;
    int output;         /* node id of the returned tensor, -1 if none */
    /* the memory plan (plan stage, plan.c): slot[i] the buffer of node
     * i's value (-1: a weight), nslots buffers; NULL before it */
    int *slot;
    int nslots;
} Graph;

typedef enum ParamInit { INIT_XAVIER, INIT_ZEROS, INIT_ONES, INIT_NORMAL } ParamInit;

typedef struct ParamInfo {
    const char *name;   /* hierarchical: encoder.layers.3.self_attn.q.w */
    Shape shape;        /* constant dims only */
    ParamInit init;
    SrcLoc loc;         /* the `param` statement */
    SrcLoc site;        /* the call that made it, for messages */
    bool packed;        /* compiled code reads it in panels (pack.c) */
    bool packed_t;      /* it is kept as stored, followed by its transpose in
                         * panels at param_t_offset (a tied output layer) */
    bool q8;            /* its panels are int8, a scale per column (pass_quantize) */
    unsigned char a8;   /* 0, or q8 in panels of 4 k per column for products
                         * whose activations are int8 of a8 bits (pass_quantize) */
} ParamInfo;

typedef struct Vocab {
    const char *name;
    const char **words;
    int n;
    int eos, bos, unk, pad;   /* ids, -1 if absent */
    const char *bpe;          /* a subword vocabulary's file text (runtime/bpe.h), or NULL */
    size_t bpe_len;
    SrcLoc loc;
} Vocab;

/* A symbolic dimension. A sequence length has an IN_LENGTHS input. */
typedef enum SymRole { SYM_BATCH, SYM_SRC_LEN, SYM_TGT_LEN, SYM_STEP_POS } SymRole;
typedef struct Symbol {
    const char *name;
    SymRole role;
} Symbol;

#define MAX_SYMS 8
/* The last two slots of a run's symbol values are not dimensions: the
 * random seed DROPOUT draws from, and (training's output layer in chunks,
 * chunk_output.c) 1 when MATMUL_TN adds its products to what its output
 * holds. Models have at most SYM_MODEL_MAX symbols. */
#define SYM_SEED (MAX_SYMS - 1)
#define SYM_ACC (MAX_SYMS - 2)
#define SYM_MODEL_MAX SYM_ACC

/* A tensor a derived decoder step keeps between runs (incremental.c). */
typedef struct State {
    Shape shape;        /* symbolic: batch, source length, cache length */
    int batch_axis;     /* the dim that is the batch (rows follow beams), -1 */
    bool cache;         /* a key/value cache (else computed once per sentence) */
} State;

/* What the derived step returns (fuse_output.c). */
typedef enum StepOut {
    STEP_OUT_AS_WRITTEN,             /* what the decoder returns */
    STEP_OUT_LOGITS_OF_SOFTMAX,      /* x, where the decoder returns softmax(x) */
    STEP_OUT_LOGITS_OF_LOG_SOFTMAX   /* x, where it returns log_softmax(x) */
} StepOut;

typedef struct Model {
    const char *name;
    SrcLoc loc;
    Graph enc, dec;
    /* derived incremental decoding (empty when it could not be derived):
     * prep runs once per batch and fills the per-sentence states; step
     * computes the scores of one new position from states and the last
     * word, appending to the caches. */
    Graph prep, step;
    State *states;
    int nstates;
    const char *no_step;   /* why there is no step, or NULL */
    bool step_shared;      /* the step's rows share one position, t (incremental.c): no continuous batching */
    StepOut step_out;
    ParamInfo *params;
    int nparams, cap_params;
    Vocab *src, *tgt;
    Symbol syms[MAX_SYMS];
    int nsyms;
} Model;

/* ---- building ---- */
struct Arena;
int graph_add(struct Arena *a, Graph *g, Node n);   /* returns the node id */

/* ---- shapes ---- */
bool dim_eq(Dim a, Dim b);
bool shape_eq(const Shape *a, const Shape *b);
Dim dim_const(int64_t n);
/* Format a shape as "[b, n, 512]" using the model's symbol names. */
const char *shape_str(struct Arena *a, const Model *m, const Shape *s);
int64_t shape_numel_const(const Shape *s);   /* -1 if any dim is symbolic */

/* ---- dumps (graph_dump.c) ---- */
void graph_dump_text(FILE *out, const Model *m, const Graph *g, struct Arena *a);
/* all: also the derived per-sentence and step graphs */
void graph_dump_dot(FILE *out, const Model *m, struct Arena *a, bool all);

/* ---- verifier (graph_check.c): abort with file:line on a broken IR ---- */
void graph_check(const Model *m, const Graph *g, const char *after_pass);

#endif
