/* fuse_heads.c - attention's transposes gone from a training graph.
 *
 * merge_heads (lang/std/nn.vam) is reshape(transpose(x, 1, 2), [b, s, h *
 * dh]), and the backward pass of attention reads p, ds and q transposed,
 * so a training graph stored attention's values transposed and back (100
 * transposes in a step of en-es, memory bound). Now:
 * - a MATMUL whose only reader is a transpose of its axes 1 and 2 writes
 *   its result in place of the transpose's (attr.mm.heads): the node takes
 *   the transpose's [b, s, h, dh] shape, its rows h * dh floats apart;
 * - one whose a is a transpose of a computed value's last two axes reads
 *   it transposed (attr.mm.at): pᵀ @ g, the gradient of v;
 * - transpose(xᵀ @ y), the gradient of k in q @ kᵀ, is made as yᵀ @ x,
 *   and then by the first rule written head-split in place.
 * The transposes are left for dce. split_heads' transposes (of q, k, v
 * and the gradient of o) stay: read in place through strides, a head's
 * rows lie h * dh floats apart, which crowds them into a quarter of the
 * L1 sets; the products that read them so took 18.8 ms a step where those
 * without take 12.4 and the transposes 2.5 (en-es, AVX2 code, Zen 5).
 *
 * Run after fuse_transpose (which makes q @ transpose(k) one MATMUL with
 * bt), on training graphs only: the translators' attention is one fused
 * kernel (fuse_attention.c). The reference (interp.c) transposes a and
 * the result around rt_matmul.
 */
#include <string.h>

#include "arena.h"
#include "passes.h"

/* Is t a transpose of a rank-4 value's axes 1 and 2? */
static bool swaps_heads(const Node *t)
{
    const int want[4] = { 0, 2, 1, 3 };
    return t->op == OP_TRANSPOSE && t->shape.rank == 4 && !memcmp(t->attr.perm, want, sizeof want);
}

/* Is t a transpose of a rank-4 computed value's last two axes? */
static bool swaps_last(const Graph *g, const Node *t)
{
    const int want[4] = { 0, 1, 3, 2 };
    if (t->op != OP_TRANSPOSE || t->shape.rank != 4 || memcmp(t->attr.perm, want, sizeof want))
        return false;
    Op src = g->nodes[t->in[0]].op;
    return src != OP_PARAM && src != OP_INPUT;
}

Graph pass_fuse_heads(Arena *a, const Graph *g)
{
    Graph out = { .name = g->name, .output = -1 };
    int n = g->n;
    int *remap = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    int *readers = arena_alloc(a, sizeof(int) * (size_t)(n + 1)), *reader = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    memset(readers, 0, sizeof(int) * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        for (int k = 0; k < op_info[g->nodes[i].op].arity; k++)
            readers[g->nodes[i].in[k]]++, reader[g->nodes[i].in[k]] = i;
    bool *folded = arena_alloc(a, sizeof(bool) * (size_t)(n + 1));   /* a transpose its matmul writes */
    memset(folded, 0, sizeof(bool) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        if (folded[i]) {
            remap[i] = remap[g->nodes[i].in[0]];
            continue;
        }
        Node nd = g->nodes[i];
        /* 4-D operands: the product's batch dims are its own (a 2-D b would
         * fold them into the rows, and the views need them apart) */
        if (nd.op == OP_MATMUL && !nd.attr.mm.packed && !nd.attr.mm.q8 && !nd.attr.mm.a8 && nd.shape.rank == 4 &&
            g->nodes[nd.in[0]].shape.rank == 4 && g->nodes[nd.in[1]].shape.rank == 4) {
            int last = i;   /* the node whose value nd now makes */
            int t = readers[i] == 1 ? reader[i] : -1;
            if (!nd.attr.mm.bt && t >= 0 && i != g->output && swaps_last(g, &g->nodes[t]) &&
                swaps_last(g, &g->nodes[nd.in[0]])) {
                /* transpose(xᵀ @ y) = yᵀ @ x: the backward pass's gradient of
                 * k in q @ kᵀ, (qᵀ @ ds)ᵀ, becomes dsᵀ @ q */
                int x = g->nodes[nd.in[0]].in[0];
                nd.in[0] = nd.in[1], nd.in[1] = x;
                nd.attr.mm.at = true;
                nd.shape = g->nodes[t].shape;
                folded[t] = true;
                last = t;
            }
            if (!nd.attr.mm.at && swaps_last(g, &g->nodes[nd.in[0]])) {   /* a = xᵀ: read transposed */
                nd.in[0] = g->nodes[nd.in[0]].in[0];
                nd.attr.mm.at = true;
            }
            t = readers[last] == 1 ? reader[last] : -1;
            if (t >= 0 && swaps_heads(&g->nodes[t]) && last != g->output) {
                nd.shape = g->nodes[t].shape;
                nd.attr.mm.heads = true;
                folded[t] = true;
            }
        }
        for (int k = 0; k < op_info[nd.op].arity; k++)
            nd.in[k] = remap[nd.in[k]];
        remap[i] = graph_add(a, &out, nd);
    }
    out.output = g->output >= 0 ? remap[g->output] : -1;
    return out;
}
