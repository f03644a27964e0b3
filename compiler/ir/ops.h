/* ops.h - the one table of primitive operations.
 *
 * Everything an op is, that can be said without code, is a column of
 * VAMOS_OPS; the rest is one case per op in an exhaustive switch (no
 * `default:`, so -Wswitch names each place a new entry must be handled).
 * Columns:
 *
 *   id       the enum name, OP_<id>
 *   text     its name in dumps and messages (and the language's builtin
 *            where there is one: builtins.c)
 *   operator how the language writes it as an operator ("+"), or NULL
 *   arity    number of tensor inputs
 *   kind     OPK_SOURCE   no tensor inputs (inputs, weights, constants, masks)
 *            OPK_UNARY    elementwise f(x)
 *            OPK_BINARY   elementwise f(x, y), numpy broadcasting
 *            OPK_REDUCE   along one axis, the axis kept with size 1
 *            OPK_LAYOUT   moves data: reshape, transpose
 *            OPK_OTHER    gather, matmul, padding mask, store, attention...
 *   attr     the member of Node.attr it reads (AT_*): what besides the
 *            shapes makes two kernels of the op differ. kernel_key
 *            (codegen/cg_graph.c) hashes it; graph_dump prints it.
 *   made by  the stage that makes it (BY_*): the program (elaboration),
 *            incremental decoding, fusion, or training (autodiff). A pass
 *            that runs before a stage never sees its ops.
 *   formula  elementwise ops: the scalar function of x (and y), written
 *            with the primitives F_* (F_ADD, F_SQRT, F_ONE...); NONE for
 *            the rest. op_scalar.h instantiates it for float and double
 *            (the reference kernels, constant folding, the language's
 *            numbers) and codegen/cg_elementwise.c for LLVM IR, so an op's
 *            meaning is written once.
 *
 * The ops other than the elementwise ones, in words:
 *
 * store(state, x, positions) exists only in derived decoder steps
 * (incremental.c) and training graphs: the state with x written into it
 * (see Node.attr.store); x's row r at positions[r] (int32 [batch]) of the
 * state's axis, or, with axis -1, all of x (positions is then unread).
 *
 * The fused ops exist only after fusion, each one kernel:
 *   attention(q, kt, v, mask)    softmax(q @ kt (scaled) + mask) @ v
 *                                (fuse_attention.c; Node.attr.attn)
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
 * dropout(x) (the language's builtin): x * keep / (1 - p), keep = 0 with
 * probability attr.drop.p, drawn from a hash of (the run's seed
 * sym[SYM_SEED], attr.drop.salt, the element's index); its own gradient
 * rule (the same mask). Removed from inference graphs (dropout.c).
 *
 * Training (autodiff.c) adds:
 *   ge(x, y)                     1 where x >= y, else 0 (the gradients of
 *                                max, maximum and abs select with it)
 *   xent(logits, labels)         per position, the label-smoothed cross
 *                                entropy -sum_j q_j log softmax(logits)_j with
 *                                q = (1 - eps) onehot(label) + eps / V
 *                                (attr.xent.eps); 0 where the label is < 0
 *   xent_grad(logits, labels)    its gradient: softmax(logits) - q (0 rows
 *                                where the label is < 0)
 *                                Compiled, the two may share one kernel
 *                                (attr.xent.peer, chunk_output.c): the
 *                                gradient's also writes the losses, and
 *                                the xent node has no kernel of its own
 *   scatter_add(g, ids)          [V, D] zeros, then row ids[i] += g[i]: the
 *                                gradient of gather (ids out of range skipped)
 *   matmul_tn(a, g)              [K, N] = sum over every leading position
 *                                of a[..., K]^T g[..., N]: the gradient of
 *                                a 2-D weight w in a @ w
 */
#ifndef VAMOS_OPS_H
#define VAMOS_OPS_H

