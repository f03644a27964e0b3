/* fuse_output.c - the decoder step returns logits, not their softmax.
 *
 * A translation decoder ends in the vocabulary projection, usually
 * followed by softmax or log_softmax (lang/std/nn.vam):
 *
 *     softmax:      e = exp(x - max(x)); e / sum(e)
 *     log_softmax:  z = x - max(x); z - log(sum(exp(z)))
 *
 * along the last axis. Decoding needs only the order of the scores
 * (greedy: the arg-max) or their log-probabilities (beam search), and the
 * runtime gets both from logits (log_probs in runtime/translate.c
 * computes log_softmax itself, in double precision). So when the derived
 * step's output is one of these, the step returns x instead: the
 * projection's output is written once, and the softmax's passes over the
 * vocabulary (a max, exps, a sum, a division) never run. Model.step_out
 * records what was dropped; the full decoder (`vamos run --no-step`, the
 * interpreter) keeps its output as written.
 */
#include "passes.h"

static bool last_axis(const Graph *g, int i, Op op, int of)
{
    const Node *n = &g->nodes[i];
    return n->op == op && n->attr.axis == n->shape.rank - 1 && (of < 0 || n->in[0] == of);
}

StepOut pass_output_logits(Graph *g)
{
    if (g->output < 0)
        return STEP_OUT_AS_WRITTEN;
    const Node *o = &g->nodes[g->output], *n;
    if (o->op == OP_DIV) {                       /* e / sum(e) */
        int e = o->in[0];
        n = &g->nodes[e];
        if (n->op == OP_EXP && last_axis(g, o->in[1], OP_SUM, e) && g->nodes[n->in[0]].op == OP_SUB) {
            const Node *z = &g->nodes[n->in[0]];
            if (last_axis(g, z->in[1], OP_MAX, z->in[0])) {
                g->output = z->in[0];
                return STEP_OUT_LOGITS_OF_SOFTMAX;
            }
        }
    }
    if (o->op == OP_SUB && g->nodes[o->in[1]].op == OP_LOG) {   /* z - log(sum(exp(z))) */
        int z = o->in[0];
        const Node *lg = &g->nodes[o->in[1]], *sum = &g->nodes[lg->in[0]];
        n = &g->nodes[z];
        if (last_axis(g, lg->in[0], OP_SUM, -1) && g->nodes[sum->in[0]].op == OP_EXP &&
            g->nodes[sum->in[0]].in[0] == z && n->op == OP_SUB && last_axis(g, n->in[1], OP_MAX, n->in[0])) {
            g->output = n->in[0];
            return STEP_OUT_LOGITS_OF_LOG_SOFTMAX;
        }
    }
    return STEP_OUT_AS_WRITTEN;
}
