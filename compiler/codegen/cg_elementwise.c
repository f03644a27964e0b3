/* cg_elementwise.c - elementwise kernels: unary, binary (broadcasting) and fused
 * maps (fuse_map.c), all from the op table's formula column (ops.h). */
#include "cg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* max with NaN propagation, as the reference's max_nan */
LLVMValueRef max_nan(CG *c, LLVMValueRef x, LLVMValueRef y)
{
    LLVMValueRef xn = LLVMBuildFCmp(c->b, LLVMRealUNO, x, x, "");
    LLVMValueRef yn = LLVMBuildFCmp(c->b, LLVMRealUNO, y, y, "");
    LLVMValueRef m = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, x, y, ""), x, y, "");
    return LLVMBuildSelect(c->b, xn, x, LLVMBuildSelect(c->b, yn, y, m, ""), "");
}

/* The formula column of VAMOS_OPS (ops.h) in LLVM IR: each primitive
 * F_* as instructions, exp and tanh as the polynomials above (what the
 * reference's expf and tanhf round to within the tested tolerance), erf
 * as libm's erff. x and y are floats; y is NULL for unary ops. Other ops return x. */
static LLVMValueRef scalar(CG *c, Op op, LLVMValueRef x, LLVMValueRef y)
{
#define F_ADD(p, q) LLVMBuildFAdd(c->b, p, q, "")
#define F_SUB(p, q) LLVMBuildFSub(c->b, p, q, "")
#define F_MUL(p, q) LLVMBuildFMul(c->b, p, q, "")
#define F_DIV(p, q) LLVMBuildFDiv(c->b, p, q, "")
#define F_MAX_NAN(p, q) max_nan(c, p, q)
#define F_POW(p, q) intrinsic(c, "llvm.pow", (LLVMValueRef[]){ p, q }, 2)
#define F_GE(p, q) LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGE, p, q, ""), f32c(c, 1.0), f32c(c, 0.0), "")
#define F_NEG(p) LLVMBuildFNeg(c->b, p, "")
#define F_ONE f32c(c, 1.0)
#define F_EXP(p) exp_poly(c, p)
#define F_LOG(p) intrinsic(c, "llvm.log", (LLVMValueRef[]){ p }, 1)
#define F_SQRT(p) intrinsic(c, "llvm.sqrt", (LLVMValueRef[]){ p }, 1)
#define F_TANH(p) tanh_poly(c, p)
#define F_ERF(p) libm1(c, "erff", p)
#define F_SIN(p) intrinsic(c, "llvm.sin", (LLVMValueRef[]){ p }, 1)
#define F_COS(p) intrinsic(c, "llvm.cos", (LLVMValueRef[]){ p }, 1)
#define F_FLOOR(p) intrinsic(c, "llvm.floor", (LLVMValueRef[]){ p }, 1)
#define F_ABS(p) intrinsic(c, "llvm.fabs", (LLVMValueRef[]){ p }, 1)
#define NONE x
    switch (op) {
#define X(id, text, oper, arity, kind, attr, by, formula) case OP_##id: return formula;
        VAMOS_OPS(X)
#undef X
    case OP_COUNT:
        break;
    }
    (void)y;
    return x;
#undef F_ADD
#undef F_SUB
#undef F_MUL
#undef F_DIV
#undef F_MAX_NAN
#undef F_POW
#undef F_GE
#undef F_NEG
#undef F_ONE
#undef F_EXP
#undef F_LOG
#undef F_SQRT
#undef F_TANH
#undef F_ERF
#undef F_SIN
#undef F_COS
#undef F_FLOOR
#undef F_ABS
#undef NONE
}

/* Row-major strides of s, as values; broadcast dims of `in` against `out`
 * (aligned right) get stride 0. */
void bcast_strides(CG *c, const Shape *in, const Shape *out, LLVMValueRef *st)
{
    LLVMValueRef s = i64c(c, 1);
    for (int i = out->rank - 1; i >= 0; i--) {
        int k = in->rank - out->rank + i;
        if (k < 0) {
            st[i] = i64c(c, 0);
            continue;
        }
        Dim d = in->d[k];
        bool one = d.sym < 0 && d.n == 1;
        st[i] = one ? i64c(c, 0) : s;
        s = mul(c, s, dim_val(c, d));
    }
}

/* Row index p of a row-major [d0, ..., d(r-1)] as per-dim indices. */
void unflatten(CG *c, LLVMValueRef p, const LLVMValueRef *dims, int r, LLVMValueRef *idx)
{
    for (int i = r - 1; i > 0; i--) {
        idx[i] = LLVMBuildURem(c->b, p, dims[i], "");
        p = LLVMBuildUDiv(c->b, p, dims[i], "");
    }
    if (r > 0)
        idx[0] = p;
}

