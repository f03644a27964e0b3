/* builtins.c - built-in functions: the primitive ops as the language sees
 * them, and compile-time helpers. Numbers fold; tensors become nodes. */
#include "builtins.h"

#include <math.h>
#include <string.h>

#include "op_scalar.h"
#include "shape.h"

/* A number or a tensor; anything else is an error naming the builtin. */
static bool numeric(Elab *e, const Builtin *b, Value v, const char *param)
{
    if (v.k == V_INT || v.k == V_FLOAT || v.k == V_TENSOR)
        return true;
    el_error(e, v.loc, "argument '%s' of '%s' must be a number or a tensor, got %s",
             param, b->name, v_kind_name(v.k));
    return false;
}

static bool tensor_arg(Elab *e, const Builtin *b, Value v, const char *param)
{
    if (v.k == V_TENSOR)
        return true;
    el_error(e, v.loc, "argument '%s' of '%s' must be a tensor, got %s", param, b->name, v_kind_name(v.k));
    return false;
}

/* exp(x), sqrt(x), ...: fold numbers, make a node for tensors. */
static Value b_unary(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    if (!numeric(e, b, a[0], "x"))
        return v_err();
    if (a[0].k == V_TENSOR)
        return el_unary_node(e, b->op, a[0], loc);
    double x = a[0].k == V_INT ? (double)a[0].i : a[0].f;
    return v_float(op_scalar_f64(b->op, x, 0), loc);
}

static Value b_binary(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    if (!numeric(e, b, a[0], b->params[0]) || !numeric(e, b, a[1], b->params[1]))
        return v_err();
    if (a[0].k == V_TENSOR || a[1].k == V_TENSOR)
        return el_binary_node(e, b->op, a[0], a[1], loc);
    double x = a[0].k == V_INT ? (double)a[0].i : a[0].f;
    double y = a[1].k == V_INT ? (double)a[1].i : a[1].f;
    return v_float(b->op == OP_POW ? pow(x, y) : fmax(x, y), loc);
}

/* Normalise a possibly negative axis; error if out of range. */
static bool axis_of(Elab *e, Value v, int rank, int *axis, const char *fn)
{
    if (v.k != V_INT) {
        el_error(e, v.loc, "an axis of '%s' must be an integer, got %s", fn, v_kind_name(v.k));
        return false;
    }
    int64_t x = v.i < 0 ? v.i + rank : v.i;
    if (x < 0 || x >= rank) {
        el_error(e, v.loc, "axis %lld is out of range for a tensor of rank %d", (long long)v.i, rank);
        return false;
    }
    *axis = (int)x;
    return true;
}

/* sum/max/mean(x, axis: -1): reduce one axis, keeping it with size 1. */
static Value b_reduce(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    if (!tensor_arg(e, b, a[0], "x"))
        return v_err();
    Node *x = el_nd(e, a[0]);
    Value axis_v = a[1].k == V_NONE ? v_int(-1, loc) : a[1];
    int axis;
    if (x->shape.rank == 0) {
        el_error(e, loc, "'%s' needs a tensor of rank 1 or more", b->name);
        return v_err();
    }
    if (x->dtype != DT_F32) {
        el_error(e, loc, "'%s' needs a float tensor, got token ids", b->name);
        return v_err();
    }
    if (!axis_of(e, axis_v, x->shape.rank, &axis, b->name))
        return v_err();
    Node n = { .op = b->op, .in = { a[0].node }, .dtype = DT_F32, .shape = x->shape, .loc = loc };
    n.shape.d[axis] = dim_const(1);
    n.attr.axis = axis;
    int id = el_node(e, n);
    return id < 0 ? v_err() : v_tensor(id, loc);
}

/* A list of dims (integers or symbols) as a Shape. */
static bool shape_of_list(Elab *e, Value v, Shape *s, const char *what)
{
    if (v.k != V_LIST) {
        el_error(e, v.loc, "%s must be a list like [b, n, 64], got %s", what, v_kind_name(v.k));
        return false;
    }
    if (v.list.n > MAX_RANK) {
        el_error(e, v.loc, "%s has %d dimensions; the limit is %d", what, v.list.n, MAX_RANK);
        return false;
    }
    s->rank = v.list.n;
    for (int i = 0; i < v.list.n; i++)
        if (!el_value_dim(e, v.list.items[i], &s->d[i], "a dimension"))
            return false;
    return true;
}

