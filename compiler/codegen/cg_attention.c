/* cg_attention.c - the fused attention kernel (fuse_attention.c). */
#include "cg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fused attention (fuse_attention.c), QB query rows of a batch entry per parallel
 * iteration, the keys in blocks of BK (the schedule's qb and bk):
 *
 *   1. The block's mask rows go to the score rows (-inf past the last
 *      key). A block whose mask is -inf everywhere (causal masking's
 *      future, padding) is skipped.
 *   2. kt's block is copied to a [D, BK] stack block, zero-padded:
 *      kt's rows are a whole sequence apart (a power of two apart is
 *      common, which makes the cache alias); the copy is read by every
 *      query row. A single query row (a decoder step) reads each key
 *      once: it reads kt's block in place (masked loads past the last
 *      key), without the copy.
 *   3. dots = q rows @ that block, by the matmul's register tiles.
 *   4. Per row, in vectors: the online softmax. A running maximum m, the
 *      running sum l of exp(score - m), and in acc the running sum of
 *      exp(score - m) * v rows; when the maximum grows, l and acc are
 *      scaled by corr = exp(old m - new m). The scores become p.
 *   5. acc = acc * corr + p @ v's block rows (register tiles again).
 *
 * At the end a row is acc / l. So the score matrix never exists: memory
 * is O(QB * (BK + value width)). A skipped block's values are
 * never read, so an inf or NaN value at a masked key does not reach the
 * result as it does through the reference (see rt_attention). A row whose keys are all masked
 * gets 0 / 0 = NaN, as the unfused softmax gives. Inputs: a = q, b = {
 * kt, v, mask } (see emit_call). */
_Static_assert(SCHED_BK_MAX % PW == 0 && SCHED_BK_DEFAULT % PW == 0 && SCHED_BK_STEP % PW == 0, "a key block is whole column tiles");

/* x > y ? x : y (vmaxps). Unlike max_nan, a NaN may be dropped: the
 * softmax still ends NaN, as the reference's does, because a NaN score
 * gives p = exp(NaN - m) = NaN, which reaches l (and a NaN m makes every
 * p NaN). */
static LLVMValueRef max_fast(CG *c, LLVMValueRef x, LLVMValueRef y)
{
    return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, x, y, ""), x, y, "");
}

/* The maximum (max_fast) or the sum of a vector's lanes. */
static LLVMValueRef lanes(CG *c, LLVMValueRef v, bool max)
{
    LLVMValueRef r = LLVMBuildExtractElement(c->b, v, i64c(c, 0), "");
    for (int i = 1; i < VEC; i++) {
        LLVMValueRef e = LLVMBuildExtractElement(c->b, v, i64c(c, i), "");
        r = max ? max_fast(c, r, e) : LLVMBuildFAdd(c->b, r, e, "");
    }
    return r;
}

/* Step 4 for query row `row`: dots in drow, the mask in srow; p goes to
 * srow, and m, l and corr to mp, lp and cp at row. */
static void att_softmax_row(CG *c, const Node *n, LLVMValueRef drow, LLVMValueRef srow, LLVMValueRef row,
                            LLVMValueRef mp, LLVMValueRef lp, LLVMValueRef cp)
{
    LLVMTypeRef vt = LLVMVectorType(c->f32, VEC);
    int BK = c->sched.bk;
    LLVMValueRef scale = const_of(vt, n->attr.attn.scale), vmax = const_of(vt, -INFINITY), s[SCHED_BK_MAX / VEC];
    for (int k = 0; k < BK / VEC; k++) {
        LLVMValueRef d = vload(c, vt, drow, i64c(c, k * VEC));
        d = n->attr.attn.div ? LLVMBuildFDiv(c->b, d, scale, "") : LLVMBuildFMul(c->b, d, scale, "");
        s[k] = LLVMBuildFAdd(c->b, d, vload(c, vt, srow, i64c(c, k * VEC)), "");
        vmax = max_fast(c, vmax, s[k]);
    }
    LLVMValueRef ninf = f32c(c, -INFINITY);
    LLVMValueRef m_old = load_f(c, mp, row), m_new = max_nan(c, m_old, lanes(c, vmax, true));
    /* a row with nothing visible yet keeps m = -inf; exp(x - 0) keeps its
     * p and corr 0 instead of exp(-inf + inf) = NaN */
    LLVMValueRef m_use = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOEQ, m_new, ninf, ""), f32c(c, 0), m_new, "");
    LLVMValueRef corr = exp_poly(c, LLVMBuildFSub(c->b, m_old, m_use, ""));
    store_f(c, corr, cp, row);
    store_f(c, m_new, mp, row);
    LLVMValueRef sum = LLVMConstNull(vt), mv = splat(c, vt, m_use);
    for (int k = 0; k < BK / VEC; k++) {
        LLVMValueRef p = exp_poly(c, LLVMBuildFSub(c->b, s[k], mv, ""));
        vstore(c, p, srow, i64c(c, k * VEC));
        sum = LLVMBuildFAdd(c->b, sum, p, "");
    }
    store_f(c, LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, load_f(c, lp, row), corr, ""), lanes(c, sum, false), ""), lp, row);
}