#define VAMOS_OPS(X)   /* id, text, operator, arity, kind, attr, made by, formula */                             \
    X(INPUT,       "input",       NULL,      0, OPK_SOURCE, AT_INPUT,  BY_ELAB,        NONE)                     \
    X(PARAM,       "param",       NULL,      0, OPK_SOURCE, AT_PARAM,  BY_ELAB,        NONE)                     \
    X(CONST,       "const",       NULL,      0, OPK_SOURCE, AT_VALUE,  BY_ELAB,        NONE)                     \
    X(ARANGE,      "arange",      NULL,      0, OPK_SOURCE, AT_OFFSET, BY_ELAB,        NONE)                     \
    X(CAUSAL_MASK, "causal_mask", NULL,      0, OPK_SOURCE, AT_OFFSET, BY_ELAB,        NONE)                     \
    X(PAD_MASK,    "pad_mask",    NULL,      1, OPK_OTHER,  AT_NONE,   BY_ELAB,        NONE)                     \
    X(GATHER,      "gather",      NULL,      2, OPK_OTHER,  AT_NONE,   BY_ELAB,        NONE)                     \
    X(MATMUL,      "matmul",      "@",       2, OPK_OTHER,  AT_MM,     BY_ELAB,        NONE)                     \
    X(ADD,         "add",         "+",       2, OPK_BINARY, AT_NONE,   BY_ELAB,        F_ADD(x, y))              \
    X(SUB,         "sub",         "-",       2, OPK_BINARY, AT_NONE,   BY_ELAB,        F_SUB(x, y))              \
    X(MUL,         "mul",         "*",       2, OPK_BINARY, AT_NONE,   BY_ELAB,        F_MUL(x, y))              \
    X(DIV,         "div",         "/",       2, OPK_BINARY, AT_NONE,   BY_ELAB,        F_DIV(x, y))              \
    X(MAXIMUM,     "maximum",     NULL,      2, OPK_BINARY, AT_NONE,   BY_ELAB,        F_MAX_NAN(x, y))          \
    X(POW,         "pow",         NULL,      2, OPK_BINARY, AT_NONE,   BY_ELAB,        F_POW(x, y))              \
    X(GE,          "ge",          NULL,      2, OPK_BINARY, AT_NONE,   BY_TRAIN,       F_GE(x, y))               \
    X(NEG,         "neg",         "unary -", 1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_NEG(x))                 \
    X(EXP,         "exp",         NULL,      1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_EXP(x))                 \
    X(LOG,         "log",         NULL,      1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_LOG(x))                 \
    X(SQRT,        "sqrt",        NULL,      1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_SQRT(x))                \
    X(RSQRT,       "rsqrt",       NULL,      1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_DIV(F_ONE, F_SQRT(x)))  \
    X(TANH,        "tanh",        NULL,      1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_TANH(x))                \
    X(ERF,         "erf",         NULL,      1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_ERF(x))                 \
    X(SIN,         "sin",         NULL,      1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_SIN(x))                 \
    X(COS,         "cos",         NULL,      1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_COS(x))                 \
    X(FLOOR,       "floor",       NULL,      1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_FLOOR(x))               \
    X(ABS,         "abs",         NULL,      1, OPK_UNARY,  AT_NONE,   BY_ELAB,        F_ABS(x))                 \
    X(SUM,         "sum",         NULL,      1, OPK_REDUCE, AT_AXIS,   BY_ELAB,        NONE)                     \
    X(MAX,         "max",         NULL,      1, OPK_REDUCE, AT_AXIS,   BY_ELAB,        NONE)                     \
    X(MEAN,        "mean",        NULL,      1, OPK_REDUCE, AT_AXIS,   BY_ELAB,        NONE)                     \
    X(RESHAPE,     "reshape",     NULL,      1, OPK_LAYOUT, AT_NONE,   BY_ELAB,        NONE)                     \
    X(TRANSPOSE,   "transpose",   NULL,      1, OPK_LAYOUT, AT_PERM,   BY_ELAB,        NONE)                     \
    X(STORE,       "store",       NULL,      3, OPK_OTHER,  AT_STORE,  BY_INCREMENTAL, NONE)                     \
    X(ATTENTION,   "attention",   NULL,      4, OPK_OTHER,  AT_ATTN,   BY_FUSE,        NONE)                     \
    X(LINEAR,      "linear",      NULL,      3, OPK_OTHER,  AT_MM,     BY_FUSE,        NONE)                     \
    X(LAYER_NORM,  "layer_norm",  NULL,      4, OPK_OTHER,  AT_EPS,    BY_FUSE,        NONE)                     \
    X(MAP,         "map",         NULL,      4, OPK_OTHER,  AT_MAP,    BY_FUSE,        NONE)                     \
    X(DROPOUT,     "dropout",     NULL,      1, OPK_OTHER,  AT_DROP,   BY_ELAB,        NONE)                     \
    X(XENT,        "xent",        NULL,      2, OPK_OTHER,  AT_XENT,   BY_TRAIN,       NONE)                     \
    X(XENT_GRAD,   "xent_grad",   NULL,      2, OPK_OTHER,  AT_XENT,   BY_TRAIN,       NONE)                     \
    X(SCATTER_ADD, "scatter_add", NULL,      2, OPK_OTHER,  AT_NONE,   BY_TRAIN,       NONE)                     \
    X(MATMUL_TN,   "matmul_tn",   NULL,      2, OPK_OTHER,  AT_NONE,   BY_TRAIN,       NONE)

typedef enum Op {
#define X(id, text, oper, arity, kind, attr, by, formula) OP_##id,
    VAMOS_OPS(X)
#undef X
    OP_COUNT
} Op;

typedef enum OpKind {
    OPK_SOURCE, OPK_UNARY, OPK_BINARY, OPK_REDUCE, OPK_LAYOUT, OPK_OTHER
} OpKind;

/* The member of Node.attr an op reads (graph.h says what each holds). */
typedef enum AttrKind {
    AT_NONE, AT_INPUT, AT_PARAM, AT_VALUE, AT_OFFSET, AT_AXIS, AT_PERM,
    AT_MM, AT_STORE, AT_ATTN, AT_EPS, AT_MAP, AT_DROP, AT_XENT
} AttrKind;

/* The stage that makes an op, in pipeline order. */
typedef enum MadeBy { BY_ELAB, BY_INCREMENTAL, BY_FUSE, BY_TRAIN } MadeBy;

typedef struct OpInfo {
    const char *text;
    const char *oper;
    int arity;
    OpKind kind;
    AttrKind attr;
    MadeBy by;
} OpInfo;

extern const OpInfo op_info[OP_COUNT];

#endif