static Value layout_node(Elab *e, Op op, Value x, Shape s, const int *perm, SrcLoc loc)
{
    Node n = { .op = op, .in = { x.node }, .dtype = el_nd(e, x)->dtype, .shape = s, .loc = loc };
    if (perm)
        memcpy(n.attr.perm, perm, sizeof n.attr.perm);
    int id = el_node(e, n);
    Value r = id < 0 ? v_err() : v_tensor(id, loc);
    r.tokens_vocab = x.tokens_vocab;
    return r;
}

static Value b_reshape(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    Shape s;
    if (!tensor_arg(e, b, a[0], "x") || !shape_of_list(e, a[1], &s, "the new shape"))
        return v_err();
    Node *x = el_nd(e, a[0]);
    if (!shape_same_numel(&x->shape, &s)) {
        el_error(e, loc, "cannot reshape %s to %s: the number of elements differs",
                 shape_str(e->a, e->m, &x->shape), shape_str(e->a, e->m, &s));
        el_note_origin(e, "the tensor", a[0].node);
        return v_err();
    }
    return layout_node(e, OP_RESHAPE, a[0], s, NULL, loc);
}

static Value permute(Elab *e, Value x, const int *perm, SrcLoc loc)
{
    Node *n = el_nd(e, x);
    Shape s = { .rank = n->shape.rank };
    for (int i = 0; i < s.rank; i++)
        s.d[i] = n->shape.d[perm[i]];
    return layout_node(e, OP_TRANSPOSE, x, s, perm, loc);
}

/* transpose(x, a: -2, b: -1): swap two axes. */
static Value b_transpose(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    if (!tensor_arg(e, b, a[0], "x"))
        return v_err();
    int rank = el_nd(e, a[0])->shape.rank, i, j;
    if (rank < 2) {
        el_error(e, loc, "'transpose' needs a tensor of rank 2 or more");
        return v_err();
    }
    if (!axis_of(e, a[1].k == V_NONE ? v_int(-2, loc) : a[1], rank, &i, b->name) ||
        !axis_of(e, a[2].k == V_NONE ? v_int(-1, loc) : a[2], rank, &j, b->name))
        return v_err();
    int perm[MAX_RANK] = { 0 };
    for (int k = 0; k < rank; k++)
        perm[k] = k;
    perm[i] = j;
    perm[j] = i;
    return permute(e, a[0], perm, loc);
}

/* permute(x, [2, 0, 1]) */
static Value b_permute(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    if (!tensor_arg(e, b, a[0], "x"))
        return v_err();
    int rank = el_nd(e, a[0])->shape.rank, perm[MAX_RANK] = { 0 };
    if (a[1].k != V_LIST || a[1].list.n != rank) {
        el_error(e, a[1].loc, "'permute' needs a list of %d axes", rank);
        return v_err();
    }
    unsigned seen = 0;
    for (int k = 0; k < rank; k++) {
        if (!axis_of(e, a[1].list.items[k], rank, &perm[k], b->name))
            return v_err();
        if (seen & (1u << perm[k])) {
            el_error(e, a[1].list.items[k].loc, "axis %d appears twice in the permutation", perm[k]);
            return v_err();
        }
        seen |= 1u << perm[k];
    }
    return permute(e, a[0], perm, loc);
}

static Value b_matmul(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    (void)b;
    return el_matmul(e, a[0], a[1], loc);
}

/* gather(table, ids): rows of table (V, D) picked by token ids -> (..., D) */
static Value b_gather(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    if (!tensor_arg(e, b, a[0], "table") || !tensor_arg(e, b, a[1], "ids"))
        return v_err();
    Node *t = el_nd(e, a[0]), *ids = el_nd(e, a[1]);
    if (t->dtype != DT_F32 || t->shape.rank != 2) {
        el_error(e, a[0].loc, "'gather' needs a float table of rank 2, got %s", shape_str(e->a, e->m, &t->shape));
        return v_err();
    }
    if (ids->dtype != DT_I32) {
        el_error(e, a[1].loc, "'gather' needs token ids as its second argument, got a float tensor");
        return v_err();
    }
    if (ids->shape.rank >= MAX_RANK) {
        el_error(e, loc, "'gather' result would have more than %d dimensions", MAX_RANK);
        return v_err();
    }
    if (a[1].tokens_vocab && t->shape.d[0].sym < 0 && t->shape.d[0].n != a[1].tokens_vocab->n) {
        el_error(e, loc, "the table has %lld rows, but vocabulary '%s' has %d words",
                 (long long)t->shape.d[0].n, a[1].tokens_vocab->name, a[1].tokens_vocab->n);
        return v_err();
    }
    Node n = { .op = OP_GATHER, .in = { a[0].node, a[1].node }, .dtype = DT_F32, .shape = ids->shape, .loc = loc };
    n.shape.d[n.shape.rank++] = t->shape.d[1];
    int id = el_node(e, n);
    return id < 0 ? v_err() : v_tensor(id, loc);
}

