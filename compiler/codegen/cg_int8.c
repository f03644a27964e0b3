/* cg_int8.c - matmul and linear with int8 weights and int8 activations
 * (attr.mm.a8, pass_quantize): integer dot products.
 *
 * The weight's panels hold, for each group of 4 k, PW columns of 4 int8
 * values (pack.c): one 256-bit load is 8 columns by 4 k. Each lane's 4
 * weights are multiplied by 4 activations of a row, broadcast to every
 * lane, and the 4 products added into the column's int32 sum:
 *   - with VNNI (AVX-512 VNNI or AVX-VNNI), one vpdpbusd: 32 products an
 *     instruction where an f32 FMA does 8;
 *   - with AVX2, vpmaddubsw (pairs of products summed in int16, which
 *     saturates past 32767), vpmaddwd by ones (the pairs summed in int32)
 *     and an add: 3 instructions. The activations then have 7 bits
 *     (a8 = 7, 0..127), so a pair is at most 2 * 127 * 127 = 32258 and
 *     nothing saturates;
 *   - elsewhere, plain integer vector code (correct, not fast; nothing
 *     asks for it but the tests).
 *
 * A row of a is quantized as rt_row_quant and rt_quantize_rows
 * (interp/kernels.c) say, bit for bit, with `bits` = a8. A signed row:
 * q = rint(x * top / largest) in -top..top, top = 2^(bits - 1) - 1,
 * stored as the unsigned byte q + 2^(bits - 1) (both instructions take
 * unsigned activations and signed weights), so a column's sum is
 * sum(q * w) + 2^(bits - 1) * sum(w); pack.c stores sum(w) per column,
 * and that much comes off. A row with no negative value (a relu's
 * output, the feed-forward layer's second product) uses every bit: q in
 * 0..2^bits - 1, nothing to take off. The result is the sum times the
 * row's scale and the column's scale. Every product is at most 255 * 127
 * and K at most A8_MAX_K, so the int32 sums never overflow.
 *
 * A parallel iteration takes one block of rb rows: it quantizes them
 * once into a stack buffer, then runs them over A8_TILES column tiles,
 * so the quantization is paid once per 256 columns. */
#include "cg.h"

#include <float.h>
#include <math.h>
#include <string.h>

static LLVMValueRef x86(CG *c, const char *name, LLVMValueRef *args, int n, LLVMTypeRef ret)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, NULL, 0);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, NULL, 0);
    LLVMTypeRef pt[3];
    LLVMGetParamTypes(fty, pt);   /* vpdpbusd: <8 x i32> in LLVM 19; later LLVMs take bytes */
    LLVMValueRef cast[3];
    for (int i = 0; i < n; i++)
        cast[i] = LLVMBuildBitCast(c->b, args[i], pt[i], "");
    return LLVMBuildBitCast(c->b, LLVMBuildCall2(c->b, fty, f, cast, (unsigned)n, ""), ret, "");
}

/* acc + the 4-by-4 byte dot products of each lane of a (unsigned, of
 * `bits` bits) and w (signed), all <8 x i32>. */
static LLVMValueRef dot4(CG *c, int bits, LLVMValueRef acc, LLVMValueRef a, LLVMValueRef w)
{
    LLVMTypeRef v8 = LLVMVectorType(c->i32, VEC);
    if (c->vnni && bits == 8 && LLVMGetVectorSize(LLVMTypeOf(acc)) == 2 * VEC)   /* a8_width: AVX-512 VNNI */
        return x86(c, "llvm.x86.avx512.vpdpbusd.512", (LLVMValueRef[]){ acc, a, w }, 3, LLVMTypeOf(acc));
    if (c->vnni && bits == 8)
        return x86(c, "llvm.x86.avx512.vpdpbusd.256", (LLVMValueRef[]){ acc, a, w }, 3, v8);
    if (c->avx2 && bits <= 7) {
        LLVMTypeRef h16 = LLVMVectorType(LLVMInt16TypeInContext(c->ctx), 2 * VEC);
        LLVMValueRef pairs = x86(c, "llvm.x86.avx2.pmadd.ub.sw", (LLVMValueRef[]){ a, w }, 2, h16);
        LLVMValueRef ones = const_of(h16, 1);
        LLVMValueRef quads = x86(c, "llvm.x86.avx2.pmadd.wd", (LLVMValueRef[]){ pairs, ones }, 2, v8);
        return LLVMBuildAdd(c->b, acc, quads, "");
    }
    LLVMTypeRef b32 = LLVMVectorType(LLVMInt8TypeInContext(c->ctx), 4 * VEC), w32 = LLVMVectorType(c->i32, 4 * VEC);
    LLVMValueRef pa = LLVMBuildZExt(c->b, LLVMBuildBitCast(c->b, a, b32, ""), w32, "");
    LLVMValueRef pw = LLVMBuildSExt(c->b, LLVMBuildBitCast(c->b, w, b32, ""), w32, "");
    LLVMValueRef prod = LLVMBuildMul(c->b, pa, pw, "");
    for (int kk = 0; kk < 4; kk++) {
        LLVMValueRef lane[VEC];
        for (int l = 0; l < VEC; l++)
            lane[l] = LLVMConstInt(c->i32, (unsigned long long)(4 * l + kk), 0);
        acc = LLVMBuildAdd(c->b, acc,
                           LLVMBuildShuffleVector(c->b, prod, LLVMGetUndef(w32), LLVMConstVector(lane, VEC), ""), "");
    }
    return acc;
}

