/* autodiff.c - the training graph: reverse-mode differentiation of a
 * model's encoder and decoder (see passes.h, derive_training).
 *
 * Requires: the model's unfused graphs (compile "train": after fold and
 * dce, dropout kept). Guarantees: one graph, "train", that
 *
 *   1. runs the encoder, then the decoder on the encoder's output (the
 *      decoder's memory input becomes the encoder's output node);
 *   2. scores the decoder's logits against an IN_LABELS input with XENT
 *      (label smoothing attr.xent.eps; a label < 0 scores nothing) and returns
 *      the sum over positions, a scalar;
 *   3. stores d(sum)/d(weight) of every weight the loss depends on into
 *      an IN_STATE input whose sym is the weight's index in Model.params
 *      (axis -1: the whole tensor), so dce, fusion and the memory plan
 *      keep gradients as they keep a decoder step's caches.
 *
 * The logits: when the decoder returns softmax(x) or log_softmax(x) along
 * the last axis, x (fuse_output.c recognises both); otherwise what it
 * returns. Gradients are built backwards from the loss, one rule per
 * primitive op (grad_of below), and only into values that depend on a
 * weight. A value read by several nodes gets the sum of their
 * contributions; a contribution to a broadcast operand is summed over
 * the broadcast axes first (sum_to). Fused ops do not occur: training
 * differentiates the graphs before fusion, and fusion then runs on the
 * training graph as on any other.
 */
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "passes.h"
#include "shape.h"

typedef struct AD {
    Arena *a;
    Graph g;
    int *grad;       /* per forward node of g: its gradient so far, or -1 */
    bool *needs;     /* per forward node of g: depends on a weight */
    bool failed;     /* out of memory, or an internal error */
} AD;

static int node(AD *d, Node n)
{
    int id = graph_add(d->a, &d->g, n);
    if (id < 0)
        d->failed = true;
    return id < 0 ? 0 : id;
}

static const Shape *shp(AD *d, int x) { return &d->g.nodes[x].shape; }

static int cst(AD *d, double v)
{
    Node n = { .op = OP_CONST, .dtype = DT_F32, .shape = { 0 } };
    n.attr.value = v;
    return node(d, n);
}

static int un(AD *d, Op op, int x)
{
    return node(d, (Node){ .op = op, .in = { x }, .dtype = DT_F32, .shape = *shp(d, x) });
}

static int bin(AD *d, Op op, int x, int y)
{
    Node n = { .op = op, .in = { x, y }, .dtype = DT_F32 };
    int bad;
    if (!shape_broadcast(shp(d, x), shp(d, y), &n.shape, &bad))
        d->failed = true;   /* cannot happen: the forward graph broadcast these */
    return node(d, n);
}

static int reduce(AD *d, Op op, int x, int axis)
{
    Node n = { .op = op, .in = { x }, .dtype = DT_F32, .shape = *shp(d, x) };
    n.attr.axis = axis;
    n.shape.d[axis] = dim_const(1);
    return node(d, n);
}

static int reshape(AD *d, int x, const Shape *s)
{
    if (shape_eq(shp(d, x), s))
        return x;
    return node(d, (Node){ .op = OP_RESHAPE, .in = { x }, .dtype = d->g.nodes[x].dtype, .shape = *s });
}

static int transpose(AD *d, int x, const int *perm)
{
    Node n = { .op = OP_TRANSPOSE, .in = { x }, .dtype = DT_F32, .shape = { .rank = shp(d, x)->rank } };
    for (int i = 0; i < n.shape.rank; i++) {
        n.attr.perm[i] = perm[i];
        n.shape.d[i] = shp(d, x)->d[perm[i]];
    }
    return node(d, n);
}

/* x with its last two axes swapped. */
static int swap_last(AD *d, int x)
{
    int r = shp(d, x)->rank, perm[MAX_RANK];
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[r - 2] = r - 1, perm[r - 1] = r - 2;
    return transpose(d, x, perm);
}

static int matmul(AD *d, int x, int y)
{
    Node n = { .op = OP_MATMUL, .in = { x, y }, .dtype = DT_F32 };
    int why;
    if (!shape_matmul(shp(d, x), shp(d, y), &n.shape, &why))
        d->failed = true;   /* cannot happen: shapes come from a checked matmul */
    return node(d, n);
}

