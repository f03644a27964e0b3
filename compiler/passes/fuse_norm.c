/* fuse_norm.c - layer normalisation, with the residual add before it,
 * fused into one op.
 *
 * The standard library defines (lang/std/nn.vam)
 *
 *     mu  = mean(x, axis: -1)
 *     c   = x - mu
 *     var = mean(c * c, axis: -1)
 *     y   = c * rsqrt(var + eps) * gain + bias
 *
 * and a post-norm layer normalises x = h + r (a residual). This pass
 * finds that shape of graph, whoever wrote it (products and sums in
 * either order), and replaces it by one LAYER_NORM(h, r, gain, bias) node
 * with attr.eps; without a residual add in front, r is a new scalar 0.
 * The kernel reads the row once per pass with no intermediate tensors
 * (emit_layer_norm in codegen.c; the reference is rt_layer_norm). A match
 * needs the means along the last axis, every intermediate read only inside
 * the group, and gain and bias of shape [d].
 */
#include "arena.h"
#include "fuse_util.h"
#include "passes.h"

typedef struct Match {
    int h, r, gain, bias;   /* r: -1 for none */
    float eps;
} Match;

/* Is node v a [d] vector, d the last dim of shape s? */
static bool is_row(const Graph *g, int v, const Shape *s)
{
    const Node *n = &g->nodes[v];
    return n->dtype == DT_F32 && n->shape.rank == 1 && dim_eq(n->shape.d[0], s->d[s->rank - 1]);
}

/* The MEAN along the last axis with one reader at node x, else NULL. */
static const Node *last_mean(const Graph *g, const int *uses, int x)
{
    const Node *m = fuse_node_if(g, uses, x, OP_MEAN, 1);
    return m && m->attr.axis == m->shape.rank - 1 ? m : NULL;
}

/* Is node i the end (`+ bias`) of a layer norm? (FuseMatch) */
static bool match(const Graph *g, const int *uses, int i, void *match, bool *gone)
{
    Match *mt = match;
    const Node *y = &g->nodes[i];
    if (y->op != OP_ADD || y->dtype != DT_F32 || y->shape.rank < 1)
        return false;
    for (int s1 = 0; s1 < 2; s1++) {
        const Node *t2 = fuse_node_if(g, uses, y->in[s1], OP_MUL, 1);
        int bias = y->in[1 - s1];
        if (!t2 || !is_row(g, bias, &y->shape) || !shape_eq(&t2->shape, &y->shape))
            continue;
        for (int s2 = 0; s2 < 2; s2++) {
            const Node *t1 = fuse_node_if(g, uses, t2->in[s2], OP_MUL, 1);
            int gain = t2->in[1 - s2];
            if (!t1 || !is_row(g, gain, &y->shape))
                continue;
            for (int s3 = 0; s3 < 2; s3++) {
                int ci = t1->in[s3];
                const Node *c = fuse_node_if(g, uses, ci, OP_SUB, 3);
                const Node *rs = fuse_node_if(g, uses, t1->in[1 - s3], OP_RSQRT, 1);
                if (!c || !rs || !shape_eq(&c->shape, &y->shape))
                    continue;
                const Node *ve = fuse_node_if(g, uses, rs->in[0], OP_ADD, 1);
                if (!ve)
                    continue;
                for (int s4 = 0; s4 < 2; s4++) {
                    const Node *var = last_mean(g, uses, ve->in[s4]), *eps = &g->nodes[ve->in[1 - s4]];
                    if (!var || eps->op != OP_CONST)
                        continue;
                    const Node *sq = fuse_node_if(g, uses, var->in[0], OP_MUL, 1);
                    if (!sq || sq->in[0] != ci || sq->in[1] != ci)
                        continue;
                    int x = c->in[0];
                    const Node *mu = last_mean(g, uses, c->in[1]);
                    if (!mu || mu->in[0] != x || !shape_eq(&g->nodes[x].shape, &y->shape) ||
                        uses[x] != 2)
                        continue;
                    *mt = (Match){ .h = x, .r = -1, .gain = gain, .bias = bias, .eps = (float)eps->attr.value };
                    const Node *res = &g->nodes[x];
                    if (res->op == OP_ADD && shape_eq(&g->nodes[res->in[0]].shape, &y->shape) &&
                        shape_eq(&g->nodes[res->in[1]].shape, &y->shape)) {
                        mt->h = res->in[0], mt->r = res->in[1];
                        gone[x] = true;
                    }
                    const int group[] = { c->in[1], ci, var->in[0], ve->in[s4], rs->in[0], t1->in[1 - s3],
                                          t2->in[s2], y->in[s1] };
                    for (size_t k = 0; k < sizeof group / sizeof *group; k++)
                        gone[group[k]] = true;
                    return true;
                }
            }
        }
    }
    return false;
}

static int emit(Arena *a, Graph *out, const Graph *g, int end, const void *match, const int *remap)
{
    const Match *mt = match;
    const Node *e = &g->nodes[end];
    int r = mt->r >= 0 ? remap[mt->r]
                       : graph_add(a, out, (Node){ .op = OP_CONST, .dtype = DT_F32, .loc = e->loc, .site = e->site,
                                                   .attr.value = 0 });
    Node f = { .op = OP_LAYER_NORM, .in = { remap[mt->h], r, remap[mt->gain], remap[mt->bias] },
               .dtype = DT_F32, .shape = e->shape, .loc = e->loc, .site = e->site };
    f.attr.eps = mt->eps;
    return graph_add(a, out, f);
}

Graph pass_fuse_norm(Arena *a, const Graph *g)
{
    return fuse_run(a, g, sizeof(Match), match, emit);
}