static LLVMValueRef vintrinsic2(CG *c, const char *name, LLVMValueRef x, LLVMValueRef y)
{
    return intrinsic(c, name, (LLVMValueRef[]){ x, y }, 2);
}

/* A row of a (K floats at arow) as bytes of `bits` bits at q8row (K8 of
 * them): q + 2^(bits - 1) for a signed row, q for an unsigned one (the
 * lanes past K: q = 0); its scale stored at *scale, and at *off the
 * offset whose product with each column's sum(w) comes off its sums
 * (2^(bits - 1), or 0). */
typedef struct RowTemps { LLVMValueRef most, bad, neg; } RowTemps;   /* stack slots, made before the loops */

static RowTemps row_temps(CG *c)
{
    LLVMTypeRef vt = LLVMVectorType(c->f32, VEC), bt = LLVMVectorType(LLVMInt1TypeInContext(c->ctx), VEC);
    return (RowTemps){ LLVMBuildAlloca(c->b, vt, "most"), LLVMBuildAlloca(c->b, bt, "bad"),
                       LLVMBuildAlloca(c->b, bt, "neg") };
}

static void quantize_row(CG *c, int bits, RowTemps t, LLVMValueRef arow, LLVMValueRef K, LLVMValueRef K8,
                         LLVMValueRef q8row, LLVMValueRef scale, LLVMValueRef off)
{
    LLVMTypeRef vt = LLVMVectorType(c->f32, VEC), bt = LLVMVectorType(LLVMInt1TypeInContext(c->ctx), VEC);
    LLVMValueRef chunks = LLVMBuildUDiv(c->b, K8, i64c(c, VEC), "");
    /* pass 1: the largest magnitude, and whether any is a NaN or infinite */
    LLVMValueRef most_p = t.most, bad_p = t.bad;
    LLVMBuildStore(c->b, LLVMConstNull(vt), most_p);
    LLVMBuildStore(c->b, LLVMConstNull(bt), bad_p);
    LLVMBuildStore(c->b, LLVMConstNull(bt), t.neg);
    Loop l1 = loop_begin(c, chunks);
    LLVMValueRef j = mul(c, l1.iv, i64c(c, VEC));
    LLVMValueRef raw = masked_vload(c, vt, arow, j, LLVMBuildSub(c->b, K, j, ""));
    LLVMValueRef below = LLVMBuildFCmp(c->b, LLVMRealOLT, raw, LLVMConstNull(vt), "");
    LLVMBuildStore(c->b, LLVMBuildOr(c->b, LLVMBuildLoad2(c->b, bt, t.neg, ""), below, ""), t.neg);
    LLVMValueRef x = intrinsic(c, "llvm.fabs", (LLVMValueRef[]){ raw }, 1);
    LLVMValueRef most = LLVMBuildLoad2(c->b, vt, most_p, "");
    LLVMBuildStore(c->b, LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, x, most, ""), x, most, ""), most_p);
    LLVMValueRef bad = LLVMBuildFCmp(c->b, LLVMRealUGT, x, const_of(vt, FLT_MAX), "");
    LLVMBuildStore(c->b, LLVMBuildOr(c->b, LLVMBuildLoad2(c->b, bt, bad_p, ""), bad, ""), bad_p);
    loop_end(c, &l1);
    LLVMValueRef mv = LLVMBuildLoad2(c->b, vt, most_p, ""), m = LLVMBuildExtractElement(c->b, mv, i64c(c, 0), "");
    for (int i = 1; i < VEC; i++) {   /* no NaN is in mv: a plain compare and select */
        LLVMValueRef e = LLVMBuildExtractElement(c->b, mv, i64c(c, i), "");
        m = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, e, m, ""), e, m, "");
    }
    LLVMValueRef anybad = intrinsic(c, "llvm.vector.reduce.or", (LLVMValueRef[]){ LLVMBuildLoad2(c->b, bt, bad_p, "") }, 1);
    LLVMValueRef anyneg = intrinsic(c, "llvm.vector.reduce.or", (LLVMValueRef[]){ LLVMBuildLoad2(c->b, bt, t.neg, "") }, 1);
    LLVMValueRef uns = LLVMBuildNot(c->b, LLVMBuildOr(c->b, anybad, anyneg, ""), "");   /* i1: an unsigned row */
    int half = 1 << (bits - 1);
    LLVMValueRef top = LLVMBuildSelect(c->b, uns, f32c(c, 2 * half - 1), f32c(c, half - 1), "");
    LLVMValueRef usable = LLVMBuildAnd(c->b, LLVMBuildNot(c->b, anybad, ""),
                                       LLVMBuildFCmp(c->b, LLVMRealOGT, m, f32c(c, 0), ""), "");
    LLVMValueRef mult = LLVMBuildSelect(c->b, usable, LLVMBuildFDiv(c->b, top, m, ""), f32c(c, 0), "");
    LLVMValueRef s = LLVMBuildSelect(c->b, anybad, f32c(c, NAN), LLVMBuildFDiv(c->b, m, top, ""), "");
    LLVMBuildStore(c->b, s, scale);
    LLVMValueRef offset = LLVMBuildSelect(c->b, uns, LLVMConstInt(c->i32, 0, 0), LLVMConstInt(c->i32, (unsigned)half, 0), "");
    LLVMBuildStore(c->b, offset, off);
    /* pass 2: the bytes */
    LLVMTypeRef iv = LLVMVectorType(c->i32, VEC), i8v = LLVMVectorType(LLVMInt8TypeInContext(c->ctx), VEC);
    LLVMValueRef lo = splat(c, vt, LLVMBuildSelect(c->b, uns, f32c(c, 0), f32c(c, 1 - half), ""));
    LLVMValueRef hi = splat(c, vt, top), shift = splat(c, iv, offset);
    Loop l2 = loop_begin(c, chunks);
    j = mul(c, l2.iv, i64c(c, VEC));
    LLVMValueRef y = LLVMBuildFMul(c->b, masked_vload(c, vt, arow, j, LLVMBuildSub(c->b, K, j, "")), splat(c, vt, mult), "");
    y = intrinsic(c, "llvm.rint", (LLVMValueRef[]){ y }, 1);
    y = vintrinsic2(c, "llvm.maxnum", y, lo);
    y = vintrinsic2(c, "llvm.minnum", y, hi);
    LLVMValueRef q = LLVMBuildAdd(c->b, LLVMBuildFPToSI(c->b, y, iv, ""), shift, "");
    LLVMValueRef st = LLVMBuildStore(c->b, LLVMBuildTrunc(c->b, q, i8v, ""),
                                     gep(c, LLVMInt8TypeInContext(c->ctx), q8row, j));
    LLVMSetAlignment(st, 1);
    loop_end(c, &l2);
}

