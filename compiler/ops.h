/* ops.h - the one table of primitive operations.
 *
 * Every pass, the shape rules, the interpreter and (later) every backend
 * switch over `Op` with no `default:` so that -Wswitch names the op a new
 * entry forgot. Columns: enum name, text (in dumps and messages), number of
 * inputs, kind.
 *
 *   kind  OPK_SOURCE   no tensor inputs (inputs, weights, constants, masks)
 *         OPK_UNARY    elementwise f(x)
 *         OPK_BINARY   elementwise f(x, y), numpy broadcasting
 *         OPK_REDUCE   along one axis, the axis kept with size 1
 *         OPK_LAYOUT   moves data: reshape, transpose
 *         OPK_OTHER    gather, matmul, padding mask, store, attention
 *
 * store(state, x) exists only in derived decoder steps (incremental.c): the
 * state with x written into it (see Node.attr.store).
 *
 * The fused ops exist only after fusion, each one kernel:
 *   attention(q, kt, v, mask)    softmax(q @ kt (scaled) + mask) @ v
 *                                (fuse.c; Node.attr.attn)
 *   linear(x, w, bias)           x @ w + bias, then relu if attr.mm.relu
 *                                (fuse_linear.c)
 *   layer_norm(x, r, gain, bias) the standard library's layer_norm of
 *                                x + r (r: a residual, or the scalar 0)
 *                                with attr.eps (fuse_norm.c)
 *   map(x0, x1, x2, x3)          a chain of elementwise ops as one loop:
 *                                the small program attr.map (fuse_map.c).
 *                                It reads attr.map.nin inputs; the
 *                                unused input slots repeat input 0.
 *
 * Training (autodiff.c) adds:
 *   ge(x, y)                     1 where x >= y, else 0 (the gradients of
 *                                max, maximum and abs select with it)
 *   dropout(x)                   x * keep / (1 - p), keep = 0 with
 *                                probability attr.drop.p, drawn from a hash
 *                                of (the run's seed sym[SYM_SEED], attr.drop.salt,
 *                                the element's index); its own gradient rule
 *                                (the same mask). Removed from inference
 *                                graphs (dropout.c).
 *   xent(logits, labels)         per position, the label-smoothed cross
 *                                entropy -sum_j q_j log softmax(logits)_j with
 *                                q = (1 - eps) onehot(label) + eps / V
 *                                (attr.eps); 0 where the label is < 0
 *   xent_grad(logits, labels)    its gradient: softmax(logits) - q (0 rows
 *                                where the label is < 0)
 *   scatter_add(g, ids)          [V, D] zeros, then row ids[i] += g[i]: the
 *                                gradient of gather (ids out of range skipped)
 *   matmul_tn(a, g)              [K, N] = sum over every leading position
 *                                of a[..., K]^T g[..., N]: the gradient of
 *                                a 2-D weight w in a @ w
 */
#ifndef VAMOS_OPS_H
#define VAMOS_OPS_H

#define VAMOS_OPS(X)                                   \
    X(INPUT,       "input",       0, OPK_SOURCE)       \
    X(PARAM,       "param",       0, OPK_SOURCE)       \
    X(CONST,       "const",       0, OPK_SOURCE)       \
    X(ARANGE,      "arange",      0, OPK_SOURCE)       \
    X(CAUSAL_MASK, "causal_mask", 0, OPK_SOURCE)       \
    X(PAD_MASK,    "pad_mask",    1, OPK_OTHER)        \
    X(GATHER,      "gather",      2, OPK_OTHER)        \
    X(MATMUL,      "matmul",      2, OPK_OTHER)        \
    X(ADD,         "add",         2, OPK_BINARY)       \
    X(SUB,         "sub",         2, OPK_BINARY)       \
    X(MUL,         "mul",         2, OPK_BINARY)       \
    X(DIV,         "div",         2, OPK_BINARY)       \
    X(MAXIMUM,     "maximum",     2, OPK_BINARY)       \
    X(POW,         "pow",         2, OPK_BINARY)       \
    X(GE,          "ge",          2, OPK_BINARY)       \
    X(NEG,         "neg",         1, OPK_UNARY)        \
    X(EXP,         "exp",         1, OPK_UNARY)        \
    X(LOG,         "log",         1, OPK_UNARY)        \
    X(SQRT,        "sqrt",        1, OPK_UNARY)        \
    X(RSQRT,       "rsqrt",       1, OPK_UNARY)        \
    X(TANH,        "tanh",        1, OPK_UNARY)        \
    X(ERF,         "erf",         1, OPK_UNARY)        \
    X(SIN,         "sin",         1, OPK_UNARY)        \
    X(COS,         "cos",         1, OPK_UNARY)        \
    X(FLOOR,       "floor",       1, OPK_UNARY)        \
    X(ABS,         "abs",         1, OPK_UNARY)        \
    X(SUM,         "sum",         1, OPK_REDUCE)       \
    X(MAX,         "max",         1, OPK_REDUCE)       \
    X(MEAN,        "mean",        1, OPK_REDUCE)       \
    X(RESHAPE,     "reshape",     1, OPK_LAYOUT)       \
    X(TRANSPOSE,   "transpose",   1, OPK_LAYOUT)       \
    X(STORE,       "store",       2, OPK_OTHER)        \
    X(ATTENTION,   "attention",   4, OPK_OTHER)        \
    X(LINEAR,      "linear",      3, OPK_OTHER)        \
    X(LAYER_NORM,  "layer_norm",  4, OPK_OTHER)        \
    X(MAP,         "map",         4, OPK_OTHER)        \
    X(DROPOUT,     "dropout",     1, OPK_OTHER)        \
    X(XENT,        "xent",        2, OPK_OTHER)        \
    X(XENT_GRAD,   "xent_grad",   2, OPK_OTHER)        \
    X(SCATTER_ADD, "scatter_add", 2, OPK_OTHER)        \
    X(MATMUL_TN,   "matmul_tn",   2, OPK_OTHER)

typedef enum Op {
#define X(id, text, arity, kind) OP_##id,
    VAMOS_OPS(X)
#undef X
    OP_COUNT
} Op;

typedef enum OpKind {
    OPK_SOURCE, OPK_UNARY, OPK_BINARY, OPK_REDUCE, OPK_LAYOUT, OPK_OTHER
} OpKind;

typedef struct OpInfo {
    const char *text;
    int arity;
    OpKind kind;
} OpInfo;

extern const OpInfo op_info[OP_COUNT];

#endif
