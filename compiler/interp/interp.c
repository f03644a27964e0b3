/* interp.c - the reference interpreter (see interp.h). */
#include "interp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tensor_free(Tensor *t)
{
    free(t->data);
    t->data = NULL;
}

/* The node's shape with every symbol replaced by its value. */
static rt_shape concrete(const Shape *s, const int64_t *sym)
{
    rt_shape r = { .rank = s->rank };
    for (int i = 0; i < s->rank; i++)
        r.dim[i] = s->d[i].sym >= 0 ? sym[s->d[i].sym] : s->d[i].n;
    return r;
}

/* A MAP node, step by step as its unfused ops would run: each input
 * broadcast to the output's shape, then one reference kernel per step
 * into a register of that shape. */
static int exec_map(const Node *n, const Tensor *v, Tensor *o, char *err, size_t errlen)
{
    int64_t numel = rt_numel(&o->shape);
    int nreg = 4 + n->attr.map.nstep;
    float *reg[4 + MAP_MAX_STEPS] = { 0 };
    int rc = 0;
    for (int r = 0; r < nreg && rc == 0; r++) {
        reg[r] = malloc((size_t)(numel ? numel : 1) * 4);
        if (!reg[r]) {
            snprintf(err, errlen, "out of memory for a tensor of %lld elements", (long long)numel);
            rc = -1;
        }
    }
    for (int k = 0; k < n->attr.map.nin && rc == 0; k++)
        rt_broadcast(v[n->in[k]].data, &v[n->in[k]].shape, reg[k], &o->shape);
    for (int s = 0; s < n->attr.map.nstep && rc == 0; s++) {
        const MapStep *st = &n->attr.map.code[s];
        float *r = reg[4 + s];
        if (st->op == OP_CONST)
            for (int64_t k = 0; k < numel; k++)
                r[k] = st->value;
        else if (op_info[st->op].kind == OPK_UNARY)
            rt_unary(st->op, reg[st->a], numel, r);
        else
            rt_binary(st->op, reg[st->a], &o->shape, reg[st->b], &o->shape, r, &o->shape);
    }
    if (rc == 0)
        memcpy(o->data, reg[nreg - 1], (size_t)numel * 4);
    for (int r = 0; r < nreg; r++)
        free(reg[r]);
    return rc;
}

/* A MATMUL reading b transposed (fuse_transpose.c): as it was written,
 * the transpose stored, then the plain matmul. */
static int matmul_bt(const Tensor *a, const Tensor *b, Tensor *o, char *err, size_t errlen)
{
    int r = b->shape.rank, perm[RT_MAX_RANK];
    rt_shape ts = b->shape;
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[r - 2] = r - 1, perm[r - 1] = r - 2;
    ts.dim[r - 2] = b->shape.dim[r - 1], ts.dim[r - 1] = b->shape.dim[r - 2];
    int64_t numel = rt_numel(&ts);
    float *t = malloc((size_t)(numel ? numel : 1) * 4);
    if (!t) {
        snprintf(err, errlen, "out of memory for a tensor of %lld elements", (long long)numel);
        return -1;
    }
    rt_transpose(b->data, &b->shape, perm, t);
    rt_matmul(a->data, &a->shape, t, &ts, o->data, &o->shape);
    free(t);
    return 0;
}

/* The transpose of a rank-r tensor's axes i and j, in a new buffer
 * (t->data, to free); -1 when out of memory. */
static int swapped(const Tensor *x, int i, int j, Tensor *t, char *err, size_t errlen)
{
    int perm[RT_MAX_RANK];
    for (int k = 0; k < x->shape.rank; k++)
        perm[k] = k;
    perm[i] = j, perm[j] = i;
    *t = *x;
    t->shape.dim[i] = x->shape.dim[j], t->shape.dim[j] = x->shape.dim[i];
    int64_t numel = rt_numel(&t->shape);
    if (!(t->data = malloc((size_t)(numel ? numel : 1) * 4))) {
        snprintf(err, errlen, "out of memory for a tensor of %lld elements", (long long)numel);
        return -1;
    }
    rt_transpose(x->data, &x->shape, perm, t->data);
    return 0;
}