/* Step 1 for one row: srow = mask[j0 .. j0 + jn) (key stride ks), -inf
 * past jn; *anyp |= 1 if an entry is not -inf. A whole block of
 * contiguous keys (the common case) goes in vectors. */
static void att_mask_row(CG *c, LLVMValueRef mrow, LLVMValueRef ks, LLVMValueRef j0, LLVMValueRef jn,
                         LLVMValueRef srow, LLVMValueRef anyp)
{
    LLVMValueRef ninf = f32c(c, -INFINITY);
    LLVMBasicBlockRef vec = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "mask_vec");
    LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "mask_scalar");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "mask_done");
    LLVMValueRef whole = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, ks, i64c(c, 1), ""),
                                      LLVMBuildICmp(c->b, LLVMIntEQ, jn, i64c(c, c->sched.bk), ""), "");
    LLVMBuildCondBr(c->b, whole, vec, one);
    LLVMPositionBuilderAtEnd(c->b, vec);
    LLVMTypeRef vt = LLVMVectorType(c->f32, VEC), bt = LLVMVectorType(LLVMInt1TypeInContext(c->ctx), VEC);
    LLVMValueRef any = LLVMConstNull(bt), vinf = const_of(vt, -INFINITY);
    for (int k = 0; k < c->sched.bk / VEC; k++) {
        LLVMValueRef mv = vload(c, vt, mrow, add(c, j0, i64c(c, k * VEC)));
        vstore(c, mv, srow, i64c(c, k * VEC));
        any = LLVMBuildOr(c->b, any, LLVMBuildFCmp(c->b, LLVMRealUNE, mv, vinf, ""), "");
    }
    LLVMValueRef bits = LLVMBuildZExt(c->b, LLVMBuildBitCast(c->b, any, LLVMIntTypeInContext(c->ctx, VEC), ""), c->i32, "");
    LLVMBuildStore(c->b, LLVMBuildOr(c->b, LLVMBuildLoad2(c->b, c->i32, anyp, ""), bits, ""), anyp);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, one);
    Loop lm = loop_begin(c, jn);
    LLVMValueRef mv = load_f(c, mrow, mul(c, add(c, j0, lm.iv), ks));
    store_f(c, mv, srow, lm.iv);
    LLVMValueRef vis = LLVMBuildZExt(c->b, LLVMBuildFCmp(c->b, LLVMRealUNE, mv, ninf, ""), c->i32, "");
    LLVMBuildStore(c->b, LLVMBuildOr(c->b, LLVMBuildLoad2(c->b, c->i32, anyp, ""), vis, ""), anyp);
    loop_end(c, &lm);
    Loop lpad = loop_from(c, jn, i64c(c, c->sched.bk));
    store_f(c, ninf, srow, lpad.iv);
    loop_end(c, &lpad);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
}

