/* chunk_output.c - the training graph's output layer, run in chunks of
 * rows (see passes.h, OutputChunk).
 *
 * The output layer's values are the largest of a training step: the
 * logits and their gradient are [rows, vocabulary], 32 MB each for 1,024
 * target tokens of an 8,000-subword vocabulary. Run whole, each is
 * written to memory by one kernel and read back by the next ones (the
 * loss, its gradient, the two products of the backward pass), so the
 * output layer streamed about 250 MB through DRAM per 1,024 tokens. Run
 * a few sentences at a time, from the logits' product to the products
 * that read their gradient, a chunk's logits and gradient stay in cache.
 *
 * This pass finds the five nodes that do it and orders them one after
 * another: the logits L = h @ y, the loss X = xent(L, labels), its
 * gradient G = xent_grad(L, labels), and the two products that read G,
 * D = G @ y' (the gradient of h) and T = matmul_tn (the weight's). D and
 * T move up from the backward pass to just after G (their inputs are all
 * computed by then, or the pass leaves the graph as it is; inputs such as
 * the labels move before L), so that the
 * memory plan knows their values are alive from there on. Every other
 * node keeps its order. The runner (train_graph.c) then calls the five
 * kernels chunk by chunk, each row value at its chunk's offset, L's and
 * G's chunks at the start of their buffers, and T adding each chunk's
 * products to the last (sym[SYM_ACC]).
 *
 * X and G become peers (attr.xent.peer): G's kernel writes X's losses as
 * it makes the gradient, and X has no kernel of its own. Both take exp of
 * every logit, most of their time (a step of en-es on 2 lanes, AVX2 code
 * on a Zen 5: 7.1 ms for X, 7.4 for G).
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "passes.h"

/* d[0], d[1] of s are the batch and the target length of labels */
static bool rows_lead(const Shape *s, const Shape *labels)
{
    return s->rank >= 2 && dim_eq(s->d[0], labels->d[0]) && dim_eq(s->d[1], labels->d[1]);
}

static bool no_sym_past_rows(const Shape *s)
{
    for (int k = 2; k < s->rank; k++)
        if (s->d[k].sym >= 0)
            return false;
    return true;
}

Graph pass_chunk_output(struct Arena *a, const Graph *g, OutputChunk *oc)
{
    *oc = (OutputChunk){ .first = -1 };
    int n = g->n, G = -1, X = -1, D = -1, T = -1;
    for (int i = 0; i < n; i++)
        if (g->nodes[i].op == OP_XENT_GRAD) {
            if (G >= 0)
                return *g;   /* one loss only */
            G = i;
        }
    if (G < 0)
        return *g;
    int L = g->nodes[G].in[0], lab = g->nodes[G].in[1];
    const Node *nl = &g->nodes[L];
    if (nl->op != OP_MATMUL || nl->attr.mm.packed)
        return *g;   /* a biased layer (LINEAR) has a third reader of G, its bias's gradient: not chunked */
    int h = nl->in[0];
    /* the readers of L and of G */
    int nG = 0;
    for (int i = 0; i < n; i++) {
        const Node *nd = &g->nodes[i];
        for (int k = 0; k < op_info[nd->op].arity; k++) {
            if (nd->in[k] == L && i != G) {
                if (nd->op != OP_XENT || X >= 0)
                    return *g;
                X = i;
            }
            if (nd->in[k] == G) {
                nG++;
                if (nd->op == OP_MATMUL && k == 0 && D < 0 && !nd->attr.mm.packed)
                    D = i;
                else if (nd->op == OP_MATMUL_TN && T < 0)
                    T = i;
                else
                    return *g;
            }
        }
    }
    if (X < 0 || D < 0 || T < 0 || nG != 2 || g->output == L || g->output == G || g->output == D)
        return *g;
    int t_rows = g->nodes[T].in[0] == G ? g->nodes[T].in[1] : g->nodes[T].in[0];
    const Shape *ls = &g->nodes[lab].shape;
    /* every row value is [batch, length, constants] (rows contiguous);
     * the other operands have no batch or length */
    int rowv[] = { h, L, X, G, D, t_rows };
    for (size_t k = 0; k < sizeof rowv / sizeof *rowv; k++)
        if (!rows_lead(&g->nodes[rowv[k]].shape, ls) || !no_sym_past_rows(&g->nodes[rowv[k]].shape))
            return *g;
    if (ls->rank != 2 || ls->d[0].sym < 0 || ls->d[1].sym < 0 || g->nodes[X].shape.rank != 2)
        return *g;
    int whole[] = { nl->in[1], g->nodes[D].in[1], T };   /* the weight (as read twice) and its gradient */
    for (size_t k = 0; k < sizeof whole / sizeof *whole; k++) {
        const Shape *w = &g->nodes[whole[k]].shape;
        if (w->rank != 2 || w->d[0].sym >= 0 || w->d[1].sym >= 0)
            return *g;
    }
    /* the new order: up to L, then L X G D T, then the rest */
    int group[5] = { L, X, G, D, T };
    bool *moved = arena_alloc(a, sizeof(bool) * (size_t)(n + 1));
    int *at = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    memset(moved, 0, sizeof(bool) * (size_t)(n + 1));
    for (int k = 0; k < 5; k++) {
        if (group[k] < L)
            return *g;
        moved[group[k]] = true;
    }
    /* inputs made after L (autodiff adds the labels last) go before it */
    int next = 0;
    for (int i = 0; i < L; i++)
        at[i] = next++;
    for (int k = 0; k < 5; k++) {
        const Node *nd = &g->nodes[group[k]];
        for (int j = 0; j < op_info[nd->op].arity; j++) {
            int in = nd->in[j];
            if (in > L && !moved[in] && op_info[g->nodes[in].op].arity == 0) {
                moved[in] = true;
                at[in] = next++;
            }
        }
    }
    for (int k = 0; k < 5; k++)
        at[group[k]] = next++;
    for (int i = L + 1; i < n; i++)
        if (!moved[i])
            at[i] = next++;
    /* each moved node's inputs must come before it in the new order */
    for (int k = 0; k < 5; k++) {
        const Node *nd = &g->nodes[group[k]];
        for (int j = 0; j < op_info[nd->op].arity; j++)
            if (at[nd->in[j]] >= at[group[k]])
                return *g;
    }
    Graph r = *g;
    r.nodes = arena_alloc(a, sizeof(Node) * (size_t)(n + 1));
    r.cap = n + 1;
    r.slot = NULL, r.nslots = 0;
    for (int i = 0; i < n; i++) {
        Node nd = g->nodes[i];
        for (int j = 0; j < op_info[nd.op].arity; j++)
            nd.in[j] = at[nd.in[j]];
        r.nodes[at[i]] = nd;
    }
    /* one kernel computes the loss and its gradient (emit_xent) */
    r.nodes[at[G]].attr.xent.peer = at[X] + 1;
    r.nodes[at[X]].attr.xent.peer = at[G] + 1;
    r.output = g->output >= 0 ? at[g->output] : -1;
    *oc = (OutputChunk){ .first = at[L], .h = at[h], .labels = at[lab], .t_rows = at[t_rows],
                         .batch_sym = ls->d[0].sym, .len_sym = ls->d[1].sym };
    return r;
}
