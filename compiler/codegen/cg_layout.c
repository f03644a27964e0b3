/* cg_layout.c - kernels that move or make data: transpose, reshape copies,
 * constants and aranges, masks, state stores and gather. */
#include "cg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* out index (i0..ir) reads in[sum i_k * instride[perm[k]]]; the parallel
 * loop runs over out's rows. */
void emit_transpose(CG *c, const Node *n, const Node *na)
{
    int r = n->shape.rank;
    LLVMValueRef ist[MAX_RANK] = { 0 }, dims[MAX_RANK] = { 0 }, idx[MAX_RANK] = { 0 }, s = i64c(c, 1);
    for (int i = r - 1; i >= 0; i--) {
        ist[i] = s;
        s = mul(c, s, dim_val(c, na->shape.d[i]));
    }
    for (int i = 0; i < r; i++)
        dims[i] = dim_val(c, n->shape.d[i]);
    Loop lp = loop_par(c);
    unflatten(c, lp.iv, dims, r - 1, idx);
    LLVMValueRef oa = i64c(c, 0), oo = mul(c, lp.iv, dims[r - 1]);
    for (int i = 0; i < r - 1; i++)
        oa = add(c, oa, mul(c, idx[i], ist[n->attr.perm[i]]));
    Loop li = loop_begin(c, dims[r - 1]);
    store_f(c, load_f(c, c->a, add(c, oa, mul(c, li.iv, ist[n->attr.perm[r - 1]]))), c->out, add(c, oo, li.iv));
    loop_end(c, &li);
    loop_end(c, &lp);
}

/* The number of dims slotted for a node and its inputs: the index of the
 * first extra slot (a position offset, see dims_arg). */
static int nslotted(const Graph *g, const Node *n)
{
    int k = 0;
    const Shape *shapes[MAX_IN + 1] = { &n->shape };
    for (int i = 0; i < op_info[n->op].arity; i++)
        shapes[i + 1] = &g->nodes[n->in[i]].shape;
    for (int s = 0; s < MAX_IN + 1; s++)
        for (int i = 0; shapes[s] && i < shapes[s]->rank; i++)
            k += shapes[s]->d[i].sym >= 0;
    return k;
}

/* A node's position offset (ARANGE, CAUSAL_MASK): 0, or the value
 * of its symbol passed in the first extra dims slot; the value dims_arg
 * puts there for DROPOUT and MATMUL_TN. */
LLVMValueRef offset_val(CG *c, const Graph *g, const Node *n)
{
    bool has = n->op == OP_DROPOUT || n->op == OP_MATMUL_TN || (n->op != OP_STORE && n->attr.offset != 0);
    return has ? dim_val(c, (Dim){ 0, SLOT + nslotted(g, n) }) : i64c(c, 0);
}

/* state with x's row r written at positions[r] along axis (or all of x):
 * one sequential call (the state is small next to the rest of a step).
 * A position outside the axis writes nothing and returns 1 + the row. */
void emit_store(CG *c, const Graph *g, const Node *n, const Node *nb)
{
    (void)g;
    LLVMValueRef all = numel(c, &n->shape);
    LLVMValueRef x = extra_input(c, 0), pos = extra_input(c, 1);
    /* out and state are one buffer in the runtime; copy when they are not */
    LLVMBasicBlockRef copy = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "copy");
    LLVMBasicBlockRef write = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "write");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, c->out, c->a, ""), copy, write);
    LLVMPositionBuilderAtEnd(c->b, copy);
    Loop lc = loop_begin(c, all);
    store_f(c, load_f(c, c->a, lc.iv), c->out, lc.iv);
    loop_end(c, &lc);
    LLVMBuildBr(c->b, write);
    LLVMPositionBuilderAtEnd(c->b, write);
    int axis = n->attr.store.axis;
    if (axis < 0) {
        Loop l = loop_begin(c, all);
        store_f(c, load_f(c, x, l.iv), c->out, l.iv);
        loop_end(c, &l);
        return;
    }
    /* x is [b, ..., 1 (axis), inner...]: o runs over the dims before axis,
     * of which the first is the row */
    LLVMValueRef len = dim_val(c, n->shape.d[axis]);
    LLVMValueRef per_row = dims_product(c, &n->shape, 1, axis);
    LLVMValueRef inner = dims_product(c, &n->shape, axis + 1, n->shape.rank);
    LLVMValueRef outer = LLVMBuildUDiv(c->b, numel(c, &nb->shape), inner, "");
    Loop lo = loop_begin(c, outer);
    LLVMValueRef row = n->attr.store.shared ? i64c(c, 0) : LLVMBuildUDiv(c->b, lo.iv, per_row, "");
    LLVMValueRef at = LLVMBuildSExt(c->b, LLVMBuildLoad2(c->b, c->i32, gep(c, c->i32, pos, row), ""), c->i64, "");
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "bad_position");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "ok");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntUGE, at, len, ""), bad, ok);
    LLVMPositionBuilderAtEnd(c->b, bad);
    LLVMBuildRet(c->b, LLVMBuildTrunc(c->b, add(c, row, i64c(c, 1)), c->i32, ""));
    LLVMPositionBuilderAtEnd(c->b, ok);
    LLVMValueRef src = mul(c, lo.iv, inner), dst = mul(c, add(c, mul(c, lo.iv, len), at), inner);
    Loop li = loop_begin(c, inner);
    store_f(c, load_f(c, x, add(c, src, li.iv)), c->out, add(c, dst, li.iv));
    loop_end(c, &li);
    loop_end(c, &lo);
}

