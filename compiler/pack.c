/* pack.c - choose the weights that compiled code reads pre-packed.
 *
 * A matmul's right operand b [K, N] is read along its rows: for each k, a
 * strip of columns. When b is a weight, it can instead be stored once (at
 * build time, or when the JIT binds weights) in panels of VAMOS_PANEL
 * columns (runtime/kernels.h), so that a kernel computing a column tile
 * streams one contiguous block of memory. One-row products (decoding) are
 * bound by how fast weights stream in, so this is where their time goes.
 *
 * A weight is packed only if every use of it, in every graph, is as the
 * right operand of a matmul: a weight that is also gathered or added
 * keeps its one row-major copy. A weight a matmul reads transposed
 * (attr.mm.bt: a decoder's embedding table tied to its output layer,
 * h @ transpose(table)) keeps that copy too, and its transpose follows it
 * in panels, so the output layer reads the panels as any packed weight
 * (the kernel that reads b^T unpacked re-packs it on every call: at 32
 * rows a step that cost as much as the product). The interpreter ignores
 * the marks; it always reads weights as they are in the file.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "passes.h"

int64_t param_t_offset(const ParamInfo *p)
{
    return (shape_numel_const(&p->shape) + 15) & ~(int64_t)15;   /* 64-byte aligned */
}

int64_t param_floats(const ParamInfo *p)
{
    if (p->packed_t)   /* w [N, K], then w^T [K, N] in panels */
        return param_t_offset(p) + rt_packed_numel(p->shape.d[1].n, p->shape.d[0].n);
    return p->packed ? rt_packed_numel(p->shape.d[0].n, p->shape.d[1].n) : shape_numel_const(&p->shape);
}

int pack_param(const ParamInfo *p, const float *w, float *out)
{
    if (p->packed) {
        rt_pack_panels(w, p->shape.d[0].n, p->shape.d[1].n, out);
        return 0;
    }
    int64_t n = shape_numel_const(&p->shape);
    memcpy(out, w, (size_t)n * 4);
    if (!p->packed_t)
        return 0;
    int64_t N = p->shape.d[0].n, K = p->shape.d[1].n, off = param_t_offset(p);
    float *t = malloc((size_t)(n ? n : 1) * 4);
    if (!t)
        return -1;
    for (int64_t i = 0; i < N; i++)
        for (int64_t k = 0; k < K; k++)
            t[k * N + i] = w[i * K + k];
    memset(out + n, 0, (size_t)(off - n) * 4);
    rt_pack_panels(t, K, N, out + off);
    free(t);
    return 0;
}

int pass_pack(Model *m)
{
    if (m->nparams == 0)
        return 0;
    /* 0 unused, 1 only as matmul's b, 2 used some other way; bt: read
     * transposed by a matmul */
    unsigned char *use = calloc((size_t)m->nparams, 1), *bt = calloc((size_t)m->nparams, 1);
    if (!use || !bt) {
        free(use), free(bt);
        return 0;   /* nothing packed: slower, still right */
    }
    Graph *graphs[] = { &m->enc, &m->dec, &m->prep, &m->step };
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < graphs[g]->n; i++) {
            const Node *n = &graphs[g]->nodes[i];
            for (int k = 0; k < op_info[n->op].arity; k++) {
                const Node *in = &graphs[g]->nodes[n->in[k]];
                if (in->op != OP_PARAM)
                    continue;
                bool as_b = (n->op == OP_MATMUL || n->op == OP_LINEAR) && k == 1 && in->shape.rank == 2;
                if (as_b && n->op == OP_MATMUL && n->attr.mm.bt) {   /* read transposed */
                    bt[in->attr.param] = 1;
                    as_b = false;
                }
                if (!as_b)
                    use[in->attr.param] = 2;
                else if (use[in->attr.param] == 0)
                    use[in->attr.param] = 1;
            }
        }
    int count = 0;
    for (int p = 0; p < m->nparams; p++) {
        m->params[p].packed = use[p] == 1 && !bt[p];
        m->params[p].packed_t = bt[p] && m->params[p].shape.rank == 2;
        count += use[p] == 1 || m->params[p].packed_t;
    }
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < graphs[g]->n; i++) {
            Node *n = &graphs[g]->nodes[i];
            if (n->op == OP_MATMUL || n->op == OP_LINEAR) {
                const Node *b = &graphs[g]->nodes[n->in[1]];
                const ParamInfo *p = b->op == OP_PARAM ? &m->params[b->attr.param] : NULL;
                n->attr.mm.packed = p && (n->op == OP_MATMUL && n->attr.mm.bt ? p->packed_t : p->packed);
            }
        }
    free(use), free(bt);
    return count;
}
