/* dce.c - dead node elimination.
 *
 * Requires: a verified graph. Guarantees: every node is needed by the
 * output or by a STORE (a store into a state is an effect, needed or not),
 * except INPUT nodes, which are kept so the graph's interface does not
 * change with its body.
 */
#include "arena.h"
#include "passes.h"

Graph pass_dce(Arena *a, const Graph *g)
{
    Graph out = { .name = g->name, .output = -1 };
    bool *live = arena_alloc(a, sizeof(bool) * (size_t)(g->n + 1));
    int *remap = arena_alloc(a, sizeof(int) * (size_t)(g->n + 1));
    if (g->output >= 0)
        live[g->output] = true;
    for (int i = g->n - 1; i >= 0; i--) {
        const Node *n = &g->nodes[i];
        live[i] |= n->op == OP_INPUT || n->op == OP_STORE;
        for (int k = 0; live[i] && k < op_info[n->op].arity; k++)
            live[n->in[k]] = true;
    }
    for (int i = 0; i < g->n; i++)
        remap[i] = live[i] ? graph_copy_node(a, &out, &g->nodes[i], remap) : -1;
    out.output = g->output >= 0 ? remap[g->output] : -1;
    return out;
}
