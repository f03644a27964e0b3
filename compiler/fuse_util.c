/* fuse_util.c - shared by the fusion passes (see fuse_util.h). */
#include "fuse_util.h"

#include "arena.h"
#include "passes.h"

int *fuse_uses(Arena *a, const Graph *g)
{
    int *uses = arena_alloc(a, sizeof(int) * (size_t)(g->n + 1));
    for (int i = 0; i < g->n; i++)
        uses[i] = 0;
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < op_info[g->nodes[i].op].arity; k++)
            uses[g->nodes[i].in[k]]++;
    if (g->output >= 0)
        uses[g->output]++;   /* the output is read by the caller */
    return uses;
}

const Node *fuse_node_if(const Graph *g, const int *uses, int x, Op op, int n)
{
    if (x < 0 || g->nodes[x].op != op || uses[x] != n)
        return NULL;
    return &g->nodes[x];
}

int fuse_other(const Node *n, int x)
{
    return n->in[0] == x ? n->in[1] : n->in[1] == x ? n->in[0] : -1;
}

bool fuse_same_shape(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (!dim_eq(a->d[i], b->d[i]))
            return false;
    return true;
}

Graph fuse_rewrite(Arena *a, const Graph *g, const bool *gone, const bool *is_end, FuseEmit emit, void *ctx)
{
    int *remap = arena_alloc(a, sizeof(int) * (size_t)(g->n + 1));
    Graph out = { .name = g->name, .output = -1 };
    for (int i = 0; i < g->n; i++) {
        remap[i] = -1;
        if (is_end[i])
            remap[i] = emit(a, &out, g, i, remap, ctx);
        else if (!gone[i])
            remap[i] = graph_copy_node(a, &out, &g->nodes[i], remap);
    }
    out.output = g->output >= 0 ? remap[g->output] : -1;
    return out;
}
