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
 *
 * With --quantize int8 (pass_quantize), every packed weight's panels are
 * int8, each column with one f32 scale (its largest magnitude / 127): a
 * quarter of the bytes, which is what one-row decoding is bound by. The
 * kernels (cg_matmul.c, mm_tile) widen the int8 values to f32 and multiply
 * and add in f32, then scale each column's sum; no product or sum is ever
 * an 8- or 16-bit integer, so nothing saturates, whatever the weights and
 * activations (tests/unit/test_jit.c tries all-+-127 weights against
 * activations of 1e4). Where the target has VNNI (a8), the activations
 * are int8 too and the products are integer dot products (cg_int8.c):
 * the panels then hold 4 k per column side by side, and each column's
 * sum, for the unsigned activations' offset.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "passes.h"

int64_t param_t_offset(const ParamInfo *p)
{
    return (shape_numel_const(&p->shape) + 15) & ~(int64_t)15;   /* 64-byte aligned */
}

/* The floats of b [K, N] in panels: f32, or int8 (pass_quantize): the
 * columns' scales (N rounded up to whole panels), then the int8 panels
 * in the same order as f32's, 4 to a float. For products with int8
 * activations (a8), the scales, then each column's sum of its int8
 * values (int32: the kernels take unsigned activations, x + 2^(bits - 1),
 * and take that times the sum off), then panels of k in groups of 4: group g of a
 * panel is [PW columns][4 k] (k past K is 0), which is what one VNNI
 * instruction multiplies by 4 activations of a row. */
static int64_t k_groups(int64_t K) { return (K + 3) / 4; }

static int64_t panels_floats(int64_t K, int64_t N, bool q8, int a8)
{
    int64_t cols = (N + VAMOS_PANEL - 1) / VAMOS_PANEL * VAMOS_PANEL;
    if (a8)
        return 2 * cols + k_groups(K) * cols;
    return q8 ? cols + (K * cols + 3) / 4 : K * cols;
}

int64_t param_floats(const ParamInfo *p)
{
    if (p->packed_t)   /* w [N, K], then w^T [K, N] in panels */
        return param_t_offset(p) + panels_floats(p->shape.d[1].n, p->shape.d[0].n, p->q8, p->a8);
    return p->packed ? panels_floats(p->shape.d[0].n, p->shape.d[1].n, p->q8, p->a8) : shape_numel_const(&p->shape);
}

/* Column j's scale: its largest magnitude / 127, so that w = scale * q
 * with q in -127..127 (round to nearest). A column holding a NaN or an
 * infinity gets a NaN scale: its products are NaN, as in f32, rather than
 * a finite wrong number. */
static float column_scale(const float *b, int64_t K, int64_t N, int64_t j)
{
    float most = 0;
    for (int64_t k = 0; k < K; k++) {
        float x = b[k * N + j];
        if (!isfinite(x))
            return NAN;
        most = fmaxf(most, fabsf(x));
    }
    return most / 127.0f;
}

static signed char quantized(float x, float scale)
{
    if (!(scale > 0))   /* a zero column, or a NaN scale */
        return 0;
    long q = lrintf(x / scale);
    return (signed char)(q > 127 ? 127 : q < -127 ? -127 : q);
}

