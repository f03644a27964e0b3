/* fuse_attention.c - recognise scaled dot-product attention and fuse it into one op.
 *
 * The standard library defines attention in primitive ops
 * (lang/std/nn.vam):
 *
 *     scores = (q @ kt) / c          (or * c)
 *     x      = scores + mask         (either order)
 *     e      = exp(x - max(x, axis: -1))
 *     out    = (e / sum(e, axis: -1)) @ v
 *
 * This pass finds that shape of graph, whatever function wrote it, and
 * replaces its nine nodes by one ATTENTION(q, kt, v, mask) node, which the
 * backend lowers to a kernel that never stores the score matrix (see
 * emit_attention in codegen.c; the reference is rt_attention). A match
 * needs every intermediate value to be read only inside the pattern (a
 * score matrix that something else reads must stay), the softmax along
 * the last axis, operands of one rank, a mask that does not widen the
 * scores, and query, key and value rows of constant widths up to
 * ATTENTION_MAX_WIDTH.
 * Anything else is left as it is.
 */
#include "arena.h"
#include "fuse_util.h"
#include "passes.h"

typedef struct Match {
    int q, kt, v, mask;
    float scale;
    bool div;
} Match;

/* Is node i the end (`p @ v`) of an attention pattern? (FuseMatch) */
static bool match(const Graph *g, const int *uses, int i, void *match, bool *gone)
{
    Match *mt = match;
    const Node *out = &g->nodes[i], *nd;
    if (out->op != OP_MATMUL || out->dtype != DT_F32)
        return false;
    int r = out->shape.rank;
    const Node *p = fuse_node_if(g, uses, out->in[0], OP_DIV, 1);
    if (!p)
        return false;
    int e = p->in[0];
    const Node *sum = fuse_node_if(g, uses, p->in[1], OP_SUM, 1);
    const Node *ex = fuse_node_if(g, uses, e, OP_EXP, 2);
    if (!sum || !ex || sum->in[0] != e || sum->attr.axis != r - 1)
        return false;
    const Node *z = fuse_node_if(g, uses, ex->in[0], OP_SUB, 1);
    if (!z)
        return false;
    int x = z->in[0];
    const Node *mx = fuse_node_if(g, uses, z->in[1], OP_MAX, 1);
    const Node *xa = fuse_node_if(g, uses, x, OP_ADD, 2);
    if (!mx || !xa || mx->in[0] != x || mx->attr.axis != r - 1)
        return false;
    /* scores + mask, either way round: the scores are the scaled matmul */
    for (int side = 0; side < 2; side++) {
        int sc = xa->in[side], mask = xa->in[1 - side];
        const Node *s = &g->nodes[sc];
        if (uses[sc] != 1 || (s->op != OP_DIV && s->op != OP_MUL))
            continue;
        for (int cs = 0; cs < 2; cs++) {
            int qk = s->in[cs], c = s->in[1 - cs];
            if (g->nodes[c].op != OP_CONST || (s->op == OP_DIV && cs == 1))
                continue;   /* c / scores is no scale */
            if (!(nd = fuse_node_if(g, uses, qk, OP_MATMUL, 1)))
                continue;
            const Node *q = &g->nodes[nd->in[0]], *kt = &g->nodes[nd->in[1]], *v = &g->nodes[out->in[1]];
            Dim width = v->shape.d[r - 1], depth = q->shape.d[q->shape.rank - 1];
            if (width.sym >= 0 || width.n > ATTENTION_MAX_WIDTH || depth.sym >= 0 ||
                depth.n > ATTENTION_MAX_WIDTH)
                continue;   /* the kernel keeps value rows and a key block on the stack */
            if (q->shape.rank != r || kt->shape.rank != r || v->shape.rank != r || nd->shape.rank != r ||
                g->nodes[mask].shape.rank > r || !shape_eq(&xa->shape, &nd->shape) ||
                !shape_eq(&s->shape, &nd->shape) || g->nodes[mask].dtype != DT_F32)
                continue;
            *mt = (Match){ .q = nd->in[0], .kt = nd->in[1], .v = out->in[1], .mask = mask,
                           .scale = (float)g->nodes[c].attr.value, .div = s->op == OP_DIV };
            const int group[] = { qk, sc, x, z->in[1], ex->in[0], e, p->in[1], out->in[0] };
            for (size_t k = 0; k < sizeof group / sizeof *group; k++)
                gone[group[k]] = true;
            return true;
        }
    }
    return false;
}

static int emit(Arena *a, Graph *out, const Graph *g, int end, const void *match, const int *remap)
{
    const Match *mt = match;
    const Node *e = &g->nodes[end];
    Node f = { .op = OP_ATTENTION, .in = { remap[mt->q], remap[mt->kt], remap[mt->v], remap[mt->mask] },
               .dtype = DT_F32, .shape = e->shape, .loc = e->loc, .site = e->site };
    f.attr.attn.scale = mt->scale;
    f.attr.attn.div = mt->div;
    return graph_add(a, out, f);
}

Graph pass_fuse_attention(Arena *a, const Graph *g)
{
    return fuse_run(a, g, sizeof(Match), match, emit);
}
