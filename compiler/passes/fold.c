/* fold.c - constant folding.
 *
 * Requires: a verified graph. Guarantees: no elementwise node has only
 * scalar CONST inputs (such nodes become one CONST); the output is kept.
 * The folded value is the op's formula (ops.h) in float, as the
 * reference kernel computes it.
 */
#include "arena.h"
#include "op_scalar.h"
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

Graph pass_fold(Arena *a, const Graph *g)
{
    Graph out = { .name = g->name, .output = -1 };
    int *remap = arena_alloc(a, sizeof(int) * (size_t)(g->n + 1));
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        OpKind k = op_info[n->op].kind;
        bool all_const = (k == OPK_UNARY || k == OPK_BINARY) && scalar_const(g, n->in[0]) &&
                         (k == OPK_UNARY || scalar_const(g, n->in[1]));
        if (all_const) {
            Node c = { .op = OP_CONST, .dtype = DT_F32, .shape = n->shape, .loc = n->loc };
            c.attr.value = op_scalar_f32(n->op, (float)g->nodes[n->in[0]].attr.value,
                                         k == OPK_BINARY ? (float)g->nodes[n->in[1]].attr.value : 0);
            remap[i] = graph_add(a, &out, c);
        } else {
            remap[i] = graph_copy_node(a, &out, n, remap);
        }
    }
    out.output = g->output >= 0 ? remap[g->output] : -1;
    return out;
}
