/* fuse_transpose.c - no materialised transposes in front of a matmul.
 *
 *     matmul(a, transpose(y))   (the transpose swaps y's last two axes)
 *
 * becomes one MATMUL with attr.mm.bt: b is y itself, read as its
 * transpose. Tied output layers (h @ transpose(table)), the input
 * gradients of training (g @ transpose(w)) and attention's scores
 * (q @ transpose(k)) are written this way. The kernel packs each column
 * tile of the product from y's rows as it goes (codegen.c, emit_matmul),
 * so the [K, N] transpose is never stored. Also, transpose(transpose(x))
 * with perms that cancel is x (autodiff makes these: the gradient of
 * a @ transpose(y) with respect to a is g @ transpose(transpose(y))).
 *
 * Run after the other fusions: attention (fuse_attention.c) and linear
 * (fuse_linear.c) match plain matmuls. A transpose read by nothing else
 * is left for dce. The reference is rt_matmul of the stored transpose.
 */
#include <string.h>

#include "arena.h"
#include "passes.h"

/* Does transpose node t swap exactly its last two axes? */
static bool swaps_last(const Node *t)
{
    int r = t->shape.rank;
    if (t->op != OP_TRANSPOSE || r < 2)
        return false;
    for (int i = 0; i < r - 2; i++)
        if (t->attr.perm[i] != i)
            return false;
    return t->attr.perm[r - 2] == r - 1 && t->attr.perm[r - 1] == r - 2;
}

/* x, or what x is a cancelled double transpose of. */
static int through_double(const Graph *g, int x)
{
    const Node *t = &g->nodes[x];
    if (t->op != OP_TRANSPOSE || g->nodes[t->in[0]].op != OP_TRANSPOSE)
        return x;
    const Node *u = &g->nodes[t->in[0]];
    for (int i = 0; i < t->shape.rank; i++)
        if (u->attr.perm[t->attr.perm[i]] != i)
            return x;
    return u->in[0];
}

Graph pass_fuse_transpose(Arena *a, const Graph *g)
{
    Graph out = { .name = g->name, .output = -1 };
    int *remap = arena_alloc(a, sizeof(int) * (size_t)(g->n + 1));
    for (int i = 0; i < g->n; i++) {
        Node n = g->nodes[i];
        for (int k = 0; k < op_info[n.op].arity; k++)
            n.in[k] = through_double(g, n.in[k]);
        if (n.op == OP_MATMUL && !n.attr.mm.bt && !n.attr.mm.packed && swaps_last(&g->nodes[n.in[1]])) {
            n.in[1] = through_double(g, g->nodes[n.in[1]].in[0]);
            n.attr.mm.bt = true;
        }
        int ids[MAX_IN];
        memcpy(ids, n.in, sizeof ids);
        for (int k = 0; k < op_info[n.op].arity; k++)
            n.in[k] = remap[ids[k]];
        remap[i] = graph_add(a, &out, n);
    }
    out.output = g->output >= 0 ? remap[through_double(g, g->output)] : -1;
    return out;
}
