/* fuse_linear.c - a matmul's epilogue fused into it: bias, then relu.
 *
 * The standard library's linear is `x @ w + b`, and relu `maximum(x,
 * 0.0)`. This pass finds
 *
 *     y = (x @ w) + bias          (either order; bias [N], N = y's last dim)
 *     y = maximum(y, 0)           (optional; either order)
 *
 * by the graph's structure, whoever wrote it, and replaces it by one
 * LINEAR(x, w, bias) node (attr.mm.relu). The matmul kernel then adds the
 * bias and applies relu to its register tile as it stores, so the result
 * is written once instead of three times. A match needs a 2-D w, the
 * product and the sum read only inside the group, and a bias that does
 * not widen the product. The reference is rt_linear.
 */
#include "arena.h"
#include "fuse_util.h"
#include "passes.h"

typedef struct Match {
    int x, w, bias;
    bool relu;
} Match;

/* Is node i a zero constant? */
static bool is_zero(const Graph *g, int i)
{
    return i >= 0 && g->nodes[i].op == OP_CONST && g->nodes[i].attr.value == 0;
}

/* Is node i (an ADD) the bias add of a linear? The matmul is marked gone. */
static bool match_add(const Graph *g, const int *uses, int i, Match *mt, bool *gone)
{
    const Node *n = &g->nodes[i];
    if (n->op != OP_ADD || n->dtype != DT_F32)
        return false;
    for (int side = 0; side < 2; side++) {
        const Node *mm = fuse_node_if(g, uses, n->in[side], OP_MATMUL, 1);
        const Node *bias = &g->nodes[n->in[1 - side]];
        if (!mm || g->nodes[mm->in[1]].shape.rank != 2 || !shape_eq(&mm->shape, &n->shape))
            continue;
        int r = n->shape.rank;
        if (bias->dtype != DT_F32 || bias->shape.rank != 1 || !dim_eq(bias->shape.d[0], n->shape.d[r - 1]))
            continue;
        *mt = (Match){ .x = mm->in[0], .w = mm->in[1], .bias = n->in[1 - side] };
        gone[n->in[side]] = true;
        return true;
    }
    return false;
}

/* Is node i the end of a linear: its bias add, or a relu of one?
 * (FuseMatch; the driver tries the relu, which comes later, first.) */
static bool match(const Graph *g, const int *uses, int i, void *match, bool *gone)
{
    const Node *mx = &g->nodes[i];
    if (mx->op == OP_MAXIMUM)
        for (int side = 0; side < 2; side++) {
            int y = mx->in[side];
            if (uses[y] == 1 && is_zero(g, mx->in[1 - side]) && shape_eq(&mx->shape, &g->nodes[y].shape) &&
                match_add(g, uses, y, match, gone)) {
                ((Match *)match)->relu = true;
                gone[y] = true;
                return true;
            }
        }
    return match_add(g, uses, i, match, gone);
}

static int emit(Arena *a, Graph *out, const Graph *g, int end, const void *match, const int *remap)
{
    const Match *mt = match;
    const Node *e = &g->nodes[end];
    Node f = { .op = OP_LINEAR, .in = { remap[mt->x], remap[mt->w], remap[mt->bias] }, .dtype = DT_F32,
               .shape = e->shape, .loc = e->loc, .site = e->site };
    f.attr.mm.relu = mt->relu;
    return graph_add(a, out, f);
}

Graph pass_fuse_linear(Arena *a, const Graph *g)
{
    return fuse_run(a, g, sizeof(Match), match, emit);
}
