/* graph_check.c - the IR verifier, run after every pass in debug builds.
 *
 * Requires nothing. Guarantees, when it returns: inputs precede their users,
 * arities match the op table, dtypes and ranks are what each op produces.
 * A violation is a compiler bug: it names the pass and aborts.
 */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>

static const char *op_name(Op op)
{
    return op >= 0 && op < OP_COUNT ? op_info[op].text : "?";
}

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: internal error after %s: node %d (%s): ", \
                    __FILE__, __LINE__, after_pass, i, op_name(nd->op)); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* Check one node's inputs, rank and dtype against its op. */
static void check_node(const Model *m, const Graph *g, int i, const char *after_pass)
{
    const Node *nd = &g->nodes[i];
    CHECK(nd->op >= 0 && nd->op < OP_COUNT, "bad op");
    int arity = op_info[nd->op].arity;
    for (int k = 0; k < arity; k++)
        CHECK(nd->in[k] >= 0 && nd->in[k] < i, "input %d is %d", k, nd->in[k]);
    CHECK(nd->shape.rank >= 0 && nd->shape.rank <= MAX_RANK, "rank %d", nd->shape.rank);
    for (int k = 0; k < nd->shape.rank; k++) {
        Dim d = nd->shape.d[k];
        CHECK(d.sym < m->nsyms, "dim %d has symbol %d", k, d.sym);
        CHECK(d.sym >= 0 || (d.n >= 0 && d.n <= MAX_DIM), "dim %d is %lld", k, (long long)d.n);
    }
    const Node *a = arity > 0 ? &g->nodes[nd->in[0]] : NULL;
    const Node *b = arity > 1 ? &g->nodes[nd->in[1]] : NULL;
    switch (op_info[nd->op].kind) {
    case OPK_UNARY:
    case OPK_REDUCE:
        CHECK(a->dtype == DT_F32 && nd->dtype == DT_F32, "dtype");
        break;
    case OPK_BINARY:
        CHECK(a->dtype == DT_F32 && b->dtype == DT_F32 && nd->dtype == DT_F32, "dtype");
        break;
    case OPK_LAYOUT:
        CHECK(a->dtype == nd->dtype, "dtype changes");
        break;
    case OPK_SOURCE:
    case OPK_OTHER:
        break;
    }
    switch (nd->op) {
    case OP_MATMUL: {
        CHECK(a->shape.rank >= 2 && b->shape.rank >= 2, "matmul of rank < 2");
        /* fuse_heads.c: a read transposed, a result written head-split */
        Shape as = a->shape, bs = b->shape;
        CHECK(!nd->attr.mm.heads || (!nd->attr.mm.packed && nd->shape.rank == 4), "heads on a packed or non-4-D matmul");
        CHECK(!nd->attr.mm.at || !nd->attr.mm.packed, "at on a packed matmul");
        CHECK(!(nd->attr.mm.at || nd->attr.mm.heads) || (a->shape.rank == 4 && b->shape.rank == 4),
              "at or heads on operands that are not both 4-D");
        if (nd->attr.mm.at) {   /* a is x [.., K, M] read transposed */
            Dim t = as.d[as.rank - 1];
            as.d[as.rank - 1] = as.d[as.rank - 2], as.d[as.rank - 2] = t;
        }
        CHECK(dim_eq(as.d[as.rank - 1], bs.d[bs.rank - (nd->attr.mm.bt ? 1 : 2)]), "contraction");
        CHECK(!nd->attr.mm.bt || !nd->attr.mm.packed ||
                  (b->op == OP_PARAM && b->shape.rank == 2 && m->params[b->attr.param].packed_t),
              "a packed b read transposed that is not a weight kept with its transpose");
        break;
    }
    case OP_LINEAR: {
        const Shape *bias = &g->nodes[nd->in[2]].shape;
        int r = nd->shape.rank;
        CHECK(a->shape.rank == r && b->shape.rank == 2, "linear: x of the output's rank, a 2-D w");
        CHECK(dim_eq(a->shape.d[r - 1], b->shape.d[0]), "linear contraction");
        CHECK(bias->rank == 1 && dim_eq(bias->d[0], nd->shape.d[r - 1]), "linear bias shape");
        break;
    }
    case OP_LAYER_NORM: {
        const Shape *gain = &g->nodes[nd->in[2]].shape, *bias = &g->nodes[nd->in[3]].shape;
        int r = nd->shape.rank;
        CHECK(r >= 1 && a->shape.rank == r, "layer_norm rank");
        CHECK(b->shape.rank == 0 || b->shape.rank == r, "layer_norm residual: x's shape or a scalar");
        CHECK(gain->rank == 1 && bias->rank == 1 && dim_eq(gain->d[0], nd->shape.d[r - 1]) &&
              dim_eq(bias->d[0], nd->shape.d[r - 1]), "layer_norm gain and bias shapes");
        break;
    }
    case OP_MAP: {
        int ns = nd->attr.map.nstep, nin = nd->attr.map.nin;
        CHECK(nd->dtype == DT_F32 && ns >= 1 && ns <= MAP_MAX_STEPS && nin >= 1 && nin <= MAX_IN, "map size");
        for (int k = 0; k < MAX_IN; k++) {
            const Node *x = &g->nodes[nd->in[k]];
            CHECK(x->dtype == DT_F32 && x->shape.rank <= nd->shape.rank, "map input %d", k);
            CHECK(k < nin || nd->in[k] == nd->in[0], "unused map input %d is not input 0", k);
        }
        for (int s = 0; s < ns; s++) {
            const MapStep *st = &nd->attr.map.code[s];
            OpKind kind = op_info[st->op].kind;
            CHECK(st->op == OP_CONST || kind == OPK_UNARY || kind == OPK_BINARY, "map step %d op", s);
            bool a_ok = st->a < nin || (st->a >= 4 && st->a < 4 + s);
            bool b_ok = st->b < nin || (st->b >= 4 && st->b < 4 + s);
            CHECK(st->op == OP_CONST || (a_ok && (kind == OPK_UNARY || b_ok)), "map step %d reads a later register", s);
        }
        break;
    }
    case OP_GATHER:
        CHECK(a->dtype == DT_F32 && b->dtype == DT_I32 && a->shape.rank == 2, "gather operands");
        CHECK(nd->shape.rank == b->shape.rank + 1, "gather rank");
        break;
    case OP_SUM:
    case OP_MAX:
    case OP_MEAN:
        CHECK(nd->attr.axis >= 0 && nd->attr.axis < nd->shape.rank, "axis");
        break;
    case OP_PARAM:
        CHECK(nd->attr.param >= 0 && nd->attr.param < m->nparams, "param index");
        break;
    case OP_TRANSPOSE: {
        unsigned seen = 0;
        for (int k = 0; k < nd->shape.rank; k++)
            seen |= 1u << nd->attr.perm[k];
        CHECK(seen == (1u << nd->shape.rank) - 1, "perm is not a permutation");
        break;
    }
    case OP_PAD_MASK:
        CHECK(a->dtype == DT_I32, "lengths dtype");
        break;
    case OP_DROPOUT:
        CHECK(a->dtype == DT_F32 && nd->dtype == DT_F32 && shape_eq(&a->shape, &nd->shape), "dropout of another shape");
        CHECK(nd->attr.drop.p >= 0 && nd->attr.drop.p < 1, "dropout p %g", nd->attr.drop.p);
        break;
    case OP_XENT:
    case OP_XENT_GRAD: {
        int r = a->shape.rank;
        CHECK(a->dtype == DT_F32 && b->dtype == DT_I32 && r >= 1 && b->shape.rank == r - 1, "xent operands");
        for (int k = 0; k < r - 1; k++)
            CHECK(dim_eq(a->shape.d[k], b->shape.d[k]), "xent labels' dim %d", k);
        CHECK(shape_eq(&nd->shape, nd->op == OP_XENT ? &b->shape : &a->shape), "xent output shape");
        if (nd->attr.xent.peer) {   /* the pair (chunk_output.c): the loss first, read only after the gradient */
            int p = nd->attr.xent.peer - 1;
            CHECK(p >= 0 && p < g->n, "xent peer %d", p);
            const Node *q = &g->nodes[p];
            CHECK(q->op == (nd->op == OP_XENT ? OP_XENT_GRAD : OP_XENT) && q->attr.xent.peer == i + 1 &&
                      q->in[0] == nd->in[0] && q->in[1] == nd->in[1] && q->attr.xent.eps == nd->attr.xent.eps,
                  "xent peer %d is not its pair", p);
            int x = nd->op == OP_XENT ? i : p, gr = nd->op == OP_XENT ? p : i;
            CHECK(x < gr, "xent after its peer");
            for (int j = x + 1; j <= gr; j++)
                for (int k = 0; k < op_info[g->nodes[j].op].arity; k++)
                    CHECK(g->nodes[j].in[k] != x, "xent %d read by %d before its peer writes it", x, j);
        }
        break;
    }
    case OP_MATMUL_TN: {
        int r = a->shape.rank;
        CHECK(a->dtype == DT_F32 && b->dtype == DT_F32 && r >= 1 && b->shape.rank == r && nd->shape.rank == 2,
              "matmul_tn operands");
        for (int k = 0; k < r - 1; k++)
            CHECK(dim_eq(a->shape.d[k], b->shape.d[k]), "matmul_tn leading dim %d", k);
        CHECK(dim_eq(a->shape.d[r - 1], nd->shape.d[0]) && dim_eq(b->shape.d[r - 1], nd->shape.d[1]), "matmul_tn shape");
        break;
    }
    case OP_SCATTER_ADD:
        CHECK(a->dtype == DT_F32 && b->dtype == DT_I32 && nd->shape.rank == 2 && a->shape.rank == b->shape.rank + 1,
              "scatter_add operands");
        CHECK(dim_eq(a->shape.d[a->shape.rank - 1], nd->shape.d[1]), "scatter_add row width");
        break;
    case OP_ATTENTION: {
        const Node *v = &g->nodes[nd->in[2]];
        int r = nd->shape.rank;
        CHECK(r >= 2 && a->shape.rank == r && b->shape.rank == r && v->shape.rank == r, "attention ranks");
        CHECK(dim_eq(a->shape.d[r - 1], b->shape.d[r - 2]), "attention q, kt contraction");
        CHECK(dim_eq(b->shape.d[r - 1], v->shape.d[r - 2]), "attention kt, v lengths");
        CHECK(dim_eq(nd->shape.d[r - 2], a->shape.d[r - 2]) && dim_eq(nd->shape.d[r - 1], v->shape.d[r - 1]),
              "attention output shape");
        CHECK(g->nodes[nd->in[3]].shape.rank <= r, "attention mask rank");
        break;
    }
    case OP_STORE: {
        const Node *st = a;
        CHECK(st->op == OP_INPUT && st->attr.input.role == IN_STATE, "store into a non-state");
        CHECK(nd->attr.store.state == st->attr.input.sym, "store into another state");
        CHECK(st->shape.rank == b->shape.rank && nd->shape.rank == st->shape.rank, "store ranks");
        CHECK(nd->attr.store.axis >= -1 && nd->attr.store.axis < nd->shape.rank, "store axis");
        const Node *pos = &g->nodes[nd->in[2]];
        CHECK(nd->attr.store.axis < 0 || (pos->dtype == DT_I32 && pos->shape.rank == 1 && st->shape.rank >= 2 &&
                                          (nd->attr.store.shared || dim_eq(pos->shape.d[0], st->shape.d[0]))),
              "store positions");
        break;
    }
    case OP_INPUT: case OP_CONST: case OP_ARANGE: case OP_CAUSAL_MASK:
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAXIMUM:
    case OP_POW: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT:
    case OP_RSQRT: case OP_TANH: case OP_ERF: case OP_SIN: case OP_COS:
    case OP_FLOOR: case OP_ABS: case OP_RESHAPE: case OP_GE:
    case OP_COUNT:
        break;
    }
}

void graph_check(const Model *m, const Graph *g, const char *after_pass)
{
    for (int i = 0; i < g->n; i++)
        check_node(m, g, i, after_pass);
    if (g->output >= g->n) {
        fprintf(stderr, "internal error after %s: %s output %d of %d nodes\n",
                after_pass, g->name, g->output, g->n);
        abort();
    }
}