LLVMValueRef dims_product(CG *c, const Shape *s, int from, int to)
{
    LLVMValueRef n = i64c(c, 1);
    for (int i = from; i < to; i++)
        n = mul(c, n, dim_val(c, s->d[i]));
    return n;
}

/* Input k + 1 of a node with more than two inputs (b is their array). */
LLVMValueRef extra_input(CG *c, int k)
{
    return LLVMBuildLoad2(c->b, c->ptr, gep(c, c->ptr, c->bb, i64c(c, k)), "");
}

/* The value of one element of an elementwise node from its inputs'. */
typedef LLVMValueRef (*ElemBody)(CG *c, const Node *n, const LLVMValueRef *x);

/* out = body(inputs) elementwise, each input (shape ins[k], data ptrs[k])
 * read with broadcast strides: the parallel loop runs over the rows
 * (every dim but the last), the inner loop over the last dim. */
static void emit_rows(CG *c, const Node *n, const Shape *const *ins, const LLVMValueRef *ptrs, int nin, ElemBody body)
{
    int r = n->shape.rank;
    LLVMValueRef st[MAX_IN][MAX_RANK], dims[MAX_RANK], idx[MAX_RANK], off[MAX_IN], x[MAX_IN];
    for (int k = 0; k < nin; k++)
        bcast_strides(c, ins[k], &n->shape, st[k]);
    for (int i = 0; i < r; i++)
        dims[i] = dim_val(c, n->shape.d[i]);
    LLVMValueRef inner = r > 0 ? dims[r - 1] : i64c(c, 1);
    Loop lp = loop_par(c);
    unflatten(c, lp.iv, dims, r - 1, idx);
    LLVMValueRef oo = mul(c, lp.iv, inner);
    for (int k = 0; k < nin; k++) {
        off[k] = i64c(c, 0);
        for (int i = 0; i < r - 1; i++)
            off[k] = add(c, off[k], mul(c, idx[i], st[k][i]));
    }
    Loop li = loop_begin(c, inner);
    for (int k = 0; k < nin; k++)
        x[k] = load_f(c, ptrs[k], r > 0 ? add(c, off[k], mul(c, li.iv, st[k][r - 1])) : off[k]);
    store_f(c, body(c, n, x), c->out, add(c, oo, li.iv));
    loop_end(c, &li);
    loop_end(c, &lp);
}

static LLVMValueRef binary_body(CG *c, const Node *n, const LLVMValueRef *x)
{
    return scalar(c, n->op, x[0], x[1]);
}

/* out = a (op) b, broadcasting. */
void emit_binary(CG *c, const Node *n, const Node *na, const Node *nb)
{
    emit_rows(c, n, (const Shape *const[]){ &na->shape, &nb->shape }, (LLVMValueRef[]){ c->a, c->bb }, 2,
              binary_body);
}

/* A MAP node's program on one element: registers 0..3 its inputs, then
 * one per step. */
static LLVMValueRef map_body(CG *c, const Node *n, const LLVMValueRef *x)
{
    LLVMValueRef reg[4 + MAP_MAX_STEPS];
    for (int k = 0; k < 4; k++)
        reg[k] = k < n->attr.map.nin ? x[k] : NULL;
    for (int s = 0; s < n->attr.map.nstep; s++) {
        const MapStep *st = &n->attr.map.code[s];
        reg[4 + s] = st->op == OP_CONST ? f32c(c, st->value)
                   : scalar(c, st->op, reg[st->a], op_info[st->op].kind == OPK_BINARY ? reg[st->b] : NULL);
    }
    return reg[4 + n->attr.map.nstep - 1];
}

/* A fused elementwise chain (fuse_map.c): a = input 0, b = { inputs 1..3 }. */
void emit_map(CG *c, const Graph *g, const Node *n)
{
    const Shape *ins[MAX_IN];
    LLVMValueRef ptrs[MAX_IN];
    for (int k = 0; k < n->attr.map.nin; k++) {
        ins[k] = &g->nodes[n->in[k]].shape;
        ptrs[k] = k == 0 ? c->a : extra_input(c, k - 1);
    }
    emit_rows(c, n, ins, ptrs, n->attr.map.nin, map_body);
}

/* Elementwise over the flat index. */
void emit_unary(CG *c, const Node *n)
{
    Loop l = loop_par(c);
    store_f(c, scalar(c, n->op, load_f(c, c->a, l.iv), NULL), c->out, l.iv);
    loop_end(c, &l);
}