/* The int32 accumulators' lanes: 16 with AVX-512 VNNI and 8-bit rows (a
 * Zen 5's vector units are 512 bits wide), else 8. */
static int a8_width(const CG *c, int bits) { return c->vnni512 && bits == 8 ? 2 * VEC : VEC; }

/* rb quantized rows (q8 rows of K8 bytes, their scales and offsets) by
 * one column tile: rb x (PW / width) int32 accumulators over the k groups,
 * then each column's sum(w) times the row's offset off, times the row's
 * scale, and the epilogue (the column's scale, bias, relu) as the f32
 * tiles store. With 16 vector registers (AVX2), the tile runs in passes
 * of fewer columns, so that the accumulators, the weights, the broadcast
 * row and AVX2's two products' halves fit; on AVX-512's 32, more than 6
 * rows take two. */
static void a8_tile(CG *c, int bits, const MMBlock *m, int rb, LLVMValueRef q8, LLVMValueRef K8, LLVMValueRef rscale,
                    LLVMValueRef roff, LLVMValueRef sumw, LLVMValueRef K4)
{
    int W = a8_width(c, bits), nvt = PW / W;
    int passes = c->narrow ? (rb * nvt <= 8 ? 1 : rb * 2 <= 8 ? 2 : 4) : (rb * nvt <= 24 ? 1 : 2);
    int nv = nvt / passes;
    LLVMTypeRef iv = LLVMVectorType(c->i32, (unsigned)W), i8 = LLVMInt8TypeInContext(c->ctx);
    LLVMTypeRef vt = LLVMVectorType(c->f32, (unsigned)W);
    for (int pass = 0; pass < passes; pass++) {
        int v0 = pass * nv;
        LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
        LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "g_head");
        LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "g_body");
        LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "g_exit");
        LLVMBuildBr(c->b, head);
        LLVMPositionBuilderAtEnd(c->b, head);
        LLVMValueRef g = LLVMBuildPhi(c->b, c->i64, "g"), zero = i64c(c, 0), vzero = LLVMConstNull(iv);
        LLVMAddIncoming(g, &zero, &pre, 1);
        LLVMValueRef acc[MM_RB_MAX][MM_VECS], nacc[MM_RB_MAX][MM_VECS];
        for (int i = 0; i < rb; i++)
            for (int v = v0; v < v0 + nv; v++) {
                acc[i][v] = LLVMBuildPhi(c->b, iv, "acc");
                LLVMAddIncoming(acc[i][v], &vzero, &pre, 1);
            }
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, g, K4, ""), body, exit);
        LLVMPositionBuilderAtEnd(c->b, body);
        LLVMValueRef w[MM_VECS], grow = mul(c, g, i64c(c, 4 * PW));   /* the group's bytes in the panel */
        for (int v = v0; v < v0 + nv; v++) {
            w[v] = LLVMBuildLoad2(c->b, iv, gep(c, i8, m->bt, add(c, grow, i64c(c, 4 * W * v))), "");
            LLVMSetAlignment(w[v], 4);
        }
        for (int i = 0; i < rb; i++) {
            LLVMValueRef at = add(c, mul(c, i64c(c, i), K8), mul(c, g, i64c(c, 4)));
            LLVMValueRef x = LLVMBuildLoad2(c->b, c->i32, gep(c, i8, q8, at), "");
            LLVMSetAlignment(x, 4);
            LLVMValueRef xs = splat(c, iv, x);
            for (int v = v0; v < v0 + nv; v++)
                nacc[i][v] = dot4(c, bits, acc[i][v], xs, w[v]);
        }
        LLVMValueRef ng = LLVMBuildNSWAdd(c->b, g, i64c(c, 1), "");
        LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
        LLVMAddIncoming(g, &ng, &latch, 1);
        for (int i = 0; i < rb; i++)
            for (int v = v0; v < v0 + nv; v++)
                LLVMAddIncoming(acc[i][v], &nacc[i][v], &latch, 1);
        LLVMBuildBr(c->b, head);
        LLVMPositionBuilderAtEnd(c->b, exit);
        LLVMValueRef out[MM_RB_MAX][MM_VECS];
        for (int i = 0; i < rb; i++) {
            LLVMValueRef sc = splat(c, vt, load_f(c, rscale, i64c(c, i)));
            LLVMValueRef off = splat(c, iv, LLVMBuildLoad2(c->b, c->i32, gep(c, c->i32, roff, i64c(c, i)), ""));
            for (int v = v0; v < v0 + nv; v++) {
                LLVMValueRef sw = LLVMBuildLoad2(c->b, iv, gep(c, c->i32, sumw, add(c, m->n0, i64c(c, v * W))), "");
                LLVMSetAlignment(sw, 4);
                LLVMValueRef exact = LLVMBuildSub(c->b, acc[i][v], LLVMBuildMul(c->b, sw, off, ""), "");
                out[i][v] = LLVMBuildFMul(c->b, LLVMBuildSIToFP(c->b, exact, vt, ""), sc, "");
            }
        }
        mm_store(c, m, rb, v0, nv, out);
    }
}