/* A matmul reading a transposed (attr.mm.at) or writing its result
 * head-split (attr.mm.heads, fuse_heads.c): the plain product of a's
 * transpose, its result transposed into o. */
static int matmul_views(const Node *n, const Tensor *a, const Tensor *b, Tensor *o, char *err, size_t errlen)
{
    Tensor ta = *a, to = *o;
    int r = a->shape.rank;
    if (n->attr.mm.at && swapped(a, r - 2, r - 1, &ta, err, errlen))
        return -1;
    int rc = 0;
    if (n->attr.mm.heads) {   /* the product's [B, H, M, N], then swapped into o's [B, M, H, N] */
        to.shape.dim[1] = o->shape.dim[2], to.shape.dim[2] = o->shape.dim[1];
        int64_t numel = rt_numel(&to.shape);
        if (!(to.data = malloc((size_t)(numel ? numel : 1) * 4))) {
            snprintf(err, errlen, "out of memory for a tensor of %lld elements", (long long)numel);
            rc = -1;
        }
    }
    if (!rc && n->attr.mm.bt)
        rc = matmul_bt(&ta, b, &to, err, errlen);
    else if (!rc)
        rt_matmul(ta.data, &ta.shape, b->data, &b->shape, to.data, &to.shape);
    if (!rc && n->attr.mm.heads) {
        const int perm[4] = { 0, 2, 1, 3 };
        rt_transpose(to.data, &to.shape, perm, o->data);
    }
    if (n->attr.mm.heads)
        free(to.data);
    if (n->attr.mm.at)
        free(ta.data);
    return rc;
}

