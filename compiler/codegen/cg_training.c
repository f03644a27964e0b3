/* cg_training.c - kernels that only training graphs hold (autodiff.c):
 * dropout, label-smoothed cross entropy and its gradient, scatter_add. */
#include "cg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dropout: the extra dims slot holds seed * K_SEED + salt * K_SALT (see
 * dims_arg), so dropouts of one shape and p share a kernel. */
void emit_dropout(CG *c, const Graph *g, const Node *n)
{
    LLVMValueRef base = offset_val(c, g, n);
    float p = n->attr.drop.p, scale = 1.0f / (1.0f - p);
    Loop l = loop_par(c);
    LLVMValueRef z = add(c, base, l.iv);
    z = mul(c, LLVMBuildXor(c->b, z, LLVMBuildLShr(c->b, z, i64c(c, 30), ""), ""), u64c(c, 0xBF58476D1CE4E5B9ull));
    z = mul(c, LLVMBuildXor(c->b, z, LLVMBuildLShr(c->b, z, i64c(c, 27), ""), ""), u64c(c, 0x94D049BB133111EBull));
    z = LLVMBuildXor(c->b, z, LLVMBuildLShr(c->b, z, i64c(c, 31), ""), "");
    LLVMValueRef u = LLVMBuildFMul(c->b, LLVMBuildUIToFP(c->b, LLVMBuildLShr(c->b, z, i64c(c, 40), ""), c->f32, ""),
                                   f32c(c, 1.0 / 16777216.0), "");
    LLVMValueRef x = LLVMBuildFMul(c->b, load_f(c, c->a, l.iv), f32c(c, scale), "");
    LLVMValueRef keep = LLVMBuildFCmp(c->b, LLVMRealOGE, u, f32c(c, p), "");
    store_f(c, LLVMBuildSelect(c->b, keep, x, f32c(c, 0.0), ""), c->out, l.iv);
    loop_end(c, &l);
}

/* A running float in a stack slot (promoted to a register by O3). */
static LLVMValueRef acc_new(CG *c, double init)
{
    LLVMValueRef p = LLVMBuildAlloca(c->b, c->f32, "acc");
    LLVMBuildStore(c->b, f32c(c, init), p);
    return p;
}

static void acc_add(CG *c, LLVMValueRef p, LLVMValueRef x, bool max)
{
    LLVMValueRef old = LLVMBuildLoad2(c->b, c->f32, p, "");
    LLVMValueRef r = max ? max_nan(c, old, x) : LLVMBuildFAdd(c->b, old, x, "");
    if (!max)
        fast(r);
    LLVMBuildStore(c->b, r, p);
}

/* The maximum (max_nan: NaN if any is) of row[0..V), in vectors of VEC:
 * the loop vectoriser leaves a NaN-propagating max reduction scalar.
 * vacc and acc: stack slots made before the kernel's loops. */
static LLVMValueRef row_max(CG *c, LLVMValueRef row, LLVMValueRef V, LLVMValueRef vacc, LLVMValueRef acc)
{
    LLVMTypeRef vt = LLVMVectorType(c->f32, VEC);
    LLVMBuildStore(c->b, const_of(vt, -INFINITY), vacc);
    LLVMValueRef nv = LLVMBuildUDiv(c->b, V, i64c(c, VEC), "");
    Loop lv = loop_begin(c, nv);
    LLVMValueRef x = vload(c, vt, row, mul(c, lv.iv, i64c(c, VEC)));
    LLVMBuildStore(c->b, max_nan(c, LLVMBuildLoad2(c->b, vt, vacc, ""), x), vacc);
    loop_end(c, &lv);
    LLVMValueRef v = LLVMBuildLoad2(c->b, vt, vacc, ""), m = f32c(c, -INFINITY);
    for (int k = 0; k < VEC; k++)
        m = max_nan(c, m, LLVMBuildExtractElement(c->b, v, i64c(c, k), ""));
    LLVMBuildStore(c->b, m, acc);
    Loop lt = loop_from(c, mul(c, nv, i64c(c, VEC)), V);
    acc_add(c, acc, load_f(c, row, lt.iv), true);
    loop_end(c, &lt);
    return LLVMBuildLoad2(c->b, c->f32, acc, "");
}

