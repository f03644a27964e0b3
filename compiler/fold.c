/* fold.c - constant folding.
 *
 * Requires: a verified graph. Guarantees: no elementwise node has only
 * scalar CONST inputs (such nodes become one CONST); the output is kept.
 * The folded value is computed in double, then rounded to float like the
 * kernel's result would be.
 */
#include <math.h>

#include "arena.h"
#include "passes.h"

int graph_copy_node(Arena *a, Graph *dst, const Node *n, const int *remap)
{
    Node c = *n;
    for (int k = 0; k < op_info[n->op].arity; k++)
        c.in[k] = remap[n->in[k]];
    return graph_add(a, dst, c);
}

static bool scalar_const(const Graph *g, int id)
{
    return g->nodes[id].op == OP_CONST && g->nodes[id].shape.rank == 0;
}

/* The folded value of an elementwise op on scalars; false if not foldable. */
static bool fold_value(Op op, float x, float y, float *r)
{
    switch (op) {
    case OP_ADD: *r = x + y; return true;
    case OP_SUB: *r = x - y; return true;
    case OP_MUL: *r = x * y; return true;
    case OP_DIV: *r = x / y; return true;
    case OP_MAXIMUM: *r = isnan(x) || isnan(y) ? NAN : fmaxf(x, y); return true;
    case OP_POW: *r = powf(x, y); return true;
    case OP_GE: *r = x >= y ? 1.0f : 0.0f; return true;
    case OP_NEG: *r = -x; return true;
    case OP_EXP: *r = expf(x); return true;
    case OP_LOG: *r = logf(x); return true;
    case OP_SQRT: *r = sqrtf(x); return true;
    case OP_RSQRT: *r = 1.0f / sqrtf(x); return true;
    case OP_TANH: *r = tanhf(x); return true;
    case OP_ERF: *r = erff(x); return true;
    case OP_SIN: *r = sinf(x); return true;
    case OP_COS: *r = cosf(x); return true;
    case OP_FLOOR: *r = floorf(x); return true;
    case OP_ABS: *r = fabsf(x); return true;
    case OP_INPUT: case OP_PARAM: case OP_CONST: case OP_ARANGE:
    case OP_CAUSAL_MASK: case OP_PAD_MASK: case OP_GATHER: case OP_MATMUL:
    case OP_SUM: case OP_MAX: case OP_MEAN: case OP_RESHAPE: case OP_TRANSPOSE:
    case OP_STORE: case OP_ATTENTION: case OP_LINEAR: case OP_LAYER_NORM: case OP_MAP: case OP_COUNT:
    case OP_DROPOUT: case OP_XENT: case OP_XENT_GRAD: case OP_SCATTER_ADD: case OP_MATMUL_TN:
        return false;
    }
    return false;
}

Graph pass_fold(Arena *a, const Graph *g)
{
    Graph out = { .name = g->name, .output = -1 };
    int *remap = arena_alloc(a, sizeof(int) * (size_t)(g->n + 1));
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        OpKind k = op_info[n->op].kind;
        bool all_const = (k == OPK_UNARY || k == OPK_BINARY) && scalar_const(g, n->in[0]) &&
                         (k == OPK_UNARY || scalar_const(g, n->in[1]));
        float r;
        if (all_const && fold_value(n->op, (float)g->nodes[n->in[0]].attr.value,
                                    k == OPK_BINARY ? (float)g->nodes[n->in[1]].attr.value : 0, &r)) {
            Node c = { .op = OP_CONST, .dtype = DT_F32, .shape = n->shape, .loc = n->loc };
            c.attr.value = r;
            remap[i] = graph_add(a, &out, c);
        } else {
            remap[i] = graph_copy_node(a, &out, n, remap);
        }
    }
    out.output = g->output >= 0 ? remap[g->output] : -1;
    return out;
}