/* Execute node i into v[i] (already allocated). Returns 0 or -1. */
static int exec_node(const Model *m, const Graph *g, int i, float *const *params,
                     const InterpInputs *in, Tensor *v, char *err, size_t errlen)
{
    const Node *n = &g->nodes[i];
    Tensor *o = &v[i];
    const Tensor *a = op_info[n->op].arity > 0 ? &v[n->in[0]] : NULL;
    const Tensor *b = op_info[n->op].arity > 1 ? &v[n->in[1]] : NULL;
    int64_t numel = rt_numel(&o->shape);
    switch (n->op) {
    case OP_INPUT: {
        InputRole r = n->attr.input.role;
        const void *src = r == IN_TOKENS ? (const void *)(in->tokens_of[n->attr.input.sym] ? in->tokens_of[n->attr.input.sym]
                                                                                              : in->tokens)
                        : r == IN_LABELS ? (const void *)in->labels
                        : r == IN_LENGTHS ? (const void *)in->lengths[n->attr.input.sym]
                        : r == IN_STATE ? (in->state && in->state[n->attr.input.sym] ? in->state[n->attr.input.sym]->data : NULL)
                        : in->memory ? in->memory->data : NULL;
        if (!src) {
            snprintf(err, errlen, "input '%s' of the %s was not given", n->attr.input.name, g->name);
            return -1;
        }
        memcpy(o->data, src, (size_t)numel * 4);
        return 0;
    }
    case OP_PARAM:
        memcpy(o->data, params[n->attr.param], (size_t)numel * 4);
        return 0;
    case OP_CONST:
        for (int64_t k = 0; k < numel; k++)
            ((float *)o->data)[k] = (float)n->attr.value;
        return 0;
    case OP_ARANGE:
        rt_arange(numel, n->attr.offset ? in->sym[n->attr.offset - 1] : 0, o->data);
        return 0;
    case OP_CAUSAL_MASK:
        rt_causal_mask(o->shape.dim[0], o->shape.dim[1], n->attr.offset ? in->sym[n->attr.offset - 1] : 0, o->data);
        return 0;
    case OP_STORE: {
        /* the state, updated in place: the caller's tensor keeps it */
        Tensor *st = in->state ? in->state[n->attr.store.state] : NULL;
        if (!st) {
            snprintf(err, errlen, "state %d of the %s was not given", n->attr.store.state, g->name);
            return -1;
        }
        if (n->attr.store.axis < 0)
            memcpy(st->data, b->data, (size_t)numel * 4);
        else
        {
            const int32_t *at = v[n->in[2]].data;
            int64_t r = rt_store(st->data, &st->shape, n->attr.store.axis, at, n->attr.store.shared, b->data);
            if (r >= 0) {
                snprintf(err, errlen, "row %lld's position %d is outside the %s's state %d of %lld positions",
                         (long long)r, at[r], g->name, n->attr.store.state,
                         (long long)st->shape.dim[n->attr.store.axis]);
                return -1;
            }
        }
        memcpy(o->data, st->data, (size_t)numel * 4);
        return 0;
    }
    case OP_PAD_MASK:
        rt_pad_mask(a->data, o->shape.dim[0], o->shape.dim[o->shape.rank - 1], o->data);
        return 0;
    case OP_GATHER: {
        int64_t bad;
        if (rt_gather(a->data, a->shape.dim[0], a->shape.dim[1], b->data,
                      rt_numel(&b->shape), o->data, &bad) == 0)
            return 0;
        snprintf(err, errlen, "token id %d at position %lld is outside the table of %lld rows",
                 ((const int32_t *)b->data)[bad], (long long)bad, (long long)a->shape.dim[0]);
        return -1;
    }
    case OP_MATMUL:
    case OP_LINEAR: {
        Tensor aq = *a;   /* int8 activations (attr.mm.a8): a's rows as the compiled products read them */
        if (n->attr.mm.a8) {
            int64_t K = a->shape.rank ? a->shape.dim[a->shape.rank - 1] : 1, all = rt_numel(&a->shape);
            if (!(aq.data = malloc((size_t)(all ? all : 1) * 4))) {
                snprintf(err, errlen, "out of memory for a tensor of %lld elements", (long long)all);
                return -1;
            }
            rt_quantize_rows(a->data, K ? all / K : 0, K, n->attr.mm.a8, aq.data);
            a = &aq;
        }
        int rc = 0;
        if (n->op == OP_MATMUL && (n->attr.mm.heads || n->attr.mm.at))
            rc = matmul_views(n, a, b, o, err, errlen);
        else if (n->op == OP_LINEAR)
            rt_linear(a->data, &a->shape, b->data, &b->shape, v[n->in[2]].data, n->attr.mm.relu, o->data, &o->shape);
        else if (n->attr.mm.bt)
            rc = matmul_bt(a, b, o, err, errlen);
        else
            rt_matmul(a->data, &a->shape, b->data, &b->shape, o->data, &o->shape);
        if (n->attr.mm.a8)
            free(aq.data);
        return rc;
    }
    case OP_ATTENTION: {
        const Tensor *vv = &v[n->in[2]], *mk = &v[n->in[3]];
        rt_attention(a->data, &a->shape, b->data, &b->shape, vv->data, &vv->shape, mk->data, &mk->shape,
                     n->attr.attn.scale, n->attr.attn.div, o->data, &o->shape);
        return 0;
    }
    case OP_LAYER_NORM: {
        const Tensor *r = &v[n->in[1]];
        int64_t d = o->shape.rank ? o->shape.dim[o->shape.rank - 1] : 1;
        rt_layer_norm(a->data, r->data, rt_numel(&r->shape) == numel, v[n->in[2]].data, v[n->in[3]].data,
                      d ? numel / d : 0, d, n->attr.eps, o->data);
        return 0;
    }
    case OP_MAP:
        return exec_map(n, v, o, err, errlen);
    case OP_DROPOUT:
        rt_dropout(a->data, numel, n->attr.drop.p, (uint64_t)in->sym[SYM_SEED], n->attr.drop.salt, o->data);
        return 0;
    case OP_XENT:
    case OP_XENT_GRAD: {
        int64_t V = a->shape.rank ? a->shape.dim[a->shape.rank - 1] : 1;
        int64_t rows = rt_numel(&b->shape);
        if (n->op == OP_XENT)
            rt_xent(a->data, rows, V, b->data, n->attr.xent.eps, o->data);
        else
            rt_xent_grad(a->data, rows, V, b->data, n->attr.xent.eps, o->data);
        return 0;
    }
    case OP_MATMUL_TN:
        rt_matmul_tn(a->data, b->data, o->shape.dim[0] ? rt_numel(&a->shape) / o->shape.dim[0] : 0, o->shape.dim[0],
                     o->shape.dim[1], o->data);
        return 0;
    case OP_SCATTER_ADD:
        rt_scatter_add(a->data, b->data, rt_numel(&b->shape), o->shape.dim[0], o->shape.dim[1], o->data);
        return 0;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_POW: case OP_GE:
        rt_binary(n->op, a->data, &a->shape, b->data, &b->shape, o->data, &o->shape);
        return 0;
    case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
    case OP_TANH: case OP_ERF: case OP_SIN: case OP_COS: case OP_FLOOR: case OP_ABS:
        rt_unary(n->op, a->data, numel, o->data);
        return 0;
    case OP_SUM: case OP_MAX: case OP_MEAN:
        rt_reduce(n->op, a->data, &a->shape, n->attr.axis, o->data);
        return 0;
    case OP_RESHAPE:
        memcpy(o->data, a->data, (size_t)numel * 4);
        return 0;
    case OP_TRANSPOSE:
        rt_transpose(a->data, &a->shape, n->attr.perm, o->data);
        return 0;
    case OP_COUNT:
        break;
    }
    (void)m;
    snprintf(err, errlen, "internal error: node %d has no kernel", i);
    return -1;
}