/* Copy (reshape) or fill (const, arange), over the flat index. */
void emit_fill(CG *c, const Graph *g, const Node *n)
{
    LLVMValueRef from = n->op == OP_ARANGE ? offset_val(c, g, n) : NULL;
    Loop l = loop_par(c);
    LLVMValueRef v;
    if (n->op == OP_CONST)
        v = f32c(c, (float)n->attr.value);
    else if (n->op == OP_ARANGE)
        v = LLVMBuildSIToFP(c->b, add(c, from, l.iv), c->f32, "");
    else
        v = load_f(c, c->a, l.iv);
    store_f(c, v, c->out, l.iv);
    loop_end(c, &l);
}

/* causal: out[i, j] = j <= from + i ? 0 : -inf; pad: out[bi, j] = j < len[bi] ? 0 : -inf;
 * the parallel loop runs over i (bi). */
void emit_mask(CG *c, const Graph *g, const Node *n)
{
    bool causal = n->op == OP_CAUSAL_MASK;
    LLVMValueRef cols = dim_val(c, n->shape.d[n->shape.rank - 1]);
    LLVMValueRef from = causal ? offset_val(c, g, n) : NULL;
    Loop li = loop_par(c);
    LLVMValueRef limit;
    if (causal) {
        limit = add(c, from, li.iv);
    } else {
        LLVMValueRef len = LLVMBuildLoad2(c->b, c->i32, gep(c, c->i32, c->a, li.iv), "");
        limit = LLVMBuildSub(c->b, LLVMBuildSExt(c->b, len, c->i64, ""), i64c(c, 1), "");
    }
    Loop lj = loop_begin(c, cols);
    LLVMValueRef keep = LLVMBuildICmp(c->b, LLVMIntSLE, lj.iv, limit, "");
    LLVMValueRef v = LLVMBuildSelect(c->b, keep, f32c(c, 0), f32c(c, -INFINITY), "");
    store_f(c, v, c->out, add(c, mul(c, li.iv, cols), lj.iv));
    loop_end(c, &lj);
    loop_end(c, &li);
}

/* gather: out[r, :] = table[idx[r], :] over rows r; returns 1 + r for a bad id. */
void emit_gather(CG *c, const Node *n, const Node *na)
{
    (void)n;
    LLVMValueRef V = dim_val(c, na->shape.d[0]), D = dim_val(c, na->shape.d[1]);
    Loop lr = loop_par(c);
    LLVMValueRef id = LLVMBuildSExt(c->b, LLVMBuildLoad2(c->b, c->i32, gep(c, c->i32, c->bb, lr.iv), ""), c->i64, "");
    LLVMValueRef bad = LLVMBuildICmp(c->b, LLVMIntUGE, id, V, "");
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "bad_id");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "ok");
    LLVMBuildCondBr(c->b, bad, fail, ok);
    LLVMPositionBuilderAtEnd(c->b, fail);
    LLVMBuildRet(c->b, LLVMBuildTrunc(c->b, add(c, lr.iv, i64c(c, 1)), c->i32, ""));
    LLVMPositionBuilderAtEnd(c->b, ok);
    Loop ld = loop_begin(c, D);
    store_f(c, load_f(c, c->a, add(c, mul(c, id, D), ld.iv)), c->out, add(c, mul(c, lr.iv, D), ld.iv));
    loop_end(c, &ld);
    loop_end(c, &lr);
}