static bool is_one(Dim x) { return x.sym < 0 && x.n == 1; }

/* x summed over the axes along which `to` was broadcast to x's shape,
 * then shaped as `to`. */
static int sum_to(AD *d, int x, const Shape *to)
{
    int extra = shp(d, x)->rank - to->rank;
    for (int i = 0; i < shp(d, x)->rank; i++) {
        Dim have = shp(d, x)->d[i];
        if ((i < extra || is_one(to->d[i - extra])) && !is_one(have))
            x = reduce(d, OP_SUM, x, i);
    }
    return reshape(d, x, to);
}

/* Add contribution g to the gradient of node x. */
static void give(AD *d, int x, int g)
{
    if (!d->needs[x])
        return;
    g = sum_to(d, g, shp(d, x));
    d->grad[x] = d->grad[x] < 0 ? g : bin(d, OP_ADD, d->grad[x], g);
}

/* A tensor of x's shape filled with v (for gradients over symbolic axes). */
static int fill(AD *d, const Shape *s, double v)
{
    Node n = { .op = OP_CONST, .dtype = DT_F32, .shape = *s };
    n.attr.value = v;
    return node(d, n);
}

/* Push the gradient g of node i (a copy: g's nodes may move the array)
 * into its inputs. */
static void grad_of(AD *d, int i, int g)
{
    Node n = d->g.nodes[i];
    int x = n.in[0], y = n.in[1];
    switch (n.op) {
    case OP_ADD: give(d, x, g); give(d, y, g); return;
    case OP_SUB: give(d, x, g); if (d->needs[y]) give(d, y, un(d, OP_NEG, g)); return;
    case OP_MUL:
        if (d->needs[x]) give(d, x, bin(d, OP_MUL, g, y));
        if (d->needs[y]) give(d, y, bin(d, OP_MUL, g, x));
        return;
    case OP_DIV:
        if (d->needs[x]) give(d, x, bin(d, OP_DIV, g, y));
        if (d->needs[y]) give(d, y, un(d, OP_NEG, bin(d, OP_DIV, bin(d, OP_MUL, g, i), y)));
        return;
    case OP_MAXIMUM: {
        int gx = bin(d, OP_MUL, g, bin(d, OP_GE, x, y));   /* ties go to x */
        give(d, x, gx);
        if (d->needs[y]) give(d, y, bin(d, OP_SUB, g, gx));
        return;
    }
    case OP_POW:
        if (d->needs[x]) give(d, x, bin(d, OP_MUL, g, bin(d, OP_MUL, y, bin(d, OP_POW, x, bin(d, OP_SUB, y, cst(d, 1))))));
        if (d->needs[y]) give(d, y, bin(d, OP_MUL, bin(d, OP_MUL, g, i), un(d, OP_LOG, x)));
        return;
    case OP_NEG: give(d, x, un(d, OP_NEG, g)); return;
    case OP_EXP: give(d, x, bin(d, OP_MUL, g, i)); return;
    case OP_LOG: give(d, x, bin(d, OP_DIV, g, x)); return;
    case OP_SQRT: give(d, x, bin(d, OP_DIV, g, bin(d, OP_MUL, i, cst(d, 2)))); return;
    case OP_RSQRT:   /* d/dx x^-1/2 = -1/2 y^3 */
        give(d, x, bin(d, OP_MUL, g, bin(d, OP_MUL, bin(d, OP_MUL, i, bin(d, OP_MUL, i, i)), cst(d, -0.5))));
        return;
    case OP_TANH: give(d, x, bin(d, OP_MUL, g, bin(d, OP_SUB, cst(d, 1), bin(d, OP_MUL, i, i)))); return;
    case OP_ERF:     /* 2/sqrt(pi) e^(-x^2) */
        give(d, x, bin(d, OP_MUL, g, bin(d, OP_MUL, cst(d, 1.1283791670955126), un(d, OP_EXP, un(d, OP_NEG, bin(d, OP_MUL, x, x))))));
        return;
    case OP_SIN: give(d, x, bin(d, OP_MUL, g, un(d, OP_COS, x))); return;
    case OP_COS: give(d, x, un(d, OP_NEG, bin(d, OP_MUL, g, un(d, OP_SIN, x)))); return;
    case OP_ABS:
        give(d, x, bin(d, OP_MUL, g, bin(d, OP_SUB, bin(d, OP_MUL, bin(d, OP_GE, x, cst(d, 0)), cst(d, 2)), cst(d, 1))));
        return;
    case OP_SUM: give(d, x, bin(d, OP_ADD, g, fill(d, shp(d, x), 0))); return;
    case OP_MEAN: {
        Dim len = shp(d, x)->d[n.attr.axis];
        int scaled = len.sym < 0 ? bin(d, OP_MUL, g, cst(d, len.n ? 1.0 / (double)len.n : 0))
                                 : bin(d, OP_DIV, g, reduce(d, OP_SUM, fill(d, shp(d, x), 1), n.attr.axis));
        give(d, x, bin(d, OP_ADD, scaled, fill(d, shp(d, x), 0)));
        return;
    }
    case OP_MAX:     /* to every position that equals the maximum */
        give(d, x, bin(d, OP_MUL, g, bin(d, OP_GE, x, i)));
        return;
    case OP_RESHAPE: give(d, x, reshape(d, g, shp(d, x))); return;
    case OP_TRANSPOSE: {
        int inv[MAX_RANK];
        for (int k = 0; k < n.shape.rank; k++)
            inv[n.attr.perm[k]] = k;
        give(d, x, transpose(d, g, inv));
        return;
    }
    case OP_MATMUL: {
        int ra = shp(d, x)->rank, rb = shp(d, y)->rank;
        if (d->needs[x])
            give(d, x, matmul(d, g, swap_last(d, y)));
        if (!d->needs[y])
            return;
        if (rb == 2 && ra == n.shape.rank) {   /* a weight: one product over every row */
            Node t = { .op = OP_MATMUL_TN, .in = { x, g }, .dtype = DT_F32,
                       .shape = { 2, { shp(d, x)->d[ra - 1], n.shape.d[n.shape.rank - 1] } } };
            give(d, y, node(d, t));
        } else {
            give(d, y, matmul(d, swap_last(d, x), g));
        }
        return;
    }
    case OP_GATHER: {
        Node t = { .op = OP_SCATTER_ADD, .in = { g, y }, .dtype = DT_F32, .shape = *shp(d, x) };
        give(d, x, node(d, t));
        return;
    }
    case OP_DROPOUT: {   /* the same mask and scale */
        Node t = n;
        t.in[0] = g;
        give(d, x, node(d, t));
        return;
    }
    /* constant with respect to the weights, or not differentiable
     * (ge, floor: zero almost everywhere) */
    case OP_INPUT: case OP_PARAM: case OP_CONST: case OP_ARANGE: case OP_CAUSAL_MASK:
    case OP_PAD_MASK: case OP_GE: case OP_FLOOR:
        return;
    /* made after this pass, or by it */
    case OP_STORE: case OP_ATTENTION: case OP_LINEAR: case OP_LAYER_NORM: case OP_MAP:
    case OP_XENT: case OP_XENT_GRAD: case OP_SCATTER_ADD: case OP_MATMUL_TN: case OP_COUNT:
        d->failed = true;
        return;
    }
}