/* Free each value after its last use; keep the output. */
static int *last_uses(const Graph *g)
{
    int *last = malloc(sizeof(int) * (size_t)(g->n ? g->n : 1));
    if (!last)
        return NULL;
    for (int i = 0; i < g->n; i++) {
        last[i] = i;
        for (int k = 0; k < op_info[g->nodes[i].op].arity; k++)
            last[g->nodes[i].in[k]] = i;
    }
    return last;
}

/* Run g; keep all values in `all` if given, else only the output. */
static int run(const Model *m, const Graph *g, float *const *params,
               const InterpInputs *in, Tensor *out, Tensor *all, char *err, size_t errlen)
{
    Tensor *v = all ? all : calloc((size_t)(g->n ? g->n : 1), sizeof *v);
    int *last = last_uses(g);
    int rc = 0;
    if (!v || !last) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    for (int i = 0; i < g->n && rc == 0; i++) {
        const Node *n = &g->nodes[i];
        v[i].shape = concrete(&n->shape, in->sym);
        v[i].dtype = n->dtype;
        int64_t numel = rt_numel(&v[i].shape);
        v[i].data = malloc((size_t)(numel ? numel : 1) * 4);
        if (!v[i].data) {
            snprintf(err, errlen, "out of memory for a tensor of %lld elements", (long long)numel);
            rc = -1;
            break;
        }
        rc = exec_node(m, g, i, params, in, v, err, errlen);
        for (int k = 0; k < op_info[n->op].arity; k++) {
            int src = n->in[k];
            if (!all && last[src] == i && src != g->output)
                tensor_free(&v[src]);
        }
    }
    if (all) {
        free(last);
        return rc;
    }
    if (rc == 0) {
        *out = v[g->output];
        v[g->output].data = NULL;
    }
    for (int i = 0; v && i < g->n; i++)
        tensor_free(&v[i]);
    free(v);
    free(last);
    return rc;
}

int interp_run(const Model *m, const Graph *g, float *const *params,
               const InterpInputs *in, Tensor *out, char *err, size_t errlen)
{
    return run(m, g, params, in, out, NULL, err, errlen);
}

int interp_run_all(const Model *m, const Graph *g, float *const *params,
                   const InterpInputs *in, Tensor *all, char *err, size_t errlen)
{
    return run(m, g, params, in, NULL, all, err, errlen);
}