/* The label-smoothed loss of one row from its maximum mx, its sum of
 * exp(x - mx), its sum of x and its label's logit xy (see rt_xent):
 * -((1 - eps) log p_y + eps / V sum_j log p_j), log p_j = x_j - shift. */
static LLVMValueRef xent_loss(CG *c, double eps, LLVMValueRef V, LLVMValueRef mx, LLVMValueRef sum, LLVMValueRef xsum,
                              LLVMValueRef xy)
{
    LLVMValueRef lse = intrinsic(c, "llvm.log", &sum, 1);
    LLVMValueRef shift = LLVMBuildFAdd(c->b, mx, lse, "");
    LLVMValueRef Vf = LLVMBuildSIToFP(c->b, V, c->f32, "");
    LLVMValueRef lpy = LLVMBuildFSub(c->b, xy, shift, "");
    LLVMValueRef slp = LLVMBuildFSub(c->b, xsum, LLVMBuildFMul(c->b, Vf, shift, ""), "");
    return LLVMBuildFNeg(c->b, LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, f32c(c, 1.0 - eps), lpy, ""),
                                             LLVMBuildFMul(c->b, LLVMBuildFDiv(c->b, f32c(c, eps), Vf, ""), slp, ""), ""),
                         "");
}

/* xent, xent_grad (see rt_xent): the parallel loop runs over rows; per
 * row the maximum, then the sum of exp(x - max) (and of x, for the loss);
 * xent_grad then scales the exps it kept by 1 / sum. A xent_grad with a
 * peer (chunk_output.c) also writes the loss of each row, into its second
 * extra input (its labels are the first): one exp per logit for both, the
 * two kernels' costliest part. */
void emit_xent(CG *c, const Node *n, const Node *na)
{
    LLVMValueRef V = dim_val(c, na->shape.d[na->shape.rank - 1]);
    double eps = n->attr.xent.eps;
    bool grad = n->op == OP_XENT_GRAD, loss = !grad || n->attr.xent.peer;
    LLVMValueRef labels = grad && loss ? extra_input(c, 0) : c->bb;
    LLVMValueRef lossp = !grad ? c->out : loss ? extra_input(c, 1) : NULL;
    LLVMValueRef mxp = acc_new(c, -INFINITY), sp = acc_new(c, 0), xsp = acc_new(c, 0);
    LLVMValueRef vmx = LLVMBuildAlloca(c->b, LLVMVectorType(c->f32, VEC), "vmax");
    Loop lr = loop_par(c);
    LLVMValueRef row = gep(c, c->f32, c->a, mul(c, lr.iv, V));
    LLVMValueRef y = LLVMBuildSExt(c->b, LLVMBuildLoad2(c->b, c->i32, gep(c, c->i32, labels, lr.iv), ""), c->i64, "");
    LLVMValueRef valid = LLVMBuildICmp(c->b, LLVMIntULT, y, V, "");   /* 0 <= y < V */
    /* the label's logit, read before the output row (maybe the same
     * memory) is written */
    LLVMValueRef xy = loss ? load_f(c, row, LLVMBuildSelect(c->b, valid, y, i64c(c, 0), "")) : NULL;
    LLVMBuildStore(c->b, f32c(c, 0), sp);
    LLVMBuildStore(c->b, f32c(c, 0), xsp);
    LLVMValueRef mx = row_max(c, row, V, vmx, mxp);
    /* xent_grad keeps each exp(x - max) in its output row (in L1), so
     * that the pass below scales them instead of taking exp again */
    LLVMValueRef orow = grad ? gep(c, c->f32, c->out, mul(c, lr.iv, V)) : NULL;
    Loop l2 = loop_begin(c, V);
    LLVMValueRef x = load_f(c, row, l2.iv), e = exp_poly(c, LLVMBuildFSub(c->b, x, mx, ""));
    if (orow)
        store_f(c, e, orow, l2.iv);
    if (loss)
        acc_add(c, xsp, x, false);
    acc_add(c, sp, e, false);
    loop_end(c, &l2);
    LLVMValueRef sum = LLVMBuildLoad2(c->b, c->f32, sp, "");
    if (loss) {
        LLVMValueRef l = xent_loss(c, eps, V, mx, sum, LLVMBuildLoad2(c->b, c->f32, xsp, ""), xy);
        store_f(c, LLVMBuildSelect(c->b, valid, l, f32c(c, 0), ""), lossp, lr.iv);
    }
    if (grad) {
        LLVMValueRef floor_q = LLVMBuildFDiv(c->b, f32c(c, eps), LLVMBuildSIToFP(c->b, V, c->f32, ""), "");
        LLVMValueRef inv = LLVMBuildFDiv(c->b, f32c(c, 1.0), sum, "");
        Loop l3 = loop_begin(c, V);
        LLVMValueRef p = LLVMBuildFMul(c->b, load_f(c, orow, l3.iv), inv, "");   /* p_j = exp(x_j - max) / sum */
        LLVMValueRef hit = LLVMBuildICmp(c->b, LLVMIntEQ, l3.iv, y, "");
        LLVMValueRef q = LLVMBuildFAdd(c->b, floor_q, LLVMBuildSelect(c->b, hit, f32c(c, 1.0 - eps), f32c(c, 0), ""), "");
        LLVMValueRef gv = LLVMBuildFSub(c->b, p, q, "");
        store_f(c, LLVMBuildSelect(c->b, valid, gv, f32c(c, 0), ""), orow, l3.iv);
        loop_end(c, &l3);
    }
    loop_end(c, &lr);
}