/* arange(n) -> [n]: 0, 1, ..., n-1 */
static Value b_arange(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    Dim d;
    if (!el_need_graph(e, loc, "'arange'") || !el_value_dim(e, a[0], &d, "the length of 'arange'"))
        return v_err();
    (void)b;
    Node n = { .op = OP_ARANGE, .dtype = DT_F32, .shape = { 1, { d } }, .loc = loc };
    int id = el_node(e, n);
    return id < 0 ? v_err() : v_tensor(id, loc);
}

/* causal_mask(m) -> [m, m]: 0 on and below the diagonal, -inf above */
static Value b_causal(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    Dim d;
    if (!el_need_graph(e, loc, "'causal_mask'") || !el_value_dim(e, a[0], &d, "the size of 'causal_mask'"))
        return v_err();
    (void)b;
    Node n = { .op = OP_CAUSAL_MASK, .dtype = DT_F32, .shape = { 2, { d, d } }, .loc = loc };
    int id = el_node(e, n);
    return id < 0 ? v_err() : v_tensor(id, loc);
}

/* The IN_LENGTHS input of a sequence symbol in the current graph. */
static int lengths_input(Elab *e, int sym, SrcLoc loc)
{
    if (e->len_inputs[sym] >= 0)
        return e->len_inputs[sym];
    int batch = -1;
    for (int i = 0; i < e->m->nsyms; i++)
        if (e->m->syms[i].role == SYM_BATCH)
            batch = i;
    Node n = { .op = OP_INPUT, .dtype = DT_I32, .shape = { 1, { { 0, batch } } }, .loc = loc };
    n.attr.input.role = IN_LENGTHS;
    n.attr.input.sym = sym;
    n.attr.input.name = arena_printf(e->a, "lengths.%s", e->m->syms[sym].name);
    return e->len_inputs[sym] = el_node(e, n);
}

/* padding_mask(x): x is [batch, len, ...]; -> [batch, 1, 1, len], -inf on padding */
static Value b_padding(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    if (!tensor_arg(e, b, a[0], "x"))
        return v_err();
    Node *x = el_nd(e, a[0]);
    Dim bd = x->shape.rank >= 2 ? x->shape.d[0] : dim_const(0);
    Dim ld = x->shape.rank >= 2 ? x->shape.d[1] : dim_const(0);
    if (x->shape.rank < 2 || bd.sym < 0 || e->m->syms[bd.sym].role != SYM_BATCH ||
        ld.sym < 0 || e->m->syms[ld.sym].role == SYM_BATCH) {
        el_error(e, loc, "'padding_mask' needs a tensor of shape [batch, length, ...] whose length is a sequence dimension, got %s",
                 shape_str(e->a, e->m, &x->shape));
        el_note_origin(e, "the tensor", a[0].node);
        return v_err();
    }
    int len = lengths_input(e, ld.sym, loc);
    if (len < 0)
        return v_err();
    Node n = { .op = OP_PAD_MASK, .in = { len }, .dtype = DT_F32,
               .shape = { 4, { bd, dim_const(1), dim_const(1), ld } }, .loc = loc };
    int id = el_node(e, n);
    return id < 0 ? v_err() : v_tensor(id, loc);
}

/* len(vocab or list) */
static Value b_len(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    (void)b;
    if (a[0].k == V_VOCAB)
        return v_int(a[0].vocab->n, loc);
    if (a[0].k == V_LIST)
        return v_int(a[0].list.n, loc);
    if (a[0].k == V_STR)
        return v_int((int64_t)strlen(a[0].s), loc);
    el_error(e, a[0].loc, "'len' needs a vocabulary or a list, got %s", v_kind_name(a[0].k));
    return v_err();
}