void emit_matmul_a8(CG *c, const Node *n, const Node *na, const Node *nb, LLVMValueRef bptr, LLVMValueRef bias)
{
    int RB = c->sched.rb, bits = n->attr.mm.a8;
    MMShape s = mm_shape(c, n, na, nb, RB);
    if (n->op == OP_MATMUL && n->attr.mm.bt)   /* y [N, K] is kept first; y^T's panels follow (pack.c) */
        bptr = gep(c, c->f32, bptr,
                   LLVMBuildAnd(c->b, add(c, numel(c, &nb->shape), i64c(c, 15)), i64c(c, ~(int64_t)15), ""));
    LLVMValueRef cols = mul(c, s.ntiles, i64c(c, PW));
    LLVMValueRef scale = bptr, sumw = gep(c, c->f32, bptr, cols);   /* sumw: int32 */
    LLVMValueRef panels = gep(c, c->f32, bptr, mul(c, cols, i64c(c, 2)));
    LLVMValueRef K4 = udiv_up(c, s.K, i64c(c, 4)), K8 = mul(c, udiv_up(c, s.K, i64c(c, VEC)), i64c(c, VEC));
    LLVMTypeRef i8 = LLVMInt8TypeInContext(c->ctx);
    c->scratch = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, PW + 1), "row");
    LLVMSetAlignment(c->scratch, 32);
    LLVMValueRef q8 = LLVMBuildArrayAlloca(c->b, i8, mul(c, i64c(c, RB), K8), "q8rows");
    LLVMSetAlignment(q8, 64);
    LLVMValueRef rscale = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, RB), "rowscale");
    LLVMValueRef roff = LLVMBuildArrayAlloca(c->b, c->i32, i64c(c, RB), "rowoffset");
    RowTemps temps = row_temps(c);
    /* the weight is 2-D: a's batch dims, if any, fold into its rows */
    LLVMValueRef M = mul(c, s.M, s.batches), mblocks = udiv_up(c, M, i64c(c, RB));   /* x a8_groups: extent() */
    Loop lp = loop_par(c);
    LLVMValueRef mb = LLVMBuildURem(c->b, lp.iv, mblocks, ""), grp = LLVMBuildUDiv(c->b, lp.iv, mblocks, "");
    LLVMValueRef row0 = mul(c, mb, i64c(c, RB)), rows = min_i(c, LLVMBuildSub(c->b, M, row0, ""), i64c(c, RB));
    Loop lr = loop_begin(c, rows);
    quantize_row(c, bits, temps, gep(c, c->f32, c->a, mul(c, add(c, row0, lr.iv), s.K)), s.K, K8, gep(c, i8, q8, mul(c, lr.iv, K8)),
                 gep(c, c->f32, rscale, lr.iv), gep(c, c->i32, roff, lr.iv));
    loop_end(c, &lr);
    LLVMValueRef t0 = mul(c, grp, i64c(c, A8_TILES));
    Loop lt = loop_from(c, t0, min_i(c, s.ntiles, add(c, t0, i64c(c, A8_TILES))));
    MMBlock m = { .a = c->a, .astride = s.K, .out = c->out, .ostride = s.N, .row0 = row0, .K = s.K, .N = s.N,
                  .n0 = mul(c, lt.iv, i64c(c, PW)), .bias = bias, .relu = n->attr.mm.relu, .q8 = true,
                  .scale = scale, .bstride = i64c(c, PW) };
    m.o0 = m.n0;
    m.bt = gep(c, i8, panels, mul(c, lt.iv, mul(c, K4, i64c(c, 4 * PW))));
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "a8_done");
    LLVMValueRef sw = LLVMBuildSwitch(c->b, rows, done, (unsigned)RB);
    for (int rb = 1; rb <= RB; rb++) {
        LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "a8_rows");
        LLVMAddCase(sw, i64c(c, rb), bb);
        LLVMPositionBuilderAtEnd(c->b, bb);
        a8_tile(c, bits, &m, rb, q8, K8, rscale, roff, sumw, K4);
        LLVMBuildBr(c->b, done);
    }
    LLVMPositionBuilderAtEnd(c->b, done);
    loop_end(c, &lt);
    loop_end(c, &lp);
}