/* b [K, N] row-major into panels at out: f32, or int8 as panels_floats says. */
static void pack_panels(const float *b, int64_t K, int64_t N, bool q8, int a8, float *out)
{
    if (!q8) {
        rt_pack_panels(b, K, N, out);
        return;
    }
    int64_t cols = (N + VAMOS_PANEL - 1) / VAMOS_PANEL * VAMOS_PANEL;
    for (int64_t j = 0; j < cols; j++)
        out[j] = j < N ? column_scale(b, K, N, j) : 0.0f;
    if (a8) {
        int32_t *sum = (int32_t *)(out + cols);
        signed char *q = (signed char *)(out + 2 * cols);
        for (int64_t j = 0; j < cols; j++)
            sum[j] = 0;
        for (int64_t t = 0; t * VAMOS_PANEL < N; t++)
            for (int64_t g = 0; g < k_groups(K); g++)
                for (int64_t jj = 0; jj < VAMOS_PANEL; jj++)
                    for (int64_t kk = 0; kk < 4; kk++) {
                        int64_t j = t * VAMOS_PANEL + jj, k = g * 4 + kk;
                        signed char v = j < N && k < K ? quantized(b[k * N + j], out[j]) : 0;
                        *q++ = v;
                        sum[t * VAMOS_PANEL + jj] += v;
                    }
        return;
    }
    signed char *q = (signed char *)(out + cols);
    for (int64_t t = 0; t * VAMOS_PANEL < N; t++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t jj = 0; jj < VAMOS_PANEL; jj++) {
                int64_t j = t * VAMOS_PANEL + jj;
                *q++ = j < N ? quantized(b[k * N + j], out[j]) : 0;
            }
    for (int64_t pad = (K * cols) % 4; pad && pad < 4; pad++)
        *q++ = 0;
}

void param_dequantized(const ParamInfo *p, const float *w, float *out)
{
    int64_t n = shape_numel_const(&p->shape);
    if (out != w)
        memcpy(out, w, (size_t)n * 4);
    if (!p->q8)
        return;
    /* b [K, N] with N columns; a packed_t weight y [N, K] is read as y^T,
     * so its columns are y's rows */
    int64_t K = p->packed_t ? p->shape.d[1].n : p->shape.d[0].n, N = p->packed_t ? p->shape.d[0].n : p->shape.d[1].n;
    int64_t sk = p->packed_t ? 1 : N, sn = p->packed_t ? K : 1;   /* strides of b's k and n in w */
    float *col = malloc((size_t)(K ? K : 1) * 4);
    for (int64_t j = 0; col && j < N; j++) {
        for (int64_t k = 0; k < K; k++)
            col[k] = out[k * sk + j * sn];
        float s = column_scale(col, K, 1, 0);
        for (int64_t k = 0; k < K; k++)
            out[k * sk + j * sn] = s * (float)quantized(col[k], s);
    }
    free(col);
}

int pack_param(const ParamInfo *p, const float *w, float *out)
{
    if (p->packed) {
        pack_panels(w, p->shape.d[0].n, p->shape.d[1].n, p->q8, p->a8, out);
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
    pack_panels(t, K, N, p->q8, p->a8, out + off);
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

int pass_quantize(Model *m, int a8)
{
    int count = 0;
    for (int p = 0; p < m->nparams; p++) {
        ParamInfo *pi = &m->params[p];
        pi->q8 = (pi->packed || pi->packed_t) && pi->shape.rank == 2;
        /* K: b's rows; a packed_t weight y [N, K] is read as y^T */
        int64_t K = pi->q8 ? pi->shape.d[pi->packed_t ? 1 : 0].n : 0;
        pi->a8 = (unsigned char)(a8 && pi->q8 && K <= A8_MAX_K ? a8 : 0);
        count += pi->q8;
    }
    Graph *graphs[] = { &m->enc, &m->dec, &m->prep, &m->step };
    /* int8 activations need a with the result's every dim (whole rows of
     * K, cg_int8.c): a weight read by any other product keeps the f32
     * activations' layout */
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < graphs[g]->n; i++) {
            const Node *n = &graphs[g]->nodes[i];
            if ((n->op == OP_MATMUL || n->op == OP_LINEAR) && n->attr.mm.packed &&
                graphs[g]->nodes[n->in[0]].shape.rank != n->shape.rank)
                m->params[graphs[g]->nodes[n->in[1]].attr.param].a8 = 0;
        }
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < graphs[g]->n; i++) {
            Node *n = &graphs[g]->nodes[i];
            if ((n->op == OP_MATMUL || n->op == OP_LINEAR) && n->attr.mm.packed) {
                const ParamInfo *pi = &m->params[graphs[g]->nodes[n->in[1]].attr.param];
                n->attr.mm.q8 = pi->q8;
                n->attr.mm.a8 = pi->a8;
            }
        }
    return count;
}
