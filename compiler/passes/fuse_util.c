/* fuse_util.c - shared by the fusion passes (see fuse_util.h). */
#include "fuse_util.h"

#include "arena.h"
#include "passes.h"

/* Readers of each node (an input slot each; the output counts once). */
static int *uses_of(Arena *a, const Graph *g)
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

Graph fuse_run(Arena *a, const Graph *g, size_t match_size, FuseMatch match, FuseEmit emit)
{
    int n = g->n;
    int *uses = uses_of(a, g);
    bool *gone = arena_alloc(a, sizeof(bool) * (size_t)(n + 1));
    bool *is_end = arena_alloc(a, sizeof(bool) * (size_t)(n + 1));
    char *at = arena_alloc(a, match_size * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        gone[i] = is_end[i] = false;
    bool any = false;
    for (int i = n - 1; i >= 0; i--)
        if (!gone[i] && match(g, uses, i, at + (size_t)i * match_size, gone))
            any = is_end[i] = true;
    if (!any)
        return *g;
    int *remap = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    Graph out = { .name = g->name, .output = -1 };
    for (int i = 0; i < n; i++) {
        remap[i] = -1;
        if (is_end[i])
            remap[i] = emit(a, &out, g, i, at + (size_t)i * match_size, remap);
        else if (!gone[i])
            remap[i] = graph_copy_node(a, &out, &g->nodes[i], remap);
    }
    out.output = g->output >= 0 ? remap[g->output] : -1;
    return out;
}