void emit_attention(CG *c, const Graph *g, const Node *n)
{
    const Node *nq = &g->nodes[n->in[0]], *nk = &g->nodes[n->in[1]], *nv = &g->nodes[n->in[2]];
    const Node *nm = &g->nodes[n->in[3]];
    int r = n->shape.rank, nbat = r - 2;
    LLVMValueRef S = dim_val(c, n->shape.d[r - 2]), E = dim_val(c, n->shape.d[r - 1]);
    LLVMValueRef D = dim_val(c, nq->shape.d[r - 1]), T = dim_val(c, nk->shape.d[r - 1]);
    LLVMValueRef kt = extra_input(c, 0), v = extra_input(c, 1), mask = extra_input(c, 2);
    Shape bq = nq->shape, bk = nk->shape, bv = nv->shape, bo = n->shape, scores = n->shape;
    bq.rank -= 2, bk.rank -= 2, bv.rank -= 2, bo.rank -= 2;
    scores.d[r - 1] = nk->shape.d[r - 1];
    LLVMValueRef sq[MAX_RANK], sk[MAX_RANK], sv[MAX_RANK], sm[MAX_RANK], dims[MAX_RANK], idx[MAX_RANK];
    bcast_strides(c, &bq, &bo, sq);
    bcast_strides(c, &bk, &bo, sk);
    bcast_strides(c, &bv, &bo, sv);
    bcast_strides(c, &nm->shape, &scores, sm);
    for (int i = 0; i < nbat; i++)
        dims[i] = dim_val(c, n->shape.d[i]);
    /* stack, in the entry block: acc and pv [QB][E], scores and dots
     * [QB][BK], the key block [D][BK], and per row m, l and corr */
    int QB = c->sched.qb, RB = c->sched.rb, NBK = c->sched.bk;
    LLVMValueRef QBE = mul(c, i64c(c, QB), E), BK = i64c(c, NBK);
    LLVMValueRef acc = LLVMBuildArrayAlloca(c->b, c->f32, QBE, "acc");
    LLVMValueRef pv = LLVMBuildArrayAlloca(c->b, c->f32, QBE, "pv");
    c->scratch = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, PW + 1), "row");
    LLVMValueRef sc = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, QB * NBK), "sc");
    LLVMValueRef dt = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, QB * NBK), "dots");
    LLVMValueRef kb = LLVMBuildArrayAlloca(c->b, c->f32, mul(c, D, BK), "keys");
    LLVMValueRef mp = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, QB), "m");
    LLVMValueRef lp = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, QB), "l");
    LLVMValueRef cp = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, QB), "corr");
    LLVMValueRef anyp = LLVMBuildAlloca(c->b, c->i32, "visible");
    LLVMValueRef ninf = f32c(c, -INFINITY);

    LLVMValueRef nqb = udiv_up(c, S, i64c(c, QB));
    Loop lq = loop_par(c);
    LLVMValueRef i0 = mul(c, LLVMBuildURem(c->b, lq.iv, nqb, ""), i64c(c, QB));
    LLVMValueRef bi = LLVMBuildUDiv(c->b, lq.iv, nqb, "");
    LLVMValueRef rb = min_i(c, LLVMBuildSub(c->b, S, i0, ""), i64c(c, QB));
    LLVMValueRef groups = udiv_up(c, rb, i64c(c, RB));
    unflatten(c, bi, dims, nbat, idx);
    LLVMValueRef oq = i64c(c, 0), ok = i64c(c, 0), ov = i64c(c, 0), om = mul(c, i0, sm[r - 2]);
    for (int k = 0; k < nbat; k++) {
        oq = add(c, oq, mul(c, idx[k], sq[k]));
        ok = add(c, ok, mul(c, idx[k], sk[k]));
        ov = add(c, ov, mul(c, idx[k], sv[k]));
        om = add(c, om, mul(c, idx[k], sm[k]));
    }
    LLVMValueRef qblk = gep(c, c->f32, c->a, add(c, mul(c, oq, mul(c, S, D)), mul(c, i0, D)));
    LLVMValueRef ktm = gep(c, c->f32, kt, mul(c, ok, mul(c, D, T)));
    LLVMValueRef vm = gep(c, c->f32, v, mul(c, ov, mul(c, T, E)));
    LLVMValueRef mblk = gep(c, c->f32, mask, om);
    LLVMValueRef oblk = gep(c, c->f32, c->out, mul(c, add(c, mul(c, bi, S), i0), E));
    Loop lz = loop_begin(c, mul(c, rb, E));
    store_f(c, f32c(c, 0), acc, lz.iv);
    loop_end(c, &lz);
    Loop lz2 = loop_begin(c, rb);
    store_f(c, ninf, mp, lz2.iv);
    store_f(c, f32c(c, 0), lp, lz2.iv);
    loop_end(c, &lz2);

    Loop lb = loop_begin(c, udiv_up(c, T, BK));
    LLVMValueRef j0 = mul(c, lb.iv, BK);
    LLVMValueRef jn = min_i(c, LLVMBuildSub(c->b, T, j0, ""), BK);
    /* 1. the mask rows; visible: some entry is not -inf */
    LLVMBuildStore(c->b, LLVMConstInt(c->i32, 0, 0), anyp);
    Loop lr = loop_begin(c, rb);
    LLVMValueRef mrow = gep(c, c->f32, mblk, mul(c, lr.iv, sm[r - 2])), srow = gep(c, c->f32, sc, mul(c, lr.iv, BK));
    att_mask_row(c, mrow, sm[r - 1], j0, jn, srow, anyp);
    loop_end(c, &lr);
    LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "att_block");
    LLVMBasicBlockRef skip = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "att_skip");
    LLVMValueRef none = LLVMBuildICmp(c->b, LLVMIntEQ, LLVMBuildLoad2(c->b, c->i32, anyp, ""), LLVMConstInt(c->i32, 0, 0), "");
    LLVMBuildCondBr(c->b, none, skip, work);
    LLVMPositionBuilderAtEnd(c->b, work);
    /* 2-3, one query row (a decoder step): dots = q row @ kt's block read
     * in place, its first jn columns (masked loads), since each key is
     * read once */
    LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "att_one_query");
    LLVMBasicBlockRef many = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "att_many_queries");
    LLVMBasicBlockRef dotted = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "att_dots");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, rb, i64c(c, 1), ""), one, many);
    LLVMPositionBuilderAtEnd(c->b, one);
    for (int t = 0; t < NBK / PW; t++) {
        MMBlock mb = { .a = qblk, .astride = D, .bt = gep(c, c->f32, ktm, add(c, j0, i64c(c, t * PW))), .bstride = T,
                       .out = dt, .ostride = BK, .o0 = i64c(c, t * PW), .row0 = i64c(c, 0), .K = D, .N = BK,
                       .n0 = i64c(c, t * PW), .bn = LLVMBuildSub(c->b, jn, i64c(c, t * PW), "") };
        mm_block(c, &mb, i64c(c, 1), true);
    }
    LLVMBuildBr(c->b, dotted);
    LLVMPositionBuilderAtEnd(c->b, many);
    /* 2. the key block, zero past the last key */
    Loop lk = loop_begin(c, D);
    LLVMValueRef ksrc = gep(c, c->f32, ktm, add(c, mul(c, lk.iv, T), j0)), kdst = gep(c, c->f32, kb, mul(c, lk.iv, BK));
    Loop lc = loop_begin(c, jn);
    store_f(c, load_f(c, ksrc, lc.iv), kdst, lc.iv);
    loop_end(c, &lc);
    Loop lc0 = loop_from(c, jn, BK);
    store_f(c, f32c(c, 0), kdst, lc0.iv);
    loop_end(c, &lc0);
    loop_end(c, &lk);
    /* 3. dots [rb][BK] = q rows @ key block, whole tiles (no edge path) */
    Loop lg = loop_begin(c, groups);
    LLVMValueRef row0 = mul(c, lg.iv, i64c(c, RB));
    for (int t = 0; t < NBK / PW; t++) {
        MMBlock mb = { .a = qblk, .astride = D, .bt = gep(c, c->f32, kb, i64c(c, t * PW)), .bstride = BK,
                       .out = dt, .ostride = BK, .o0 = i64c(c, t * PW), .row0 = row0, .K = D, .N = BK,
                       .n0 = i64c(c, t * PW) };
        mm_block(c, &mb, rb, true);
    }
    loop_end(c, &lg);
    LLVMBuildBr(c->b, dotted);
    LLVMPositionBuilderAtEnd(c->b, dotted);
    /* 4. the online softmax, row by row */
    Loop ls = loop_begin(c, rb);
    att_softmax_row(c, n, gep(c, c->f32, dt, mul(c, ls.iv, BK)), gep(c, c->f32, sc, mul(c, ls.iv, BK)), ls.iv,
                    mp, lp, cp);
    loop_end(c, &ls);
    /* 5. pv [rb][E] = p @ v[j0 .. j0 + jn, :]; acc = acc * corr + pv */
    Loop lg2 = loop_begin(c, groups);
    Loop lt2 = loop_begin(c, udiv_up(c, E, i64c(c, PW)));
    LLVMValueRef e0 = mul(c, lt2.iv, i64c(c, PW));
    MMBlock mp2 = { .a = sc, .astride = BK, .bt = gep(c, c->f32, vm, add(c, mul(c, j0, E), e0)), .bstride = E,
                    .out = pv, .ostride = E, .o0 = e0, .row0 = mul(c, lg2.iv, i64c(c, RB)), .K = jn, .N = E,
                    .n0 = e0 };
    mm_block(c, &mp2, rb, false);
    loop_end(c, &lt2);
    loop_end(c, &lg2);
    Loop la = loop_begin(c, rb);
    LLVMValueRef cr = load_f(c, cp, la.iv), base = mul(c, la.iv, E);
    Loop le = loop_begin(c, E);
    LLVMValueRef at = add(c, base, le.iv);
    store_f(c, LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, load_f(c, acc, at), cr, ""), load_f(c, pv, at), ""), acc, at);
    loop_end(c, &le);
    loop_end(c, &la);
    LLVMBuildBr(c->b, skip);
    LLVMPositionBuilderAtEnd(c->b, skip);
    loop_end(c, &lb);
    Loop lo = loop_begin(c, rb);
    LLVMValueRef l = load_f(c, lp, lo.iv), ob = mul(c, lo.iv, E);
    Loop le2 = loop_begin(c, E);
    store_f(c, LLVMBuildFDiv(c->b, load_f(c, acc, add(c, ob, le2.iv)), l, ""), oblk, add(c, ob, le2.iv));
    loop_end(c, &le2);
    loop_end(c, &lo);
    loop_end(c, &lq);
}
