/* cg_norm.c - reductions (sum, max, mean along one axis) and the fused layer
 * norm (fuse_norm.c). */
#include "cg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* out[(o * len + l) * inner + i] reduced over l, written to out[o * inner + i];
 * the parallel loop is over o. */
static LLVMValueRef reduce_step(CG *c, const Node *n, LLVMValueRef acc, LLVMValueRef x)
{
    if (n->op == OP_MAX)
        return max_nan(c, x, acc);
    LLVMValueRef r = LLVMBuildFAdd(c->b, acc, x, "");
    fast(r);
    return r;
}

/* The parallel loop is over o. Along the last axis (inner 1) a row is
 * summed in a register; otherwise whole rows of `inner` are added to the
 * output row in turn, so both reads and writes are contiguous (a
 * column-wise walk over a [len, inner] block with a large inner, as a
 * bias's gradient has, would miss the cache at every element). */
void emit_reduce(CG *c, const Node *n, const Node *na)
{
    LLVMValueRef len = dim_val(c, na->shape.d[n->attr.axis]);
    LLVMValueRef inner = dims_product(c, &na->shape, n->attr.axis + 1, na->shape.rank);
    LLVMValueRef init = f32c(c, n->op == OP_MAX ? -INFINITY : 0.0);
    Loop lo = loop_par(c);
    LLVMValueRef orow = gep(c, c->f32, c->out, mul(c, lo.iv, inner));
    LLVMValueRef irow = gep(c, c->f32, c->a, mul(c, mul(c, lo.iv, len), inner));
    Loop li = loop_begin(c, inner);
    store_f(c, init, orow, li.iv);
    loop_end(c, &li);
    Loop ll = loop_begin(c, len);
    LLVMValueRef src = gep(c, c->f32, irow, mul(c, ll.iv, inner));
    Loop lj = loop_begin(c, inner);
    store_f(c, reduce_step(c, n, load_f(c, orow, lj.iv), load_f(c, src, lj.iv)), orow, lj.iv);
    loop_end(c, &lj);
    loop_end(c, &ll);
    if (n->op == OP_MEAN) {
        Loop lm = loop_begin(c, inner);
        LLVMValueRef s = load_f(c, orow, lm.iv);
        store_f(c, LLVMBuildFDiv(c->b, s, LLVMBuildSIToFP(c->b, len, c->f32, ""), ""), orow, lm.iv);
        loop_end(c, &lm);
    }
    loop_end(c, &lo);
}

/* Fused layer norm (fuse_norm.c), one row of d per parallel iteration,
 * three passes over the row as the reference (rt_layer_norm): h = x + r
 * into out and its sum; the sum of squares about the mean; the scaled
 * row. The sums reassociate (vector lanes). Inputs: a = x, b = { r,
 * gain, bias }; r is x's shape or one value. */
void emit_layer_norm(CG *c, const Graph *g, const Node *n)
{
    int rk = n->shape.rank;
    bool full = g->nodes[n->in[1]].shape.rank == rk;
    LLVMValueRef d = dim_val(c, n->shape.d[rk - 1]), fd = LLVMBuildSIToFP(c->b, d, c->f32, "");
    LLVMValueRef r = extra_input(c, 0), gain = extra_input(c, 1), bias = extra_input(c, 2);
    LLVMValueRef accp = LLVMBuildAlloca(c->b, c->f32, "sum");
    Loop lr = loop_par(c);
    LLVMValueRef base = mul(c, lr.iv, d);
    LLVMValueRef x = gep(c, c->f32, c->a, base), o = gep(c, c->f32, c->out, base);
    LLVMValueRef rr = full ? gep(c, c->f32, r, base) : r;
    LLVMBuildStore(c->b, f32c(c, 0), accp);
    Loop l1 = loop_begin(c, d);
    LLVMValueRef h = LLVMBuildFAdd(c->b, load_f(c, x, l1.iv), load_f(c, rr, full ? l1.iv : i64c(c, 0)), "");
    store_f(c, h, o, l1.iv);
    LLVMValueRef s1 = LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f32, accp, ""), h, "");
    fast(s1);
    LLVMBuildStore(c->b, s1, accp);
    loop_end(c, &l1);
    LLVMValueRef mu = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, c->f32, accp, ""), fd, "");
    LLVMBuildStore(c->b, f32c(c, 0), accp);
    Loop l2 = loop_begin(c, d);
    LLVMValueRef cc = LLVMBuildFSub(c->b, load_f(c, o, l2.iv), mu, "");
    LLVMValueRef sq = LLVMBuildFMul(c->b, cc, cc, "");
    fast(sq);
    LLVMValueRef s2 = LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f32, accp, ""), sq, "");
    fast(s2);
    LLVMBuildStore(c->b, s2, accp);
    loop_end(c, &l2);
    LLVMValueRef var = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, c->f32, accp, ""), fd, "");
    LLVMValueRef sd = LLVMBuildFAdd(c->b, var, f32c(c, n->attr.eps), "");
    LLVMValueRef rs = LLVMBuildFDiv(c->b, f32c(c, 1.0), intrinsic(c, "llvm.sqrt", &sd, 1), "");
    Loop l3 = loop_begin(c, d);
    LLVMValueRef y = LLVMBuildFMul(c->b, LLVMBuildFSub(c->b, load_f(c, o, l3.iv), mu, ""), rs, "");
    y = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, y, load_f(c, gain, l3.iv), ""), load_f(c, bias, l3.iv), "");
    store_f(c, y, o, l3.iv);
    loop_end(c, &l3);
    loop_end(c, &lr);
}