/* vocab(ids): the vocabulary of a tensor of token ids */
static Value b_vocab(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    (void)b;
    if (a[0].k == V_TENSOR && a[0].tokens_vocab)
        return (Value){ .k = V_VOCAB, .vocab = a[0].tokens_vocab, .loc = loc };
    el_error(e, a[0].loc, "'vocab_of' needs token ids of a model input, got %s", v_kind_name(a[0].k));
    return v_err();
}

/* size(x, axis): one dimension of a tensor, as an integer or a symbol */
static Value b_size(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    if (!tensor_arg(e, b, a[0], "x"))
        return v_err();
    Node *x = el_nd(e, a[0]);
    int axis;
    if (!axis_of(e, a[1], x->shape.rank, &axis, b->name))
        return v_err();
    return el_dim_value(x->shape.d[axis], loc);
}

/* error("message"): stop elaboration with the user's message. */
static Value b_error(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    (void)b;
    if (a[0].k != V_STR) {
        el_error(e, a[0].loc, "'error' needs a string, got %s", v_kind_name(a[0].k));
        return v_err();
    }
    /* {name} is the value of name where error() is called: an int, a
     * number, a boolean, a string or a dimension (anything else, and an
     * unknown name, stays as written) */
    char msg[512];
    size_t k = 0;
    for (const char *p = a[0].s; *p && k < sizeof msg - 1; p++) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close && close - p > 1 && close - p < 64) {
            char name[64];
            memcpy(name, p + 1, (size_t)(close - p - 1));
            name[close - p - 1] = 0;
            Binding *bd = el_lookup(e, name);
            char val[64] = "";
            if (bd && (bd->v.k == V_INT || bd->v.k == V_DIM))
                snprintf(val, sizeof val, "%lld", (long long)bd->v.i);
            else if (bd && bd->v.k == V_FLOAT)
                snprintf(val, sizeof val, "%g", bd->v.f);
            else if (bd && bd->v.k == V_BOOL)
                snprintf(val, sizeof val, "%s", bd->v.b ? "true" : "false");
            else if (bd && bd->v.k == V_STR)
                snprintf(val, sizeof val, "%.60s", bd->v.s);
            if (val[0]) {
                for (const char *v = val; *v && k < sizeof msg - 1; v++)
                    msg[k++] = *v;
                p = close;
                continue;
            }
        }
        msg[k++] = (unsigned char)*p < ' ' ? ' ' : *p;   /* one line */
    }
    msg[k] = 0;
    el_error(e, loc, "%s", k ? msg : "error() was called (with an empty message)");
    return v_err();
}

/* dropout(x, p): x itself at inference; in training (autodiff.c) each
 * element is zeroed with probability p and the rest scaled by 1 / (1 - p).
 * p = 0 makes no node. The salt (which random stream) is the node's
 * position in its graph, the decoder's offset from the encoder's. */
static Value b_dropout(Elab *e, const Builtin *b, Value *a, SrcLoc loc)
{
    if (!tensor_arg(e, b, a[0], "x"))
        return v_err();
    Node *x = el_nd(e, a[0]);
    if (x->dtype != DT_F32) {
        el_error(e, a[0].loc, "'dropout' needs a float tensor, got token ids");
        return v_err();
    }
    double p = a[1].k == V_INT ? (double)a[1].i : a[1].k == V_FLOAT ? a[1].f : -1;
    if (a[1].k != V_INT && a[1].k != V_FLOAT) {
        el_error(e, a[1].loc, "the dropout probability p must be a number, got %s", v_kind_name(a[1].k));
        return v_err();
    }
    if (!(p >= 0 && p < 1)) {
        el_error(e, a[1].loc, "the dropout probability p must be at least 0 and below 1, got %g", p);
        return v_err();
    }
    if (p == 0)
        return a[0];
    Node n = { .op = OP_DROPOUT, .in = { a[0].node }, .dtype = DT_F32, .shape = x->shape, .loc = loc };
    n.attr.drop.p = (float)p;
    n.attr.drop.salt = (uint32_t)e->g->n + (e->g == &e->m->dec ? 1u << 24 : 0u);
    int id = el_node(e, n);
    return id < 0 ? v_err() : v_tensor(id, loc);
}

