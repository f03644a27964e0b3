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
 * keeps its one row-major copy. The interpreter ignores the marks; it
 * always reads weights as they are in the file.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "passes.h"

int64_t param_floats(const ParamInfo *p)
{
    return p->packed ? rt_packed_numel(p->shape.d[0].n, p->shape.d[1].n) : shape_numel_const(&p->shape);
}

void pack_param(const ParamInfo *p, const float *w, float *out)
{
    if (p->packed)
        rt_pack_panels(w, p->shape.d[0].n, p->shape.d[1].n, out);
    else
        memcpy(out, w, (size_t)shape_numel_const(&p->shape) * 4);
}

int pass_pack(Model *m)
{
    if (m->nparams == 0)
        return 0;
    /* 0 unused, 1 only as matmul's b, 2 used some other way */
    unsigned char *use = calloc((size_t)m->nparams, 1);
    if (!use)
        return 0;   /* nothing packed: slower, still right */
    Graph *graphs[] = { &m->enc, &m->dec, &m->prep, &m->step };
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < graphs[g]->n; i++) {
            const Node *n = &graphs[g]->nodes[i];
            for (int k = 0; k < op_info[n->op].arity; k++) {
                const Node *in = &graphs[g]->nodes[n->in[k]];
                if (in->op != OP_PARAM)
                    continue;
                bool as_b = (n->op == OP_MATMUL || n->op == OP_LINEAR) && k == 1 && in->shape.rank == 2 &&
                            !(n->op == OP_MATMUL && n->attr.mm.bt);   /* read transposed: rows */
                if (!as_b)
                    use[in->attr.param] = 2;
                else if (use[in->attr.param] == 0)
                    use[in->attr.param] = 1;
            }
        }
    int count = 0;
    for (int p = 0; p < m->nparams; p++) {
        m->params[p].packed = use[p] == 1;
        count += use[p] == 1;
    }
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < graphs[g]->n; i++) {
            Node *n = &graphs[g]->nodes[i];
            if (n->op == OP_MATMUL || n->op == OP_LINEAR) {
                const Node *b = &graphs[g]->nodes[n->in[1]];
                n->attr.mm.packed = b->op == OP_PARAM && m->params[b->attr.param].packed;
            }
        }
    free(use);
    return count;
}