/* scatter_add: iteration j owns columns [16 j, 16 j + 16) of every row
 * of out, so no two threads add into the same place. */
void emit_scatter_add(CG *c, const Node *n, const Node *nb)
{
    LLVMValueRef V = dim_val(c, n->shape.d[0]), D = dim_val(c, n->shape.d[1]);
    LLVMValueRef rows = numel(c, &nb->shape);
    Loop lp = loop_par(c);
    LLVMValueRef c0 = mul(c, lp.iv, i64c(c, SCATTER_COLS));
    LLVMValueRef w = min_i(c, i64c(c, SCATTER_COLS), LLVMBuildSub(c->b, D, c0, ""));
    Loop lv = loop_begin(c, V);
    LLVMValueRef orow = gep(c, c->f32, c->out, add(c, mul(c, lv.iv, D), c0));
    Loop lz = loop_begin(c, w);
    store_f(c, f32c(c, 0), orow, lz.iv);
    loop_end(c, &lz);
    loop_end(c, &lv);
    Loop li = loop_begin(c, rows);
    LLVMValueRef id = LLVMBuildSExt(c->b, LLVMBuildLoad2(c->b, c->i32, gep(c, c->i32, c->bb, li.iv), ""), c->i64, "");
    LLVMBasicBlockRef hit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "in_range");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "next_row");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntULT, id, V, ""), hit, next);
    LLVMPositionBuilderAtEnd(c->b, hit);
    LLVMValueRef dst = gep(c, c->f32, c->out, add(c, mul(c, id, D), c0));
    LLVMValueRef src = gep(c, c->f32, c->a, add(c, mul(c, li.iv, D), c0));
    Loop lk = loop_begin(c, w);
    store_f(c, LLVMBuildFAdd(c->b, load_f(c, dst, lk.iv), load_f(c, src, lk.iv), ""), dst, lk.iv);
    loop_end(c, &lk);
    LLVMBuildBr(c->b, next);
    LLVMPositionBuilderAtEnd(c->b, next);
    loop_end(c, &li);
    loop_end(c, &lp);
}