/* Copy graph src into d->g (its IN_TENSOR input becomes node `memory`
 * when memory >= 0); returns the new id of src's output. */
static int copy_graph(AD *d, const Graph *src, int output, int memory)
{
    int *remap = arena_alloc(d->a, sizeof(int) * (size_t)(src->n + 1));
    for (int i = 0; i < src->n; i++) {
        const Node *n = &src->nodes[i];
        if (n->op == OP_INPUT && n->attr.input.role == IN_TENSOR && memory >= 0)
            remap[i] = memory;
        else if (graph_copy_node(d->a, &d->g, n, remap) < 0)
            d->failed = true;
        else
            remap[i] = d->g.n - 1;
    }
    return remap[output];
}

Graph derive_training(Arena *a, const Model *m, float smoothing, char *err, size_t errlen)
{
    AD d = { .a = a, .g = { .name = "train", .output = -1 } };
    Graph dec = m->dec;
    pass_output_logits(&dec);
    if (m->enc.output < 0 || dec.output < 0) {
        snprintf(err, errlen, "the model has no %s output to train", m->enc.output < 0 ? "encoder" : "decoder");
        return (Graph){ .name = "train", .output = -1 };
    }
    int mem = copy_graph(&d, &m->enc, m->enc.output, -1);
    int logits = copy_graph(&d, &dec, dec.output, mem);
    Shape ls = *shp(&d, logits);
    int tgt = -1;
    for (int i = 0; i < dec.n; i++)
        if (dec.nodes[i].op == OP_INPUT && dec.nodes[i].attr.input.role == IN_TOKENS)
            tgt = i;
    if (tgt < 0 || ls.rank != 3 || !dim_eq(ls.d[0], dec.nodes[tgt].shape.d[0]) ||
        !dim_eq(ls.d[1], dec.nodes[tgt].shape.d[1]) || d.g.nodes[logits].dtype != DT_F32) {
        snprintf(err, errlen, "to be trained, the decoder must return scores shaped [batch, target length, vocabulary]");
        return (Graph){ .name = "train", .output = -1 };
    }
    Node lab = { .op = OP_INPUT, .dtype = DT_I32, .shape = { 2, { ls.d[0], ls.d[1] } } };
    lab.attr.input.role = IN_LABELS;
    lab.attr.input.sym = ls.d[1].sym;
    lab.attr.input.name = "labels";
    int labels = node(&d, lab);
    Node xe = { .op = OP_XENT, .in = { logits, labels }, .dtype = DT_F32, .shape = lab.shape };
    xe.attr.xent.eps = smoothing;
    int per = node(&d, xe);
    Shape scalar = { 0 };
    int loss = reshape(&d, reduce(&d, OP_SUM, reduce(&d, OP_SUM, per, 1), 0), &scalar);
    d.g.output = loss;

    /* which values depend on a weight */
    int nfwd = d.g.n;   /* gradients only ever go to these (give) */
    d.needs = arena_alloc(a, sizeof(bool) * (size_t)nfwd);
    d.grad = arena_alloc(a, sizeof(int) * (size_t)nfwd);
    for (int i = 0; i < nfwd; i++) {
        const Node *n = &d.g.nodes[i];
        d.grad[i] = -1;
        d.needs[i] = n->op == OP_PARAM;
        for (int k = 0; k < op_info[n->op].arity; k++)
            d.needs[i] |= d.needs[n->in[k]];
    }
    /* the loss's gradient: the sum's is 1 everywhere, so the logits'
     * is xent_grad */
    Node xg = { .op = OP_XENT_GRAD, .in = { logits, labels }, .dtype = DT_F32, .shape = ls };
    xg.attr.xent.eps = smoothing;
    if (d.needs[logits])
        d.grad[logits] = node(&d, xg);
    for (int i = logits; i >= 0 && !d.failed; i--) {
        if (d.grad[i] < 0 || d.g.nodes[i].op == OP_PARAM)
            continue;
        grad_of(&d, i, d.grad[i]);
    }
    /* each weight's gradient (the sum over its uses) into its state */
    int *pg = arena_alloc(a, sizeof(int) * (size_t)(m->nparams + 1));
    for (int p = 0; p < m->nparams; p++)
        pg[p] = -1;
    for (int i = 0; i < nfwd; i++) {
        const Node *n = &d.g.nodes[i];
        if (n->op != OP_PARAM || d.grad[i] < 0)
            continue;
        int p = n->attr.param;
        pg[p] = pg[p] < 0 ? d.grad[i] : bin(&d, OP_ADD, pg[p], d.grad[i]);
    }
    for (int p = 0; p < m->nparams && !d.failed; p++) {
        if (pg[p] < 0)
            continue;
        Node st = { .op = OP_INPUT, .dtype = DT_F32, .shape = m->params[p].shape };
        st.attr.input.role = IN_STATE;
        st.attr.input.sym = p;
        st.attr.input.name = m->params[p].name;
        int s = node(&d, st);
        Node w = { .op = OP_STORE, .in = { s, pg[p], s }, .dtype = DT_F32, .shape = m->params[p].shape };
        w.attr.store.state = p;
        w.attr.store.axis = -1;
        node(&d, w);
    }
    if (d.failed) {
        snprintf(err, errlen, "cannot derive the training graph of '%s': out of memory, or an internal error", m->name);
        return (Graph){ .name = "train", .output = -1 };
    }
    return d.g;
}