#define UNARY(n, o, doc) { n, { "x" }, 1, b_unary, OP_##o, doc }
static const Builtin builtins[] = {
    UNARY("exp", EXP, "e^x"), UNARY("log", LOG, "natural logarithm"),
    UNARY("sqrt", SQRT, "square root"), UNARY("rsqrt", RSQRT, "1 / sqrt(x)"),
    UNARY("tanh", TANH, "hyperbolic tangent"), UNARY("erf", ERF, "error function"),
    UNARY("sin", SIN, "sine"), UNARY("cos", COS, "cosine"),
    UNARY("floor", FLOOR, "round down"), UNARY("abs", ABS, "absolute value"),
    { "maximum", { "a", "b" }, 2, b_binary, OP_MAXIMUM, "elementwise maximum, broadcasting" },
    { "pow", { "a", "b" }, 2, b_binary, OP_POW, "a^b elementwise, broadcasting" },
    { "sum", { "x", "axis" }, 1, b_reduce, OP_SUM, "sum along axis (default -1), kept with size 1" },
    { "max", { "x", "axis" }, 1, b_reduce, OP_MAX, "maximum along axis (default -1), kept with size 1" },
    { "mean", { "x", "axis" }, 1, b_reduce, OP_MEAN, "mean along axis (default -1), kept with size 1" },
    { "matmul", { "a", "b" }, 2, b_matmul, OP_MATMUL, "same as a @ b" },
    { "reshape", { "x", "shape" }, 2, b_reshape, OP_RESHAPE, "same elements, new shape" },
    { "transpose", { "x", "a", "b" }, 1, b_transpose, OP_TRANSPOSE, "swap axes a and b (default -2, -1)" },
    { "permute", { "x", "axes" }, 2, b_permute, OP_TRANSPOSE, "reorder all axes" },
    { "gather", { "table", "ids" }, 2, b_gather, OP_GATHER, "rows of a [V, D] table picked by token ids" },
    { "arange", { "n" }, 1, b_arange, OP_ARANGE, "[n]: 0, 1, ..., n-1" },
    { "causal_mask", { "n" }, 1, b_causal, OP_CAUSAL_MASK, "[n, n]: 0 where key <= query, -inf after" },
    { "padding_mask", { "x" }, 1, b_padding, OP_PAD_MASK, "[batch, 1, 1, len]: 0 on words, -inf on padding" },
    { "dropout", { "x", "p" }, 2, b_dropout, OP_DROPOUT, "x; in training, elements zeroed with probability p (the rest scaled by 1/(1-p))" },
    { "len", { "v" }, 1, b_len, OP_COUNT, "size of a vocabulary or a list" },
    { "vocab_of", { "ids" }, 1, b_vocab, OP_COUNT, "the vocabulary of token ids" },
    { "size", { "x", "axis" }, 2, b_size, OP_COUNT, "one dimension of a tensor" },
    { "error", { "message" }, 1, b_error, OP_COUNT, "stop compilation with a message" },
};

const Builtin *builtin_table(int *n)
{
    *n = (int)(sizeof builtins / sizeof builtins[0]);
    return builtins;
}

const Builtin *builtin_find(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (!strcmp(builtins[i].name, name))
            return &builtins[i];
    return NULL;
}

/* Bind the arguments to the builtin's named parameters, then call it. */
Value builtin_call(Elab *e, const Builtin *b, Expr *call, Value *vals)
{
    Value args[BUILTIN_MAX_PARAMS];
    bool given[BUILTIN_MAX_PARAMS] = { 0 };
    int np = 0;
    while (np < BUILTIN_MAX_PARAMS && b->params[np])
        np++;
    for (int i = 0; i < BUILTIN_MAX_PARAMS; i++)
        args[i] = v_none(call->loc);
    for (int i = 0; i < call->call.nargs; i++) {
        Arg *a = &call->call.args[i];
        int slot = a->name ? -1 : i;
        for (int k = 0; a->name && k < np; k++)
            if (!strcmp(b->params[k], a->name))
                slot = k;
        if (slot < 0 || slot >= np) {
            if (a->name)
                el_error(e, a->loc, "'%s' has no parameter named '%s'", b->name, a->name);
            else
                el_error(e, a->loc, "too many arguments to '%s' (it takes %d)", b->name, np);
            return v_err();
        }
        if (given[slot]) {
            el_error(e, a->loc, "argument '%s' of '%s' is given twice", b->params[slot], b->name);
            return v_err();
        }
        given[slot] = true;
        args[slot] = vals[i];
    }
    for (int k = 0; k < b->nreq; k++)
        if (!given[k]) {
            el_error(e, call->loc, "missing argument '%s' in the call to '%s'", b->params[k], b->name);
            return v_err();
        }
    return b->fn(e, b, args, call->loc);
}
