/* dropout.c - inference graphs do not drop anything.
 *
 * Requires: a verified graph. Guarantees: no DROPOUT node; each one's
 * readers read its input instead (dropout is the identity at inference,
 * see builtins.c). Training graphs keep them (compile "train").
 */
#include "arena.h"
#include "passes.h"

Graph pass_strip_dropout(Arena *a, const Graph *g)
{
    Graph out = { .name = g->name, .output = -1 };
    int *remap = arena_alloc(a, sizeof(int) * (size_t)(g->n + 1));
    for (int i = 0; i < g->n; i++)
        remap[i] = g->nodes[i].op == OP_DROPOUT ? remap[g->nodes[i].in[0]]
                                                : graph_copy_node(a, &out, &g->nodes[i], remap);
    out.output = g->output >= 0 ? remap[g->output] : -1;
    return out;
}
