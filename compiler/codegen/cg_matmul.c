/* cg_matmul.c - matmul and linear kernels: register tiles over packed weight
 * panels (pack.c) or over panels packed on the fly, and matmul_tn, the
 * weight gradient of training. */
#include "cg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

MMShape mm_shape(CG *c, const Node *n, const Node *na, const Node *nb, int rb)
{
    int r = n->shape.rank;
    MMShape s = { .flat = nb->shape.rank == 2 && na->shape.rank == r };
    s.N = dim_val(c, n->shape.d[r - 1]);
    s.K = dim_val(c, na->shape.d[na->shape.rank - 1]);
    s.M = s.flat ? dims_product(c, &n->shape, 0, r - 1) : dim_val(c, n->shape.d[r - 2]);
    s.batches = s.flat ? i64c(c, 1) : dims_product(c, &n->shape, 0, r - 2);
    s.mblocks = udiv_up(c, s.M, i64c(c, rb));
    s.ntiles = udiv_up(c, s.N, i64c(c, PW));
    return s;
}

/* A result (f32 or a vector) of columns n0 + j.. on its way out: the
 * LINEAR epilogue, or nothing. */
static LLVMValueRef epilogue(CG *c, const MMBlock *m, LLVMValueRef x, LLVMValueRef j)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef at = add(c, m->n0, j);
    if (m->q8)
        x = LLVMBuildFMul(c->b, x, LLVMGetTypeKind(t) == LLVMVectorTypeKind ? vload(c, t, m->scale, at)
                                                                            : load_f(c, m->scale, at), "");
    if (!m->bias)
        return x;
    x = LLVMBuildFAdd(c->b, x, LLVMGetTypeKind(t) == LLVMVectorTypeKind ? vload(c, t, m->bias, at)
                                                                         : load_f(c, m->bias, at), "");
    return m->relu ? max_nan(c, x, const_of(t, 0.0)) : x;
}

/* A result x (f32 or a vector) for out at base[idx], plus what is there
 * when m->acc_in holds (matmul_tn's chunks of rows, a k block after the
 * first); the epilogue comes after, on the whole sum. */
static LLVMValueRef with_old(CG *c, const MMBlock *m, LLVMValueRef x, LLVMValueRef base, LLVMValueRef idx)
{
    if (!m->acc_in)
        return x;
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef old = LLVMGetTypeKind(t) == LLVMVectorTypeKind ? vload(c, t, base, idx) : load_f(c, base, idx);
    return LLVMBuildFAdd(c->b, x, LLVMBuildSelect(c->b, m->acc_in, old, const_of(t, 0.0), ""), "");
}

/* Store a tile's results acc[i][v] (rows 0..rb-1, vectors v0..v0+nv-1,
 * of the accumulators' width)
 * through the epilogue: whole vectors for a full tile, else through a
 * stack row (c->scratch), only the columns below N. */
void mm_store(CG *c, const MMBlock *m, int rb, int v0, int nv, LLVMValueRef acc[][MM_VECS])
{
    int w = (int)LLVMGetVectorSize(LLVMTypeOf(acc[0][v0]));
    LLVMValueRef left = LLVMBuildSub(c->b, m->N, m->n0, "");
    LLVMValueRef whole = LLVMBuildICmp(c->b, LLVMIntSGE, left, i64c(c, PW), "");
    LLVMBasicBlockRef full = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "store_full");
    LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "store_part");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "stored");
    LLVMBuildCondBr(c->b, whole, full, part);
    LLVMPositionBuilderAtEnd(c->b, full);
    for (int i = 0; i < rb; i++) {
        LLVMValueRef o = add(c, mul(c, add(c, m->row0, i64c(c, i)), m->ostride), m->o0);
        for (int v = v0; v < v0 + nv; v++)
            vstore(c, epilogue(c, m, with_old(c, m, acc[i][v], m->out, add(c, o, i64c(c, v * w))), i64c(c, v * w)),
                   m->out, add(c, o, i64c(c, v * w)));
    }
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, part);
    LLVMValueRef tmp = c->scratch;
    /* this pass's columns that exist: [v0 * w, min(left, (v0 + nv) * w)) */
    LLVMValueRef j0 = i64c(c, v0 * w), j1 = min_i(c, left, i64c(c, (v0 + nv) * w));
    for (int i = 0; i < rb; i++) {
        for (int v = v0; v < v0 + nv; v++)
            vstore(c, acc[i][v], tmp, i64c(c, v * w));
        LLVMValueRef o = add(c, mul(c, add(c, m->row0, i64c(c, i)), m->ostride), m->o0);
        Loop lj = loop_from(c, j0, j1);
        store_f(c, epilogue(c, m, with_old(c, m, load_f(c, tmp, lj.iv), m->out, add(c, o, lj.iv)), lj.iv), m->out,
                add(c, o, lj.iv));
        loop_end(c, &lj);
    }
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
}

/* rb rows by a whole tile (PW columns of b exist: a full tile, or a
 * zero-padded panel): rb x (PW / w) vector accumulators through the k
 * loop, vectors of w = 16 floats with AVX-512 (two a tile: a Zen 5's FMA
 * units are 512 bits wide) and 8 with AVX2. The columns at or past N
 * (padding) are not stored. With 16 vector registers (AVX2) and 3 or more
 * rows, rb x 4 accumulators do not fit: the tile is done in two passes
 * over k of 2 vectors each (rb x 16 columns; 6 rows: 12 accumulators, 2 b
 * vectors and the broadcast), each reading its half of the panel's rows
 * (one cache line). */
static void mm_tile(CG *c, const MMBlock *m, int rb)
{
    int w = c->narrow ? VEC : 2 * VEC, nvt = PW / w;
    int passes = c->narrow && rb >= 3 ? 2 : 1, nv = nvt / passes;
    LLVMTypeRef vt = LLVMVectorType(c->f32, (unsigned)w);
    LLVMValueRef arow[MM_RB_MAX];
    for (int i = 0; i < rb; i++)
        arow[i] = gep(c, c->f32, m->a, mul(c, add(c, m->row0, i64c(c, i)), m->astride));
    unsigned id = LLVMLookupIntrinsicID("llvm.fmuladd", 12);
    LLVMValueRef fma = LLVMGetIntrinsicDeclaration(c->mod, id, &vt, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, &vt, 1);
    for (int pass = 0; pass < passes; pass++) {
        int v0 = pass * nv;
        LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
        LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "k_head");
        LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "k_body");
        LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "k_exit");
        LLVMBuildBr(c->b, head);
        LLVMPositionBuilderAtEnd(c->b, head);
        LLVMValueRef k = LLVMBuildPhi(c->b, c->i64, "k"), zero = i64c(c, 0);
        LLVMAddIncoming(k, &zero, &pre, 1);
        LLVMValueRef acc[MM_RB_MAX][MM_VECS], vzero = LLVMConstNull(vt);
        for (int i = 0; i < rb; i++)
            for (int v = v0; v < v0 + nv; v++) {
                acc[i][v] = LLVMBuildPhi(c->b, vt, "acc");
                LLVMAddIncoming(acc[i][v], &vzero, &pre, 1);
            }
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, k, m->K, ""), body, exit);
        LLVMPositionBuilderAtEnd(c->b, body);
        LLVMValueRef brow = mul(c, k, m->bstride), bv[MM_VECS];
        for (int v = v0; v < v0 + nv; v++)
            if (m->q8) {   /* 8 int8 weights, widened exactly to f32: no integer sums, nothing saturates */
                LLVMTypeRef i8 = LLVMInt8TypeInContext(c->ctx), v8 = LLVMVectorType(i8, (unsigned)w);
                LLVMValueRef l = LLVMBuildLoad2(c->b, v8, gep(c, i8, m->bt, add(c, brow, i64c(c, v * w))), "");
                LLVMSetAlignment(l, 1);
                bv[v] = LLVMBuildSIToFP(c->b, l, vt, "");
            } else if (m->bn) {
                bv[v] = masked_vload(c, vt, m->bt, add(c, brow, i64c(c, v * w)),
                                     LLVMBuildSub(c->b, m->bn, i64c(c, v * w), ""));
            } else {
                bv[v] = vload(c, vt, m->bt, add(c, brow, i64c(c, v * w)));
            }
        LLVMValueRef nk = LLVMBuildNSWAdd(c->b, k, i64c(c, 1), "");
        LLVMValueRef nacc[MM_RB_MAX][MM_VECS];
        for (int i = 0; i < rb; i++) {
            LLVMValueRef s = splat(c, vt, load_f(c, arow[i], m->akstride ? mul(c, k, m->akstride) : k));
            for (int v = v0; v < v0 + nv; v++)
                nacc[i][v] = LLVMBuildCall2(c->b, fty, fma, (LLVMValueRef[]){ s, bv[v], acc[i][v] }, 3, "");
        }
        LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
        LLVMAddIncoming(k, &nk, &latch, 1);
        for (int i = 0; i < rb; i++)
            for (int v = v0; v < v0 + nv; v++)
                LLVMAddIncoming(acc[i][v], &nacc[i][v], &latch, 1);
        LLVMBuildBr(c->b, head);
        LLVMPositionBuilderAtEnd(c->b, exit);

        mm_store(c, m, rb, v0, nv, acc);
    }
}

/* The last, partial tile of an unpacked b (fewer than PW columns exist):
 * rb rows, scalar loops (the sum in scratch[PW]). */
static void mm_edge(CG *c, const MMBlock *m, int rb)
{
    LLVMValueRef left = LLVMBuildSub(c->b, m->N, m->n0, "");
    for (int i = 0; i < rb; i++) {
        LLVMValueRef row = add(c, m->row0, i64c(c, i));
        LLVMValueRef arow = gep(c, c->f32, m->a, mul(c, row, m->astride));
        LLVMValueRef orow = gep(c, c->f32, m->out, add(c, mul(c, row, m->ostride), m->o0));
        Loop lj = loop_begin(c, left);
        LLVMValueRef acc = gep(c, c->f32, c->scratch, i64c(c, PW));
        LLVMBuildStore(c->b, f32c(c, 0), acc);
        Loop lk = loop_begin(c, m->K);
        LLVMValueRef prod = LLVMBuildFMul(c->b, load_f(c, arow, m->akstride ? mul(c, lk.iv, m->akstride) : lk.iv),
                                          load_f(c, m->bt, add(c, mul(c, lk.iv, m->bstride), lj.iv)), "");
        fast(prod);
        LLVMValueRef sum = LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f32, acc, ""), prod, "");
        fast(sum);
        LLVMBuildStore(c->b, sum, acc);
        loop_end(c, &lk);
        store_f(c, epilogue(c, m, with_old(c, m, LLVMBuildLoad2(c->b, c->f32, acc, ""), orow, lj.iv), lj.iv), orow, lj.iv);
        loop_end(c, &lj);
    }
}

/* One block: rows row0 .. min(row0 + rb, M) - 1, one of rb unrolled row
 * counts; the edge tile of an unpacked b takes mm_edge. */
void mm_block(CG *c, const MMBlock *m, LLVMValueRef M, bool packed)
{
    int RB = c->sched.rb;
    LLVMValueRef rows = min_i(c, LLVMBuildSub(c->b, M, m->row0, ""), i64c(c, RB));
    LLVMValueRef edge = packed ? LLVMConstInt(LLVMInt1TypeInContext(c->ctx), 0, 0)
                               : LLVMBuildICmp(c->b, LLVMIntSLT, LLVMBuildSub(c->b, m->N, m->n0, ""), i64c(c, PW), "");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "block_done");
    LLVMBasicBlockRef tiles = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tiles");
    LLVMBasicBlockRef edges = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "edges");
    LLVMBuildCondBr(c->b, edge, edges, tiles);
    LLVMBasicBlockRef from[2] = { tiles, edges };
    for (int e = 0; e < 2; e++) {
        LLVMPositionBuilderAtEnd(c->b, from[e]);
        LLVMValueRef sw = LLVMBuildSwitch(c->b, rows, done, (unsigned)RB);
        for (int rb = 1; rb <= RB; rb++) {
            LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "rows");
            LLVMAddCase(sw, i64c(c, rb), bb);
            LLVMPositionBuilderAtEnd(c->b, bb);
            if (e == 0)
                mm_tile(c, m, rb);
            else
                mm_edge(c, m, rb);
            LLVMBuildBr(c->b, done);
        }
    }
    LLVMPositionBuilderAtEnd(c->b, done);
}

/* A matmul's batch dims (none when they fold into the rows): their sizes
 * and a's and b's strides over them (broadcast dims: 0). */
typedef struct MMBatch {
    int n;
    LLVMValueRef dims[MAX_RANK], sa[MAX_RANK], sb[MAX_RANK];
} MMBatch;

static MMBatch mm_batch(CG *c, const Node *n, const Node *na, const Node *nb, const MMShape *s)
{
    MMBatch bat = { .n = s->flat ? 0 : n->shape.rank - 2 };
    Shape ba = na->shape, bb = nb->shape, bo = n->shape;
    ba.rank -= 2, bb.rank -= 2, bo.rank -= 2;
    bcast_strides(c, &ba, &bo, bat.sa);
    bcast_strides(c, &bb, &bo, bat.sb);
    for (int i = 0; i < bat.n; i++)
        bat.dims[i] = dim_val(c, n->shape.d[i]);
    return bat;
}

/* Batch entry bi's offsets in a's and b's batch strides, and its index
 * over the batch dims in idx. */
static void mm_batch_at(CG *c, const MMBatch *bat, LLVMValueRef bi, LLVMValueRef *oa, LLVMValueRef *ob, LLVMValueRef *idx)
{
    unflatten(c, bi, bat->dims, bat->n, idx);
    *oa = i64c(c, 0), *ob = i64c(c, 0);
    for (int i = 0; i < bat->n; i++) {
        *oa = add(c, *oa, mul(c, idx[i], bat->sa[i]));
        *ob = add(c, *ob, mul(c, idx[i], bat->sb[i]));
    }
}

/* Batched matmul: out[.., m, :] = sum_k a[.., m, k] * b[.., k, :]. The
 * parallel loop runs over (batch entry, column tile, row block). b is at
 * bptr; a LINEAR adds bias (and relu) as it stores. A packed b read
 * transposed (bt) is a weight y [N, K] kept with y^T's panels after it
 * (pack.c, param_t_offset). */
void emit_matmul(CG *c, const Node *n, const Node *na, const Node *nb, LLVMValueRef bptr, LLVMValueRef bias)
{
    if (mm_is_a8(n, na, nb)) {
        emit_matmul_a8(c, n, na, nb, bptr, bias);
        return;
    }
    MMShape s = mm_shape(c, n, na, nb, c->sched.rb);
    MMBatch bat = mm_batch(c, n, na, nb, &s);
    bool packed = n->attr.mm.packed, q8 = packed && n->attr.mm.q8;
    if (packed && n->op == OP_MATMUL && n->attr.mm.bt)
        bptr = gep(c, c->f32, bptr,   /* (y's numel + 15) & ~15; dims are slots here, not constants */
                   LLVMBuildAnd(c->b, add(c, numel(c, &nb->shape), i64c(c, 15)), i64c(c, ~(int64_t)15), ""));
    LLVMValueRef scale = NULL, cols = mul(c, s.ntiles, i64c(c, PW));
    if (q8) {   /* the columns' scales, then int8 panels (pack.c) */
        scale = bptr;
        bptr = gep(c, c->f32, bptr, cols);
    }
    LLVMValueRef mk = mul(c, s.M, s.K), mn = mul(c, s.M, s.N);
    LLVMValueRef kn = packed ? mul(c, s.K, cols) : mul(c, s.K, s.N);
    c->scratch = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, PW + 1), "row");
    LLVMSetAlignment(c->scratch, 32);
    Loop lp = loop_par(c);
    LLVMValueRef mb = LLVMBuildURem(c->b, lp.iv, s.mblocks, ""), q = LLVMBuildUDiv(c->b, lp.iv, s.mblocks, "");
    LLVMValueRef tile = LLVMBuildURem(c->b, q, s.ntiles, ""), bi = LLVMBuildUDiv(c->b, q, s.ntiles, "");
    LLVMValueRef oa, ob, idx[MAX_RANK];
    mm_batch_at(c, &bat, bi, &oa, &ob, idx);
    MMBlock m = { .a = gep(c, c->f32, c->a, mul(c, oa, mk)), .out = gep(c, c->f32, c->out, mul(c, bi, mn)),
                  .row0 = mul(c, mb, i64c(c, c->sched.rb)), .K = s.K, .N = s.N, .n0 = mul(c, tile, i64c(c, PW)) };
    m.o0 = m.n0, m.ostride = s.N, m.astride = s.K, m.bias = bias, m.relu = n->attr.mm.relu;
    m.q8 = q8, m.scale = scale;
    LLVMTypeRef et = q8 ? LLVMInt8TypeInContext(c->ctx) : c->f32;   /* b's element */
    LLVMValueRef bbase = gep(c, et, bptr, mul(c, ob, kn));
    m.bt = packed ? gep(c, et, bbase, mul(c, tile, mul(c, s.K, i64c(c, PW)))) : gep(c, c->f32, bbase, m.n0);
    m.bstride = packed ? i64c(c, PW) : s.N;
    mm_block(c, &m, s.M, packed);
    loop_end(c, &lp);
}

/* dst[r, j] = src[r, j] for r < rows, j < cols: rows sstride and dstride
 * floats apart (the panels and strips the products read from L1). */
static void copy_rows(CG *c, LLVMValueRef dst, LLVMValueRef dstride, LLVMValueRef src, LLVMValueRef sstride,
                      LLVMValueRef rows, LLVMValueRef cols)
{
    Loop lr = loop_begin(c, rows);
    LLVMValueRef srow = gep(c, c->f32, src, mul(c, lr.iv, sstride)), drow = gep(c, c->f32, dst, mul(c, lr.iv, dstride));
    Loop lj = loop_begin(c, cols);
    store_f(c, load_f(c, srow, lj.iv), drow, lj.iv);
    loop_end(c, &lj);
    loop_end(c, &lr);
}

/* A matmul whose b is not a packed weight: a computed value, or a weight
 * read transposed (attr.mm.bt, fuse_transpose.c: b is y [.., N, K] and
 * the product is a @ y^T). A parallel iteration owns one column tile and
 * a chunk of PN_BLOCKS row blocks: it packs the tile's PW columns of b,
 * PN_KB of their k at a time, into a [PN_KB, PW] panel on the stack (the
 * layout pack.c gives weights, zeros past N) and runs the chunk's row
 * blocks over it with the register tiles of emit_matmul, adding each k
 * block's products to the last. So the panel is packed once for up to
 * PN_BLOCKS * rb rows and stays in L1 while they read it, however long K
 * is (the tied output layer's gradient has K = 8000: reading b's strip
 * per row block streamed 1 MB from L2 each time), and b = y^T is never
 * stored. A chunk of at most PN_FEW_ROWS rows (decoding: one row per
 * sentence) is not worth a panel: b is read in place, once, by dot
 * products of rows of a and y (bt), or by the register tiles (b's rows
 * are contiguous strips). A training graph's attention (fuse_heads.c) adds
 * two views: a read transposed (attr.mm.at: a row's k-th element k * M
 * on) and a result written head-split (attr.mm.heads: rows H * N apart). */
#define PN_FEW_ROWS 4
#define PN_KB 256
static LLVMValueRef pn_chunk_rows(CG *c) { return i64c(c, (int64_t)c->sched.rb * PN_BLOCKS); }

void mm_logical(const Node *n, const Node *na, Node *ln, Node *la)
{
    *ln = *n, *la = *na;
    if (n->op == OP_MATMUL && n->attr.mm.at) {   /* x [.., K, M] read as [.., M, K] */
        int r = la->shape.rank;
        Dim t = la->shape.d[r - 1];
        la->shape.d[r - 1] = la->shape.d[r - 2], la->shape.d[r - 2] = t;
    }
    if (n->op == OP_MATMUL && n->attr.mm.heads) {   /* [B, M, H, N] holds [B, H, M, N] */
        Dim t = ln->shape.d[1];
        ln->shape.d[1] = ln->shape.d[2], ln->shape.d[2] = t;
    }
}

void emit_matmul_panels(CG *c, const Node *n_held, const Node *na_held, const Node *nb, LLVMValueRef bptr, LLVMValueRef bias)
{
    /* the product's view: a read transposed, a result written head-split */
    Node vn, va;
    mm_logical(n_held, na_held, &vn, &va);
    const Node *n = &vn, *na = &va;
    bool heads = n->op == OP_MATMUL && n->attr.mm.heads;
    bool bt = n->attr.mm.bt;
    MMShape s = mm_shape(c, n, na, nb, c->sched.rb);
    MMBatch bat = mm_batch(c, n, na, nb, &s);
    LLVMValueRef mk = mul(c, s.M, s.K), mn = mul(c, s.M, s.N), kn = mul(c, s.K, s.N);
    LLVMValueRef ars = s.K, ors = s.N;   /* rows apart in a and in out */
    bool at = n->op == OP_MATMUL && n->attr.mm.at;
    LLVMValueRef aks = at ? s.M : NULL;   /* a read transposed: a row's k-th element k * M on, rows adjacent */
    if (at)
        ars = i64c(c, 1);
    LLVMValueRef chunk = pn_chunk_rows(c), mchunks = udiv_up(c, s.M, chunk);
    c->scratch = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, PW + 1), "row");
    LLVMSetAlignment(c->scratch, 32);
    LLVMValueRef panel = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, PN_KB * PW), "panel");
    LLVMSetAlignment(panel, 64);
    Loop lp = loop_par(c);
    LLVMValueRef ch = LLVMBuildURem(c->b, lp.iv, mchunks, ""), q = LLVMBuildUDiv(c->b, lp.iv, mchunks, "");
    LLVMValueRef tile = LLVMBuildURem(c->b, q, s.ntiles, ""), bi = LLVMBuildUDiv(c->b, q, s.ntiles, "");
    LLVMValueRef oa, ob, idx[MAX_RANK];
    mm_batch_at(c, &bat, bi, &oa, &ob, idx);
    LLVMValueRef aoff = mul(c, oa, mk), ooff = mul(c, bi, mn);
    if (heads) {   /* batch entry (b, h) of [B, M, H, N] starts at b M H N + h N, its rows H N apart */
        LLVMValueRef H = dim_val(c, n_held->shape.d[2]);
        ors = mul(c, H, s.N);
        ooff = add(c, mul(c, idx[0], mul(c, s.M, ors)), mul(c, idx[1], s.N));
    }
    LLVMValueRef abase = gep(c, c->f32, c->a, aoff), obase = gep(c, c->f32, c->out, ooff);
    LLVMValueRef n0 = mul(c, tile, i64c(c, PW));
    LLVMValueRef ncols = min_i(c, i64c(c, PW), LLVMBuildSub(c->b, s.N, n0, ""));
    /* the tile's first element of b: row n0 of y (bt), or column n0 of b */
    LLVMValueRef btile = gep(c, c->f32, bptr, add(c, mul(c, ob, kn), bt ? mul(c, n0, s.K) : n0));
    bool relu = n->op == OP_LINEAR && n->attr.mm.relu;
    LLVMValueRef row0 = mul(c, ch, chunk);
    LLVMValueRef nrows = min_i(c, chunk, LLVMBuildSub(c->b, s.M, row0, ""));
    LLVMValueRef nblocks = udiv_up(c, nrows, i64c(c, c->sched.rb));
    LLVMBasicBlockRef few = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "mm_few_rows");
    LLVMBasicBlockRef tiles = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "mm_panels");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "mm_done");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLE, nrows, i64c(c, PN_FEW_ROWS), ""), few, tiles);
    LLVMPositionBuilderAtEnd(c->b, few);
    if (bt) {   /* dot products */
        LLVMValueRef acc = gep(c, c->f32, c->scratch, i64c(c, PW));
        Loop dj = loop_begin(c, ncols);
        LLVMValueRef yrow = gep(c, c->f32, btile, mul(c, dj.iv, s.K));
        Loop dr = loop_begin(c, nrows);
        LLVMValueRef arow = gep(c, c->f32, abase, mul(c, add(c, row0, dr.iv), ars));
        LLVMBuildStore(c->b, f32c(c, 0), acc);
        Loop dk = loop_begin(c, s.K);
        LLVMValueRef prod = LLVMBuildFMul(c->b, load_f(c, arow, aks ? mul(c, dk.iv, aks) : dk.iv), load_f(c, yrow, dk.iv), "");
        fast(prod);
        LLVMValueRef sum = LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f32, acc, ""), prod, "");
        fast(sum);
        LLVMBuildStore(c->b, sum, acc);
        loop_end(c, &dk);
        store_f(c, LLVMBuildLoad2(c->b, c->f32, acc, ""), obase,
                add(c, mul(c, add(c, row0, dr.iv), ors), add(c, n0, dj.iv)));
        loop_end(c, &dr);
        loop_end(c, &dj);
    } else {    /* the register tiles, b's strip in place */
        Loop lb = loop_begin(c, nblocks);
        MMBlock m = { .a = abase, .astride = ars, .akstride = aks, .bt = btile, .bstride = s.N, .out = obase, .ostride = ors,
                      .o0 = n0, .row0 = add(c, row0, mul(c, lb.iv, i64c(c, c->sched.rb))), .K = s.K, .N = s.N,
                      .n0 = n0, .bias = bias, .relu = relu };
        mm_block(c, &m, s.M, false);
        loop_end(c, &lb);
    }
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, tiles);
    Loop lk = loop_begin(c, udiv_up(c, s.K, i64c(c, PN_KB)));
    LLVMValueRef k0 = mul(c, lk.iv, i64c(c, PN_KB));
    LLVMValueRef kb = min_i(c, i64c(c, PN_KB), LLVMBuildSub(c->b, s.K, k0, ""));
    /* pack: panel[k, j] = b[k0 + k, n0 + j], zeros for j >= ncols */
    if (bt) {   /* down y's rows */
        Loop lj = loop_begin(c, ncols);
        LLVMValueRef yrow = gep(c, c->f32, btile, add(c, mul(c, lj.iv, s.K), k0));
        Loop lc = loop_begin(c, kb);
        store_f(c, load_f(c, yrow, lc.iv), panel, add(c, mul(c, lc.iv, i64c(c, PW)), lj.iv));
        loop_end(c, &lc);
        loop_end(c, &lj);
    } else {    /* along b's rows */
        copy_rows(c, panel, i64c(c, PW), gep(c, c->f32, btile, mul(c, k0, s.N)), s.N, kb, ncols);
    }
    Loop lz = loop_begin(c, LLVMBuildSub(c->b, i64c(c, PW), ncols, ""));
    Loop lzk = loop_begin(c, kb);
    store_f(c, f32c(c, 0), panel, add(c, mul(c, lzk.iv, i64c(c, PW)), add(c, ncols, lz.iv)));
    loop_end(c, &lzk);
    loop_end(c, &lz);
    /* the chunk's row blocks over this k block; a linear's bias and relu
     * with the last */
    Loop lb = loop_begin(c, nblocks);
    MMBlock m = { .a = gep(c, c->f32, abase, aks ? mul(c, k0, aks) : k0), .astride = ars, .akstride = aks, .bt = panel,
                  .bstride = i64c(c, PW), .out = obase,
                  .ostride = ors, .o0 = n0, .row0 = add(c, row0, mul(c, lb.iv, i64c(c, c->sched.rb))), .K = kb,
                  .N = s.N, .n0 = n0 };
    m.acc_in = LLVMBuildICmp(c->b, LLVMIntNE, k0, i64c(c, 0), "");
    if (bias) {
        LLVMBasicBlockRef last = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "mm_last_k");
        LLVMBasicBlockRef inner = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "mm_inner_k");
        LLVMBasicBlockRef joined = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "mm_k_done");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, add(c, k0, kb), s.K, ""), last, inner);
        LLVMPositionBuilderAtEnd(c->b, inner);
        mm_block(c, &m, s.M, true);
        LLVMBuildBr(c->b, joined);
        LLVMPositionBuilderAtEnd(c->b, last);
        m.bias = bias, m.relu = relu;
        mm_block(c, &m, s.M, true);
        LLVMBuildBr(c->b, joined);
        LLVMPositionBuilderAtEnd(c->b, joined);
    } else {
        mm_block(c, &m, s.M, true);
    }
    loop_end(c, &lb);
    loop_end(c, &lk);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
    loop_end(c, &lp);
}

/* matmul_tn: out [M, N] = a^T @ g over R = every leading position of a
 * [.., M] and g [.., N]: the matmul's register tiles, with R as their k.
 * R is long (every token of a batch), so it is cut into chunks of
 * TN_CHUNK rows, each chunk's products added to out. A parallel iteration
 * owns a range of column tiles and takes them TN_GROUP at a time: for
 * each chunk it copies the group's strips of g into panels ([TN_CHUNK,
 * 32] each, zero-padded), and for each row block of out the chunk's rb
 * columns of a into a strip of their own ([TN_CHUNK, rb]), which every
 * tile of the group then reads from L1. Read where it lies, a's column
 * has a row stride of M floats, a power of two (4 KB for the feed-forward
 * layer's 1,024), so its rows fell in one L1 set and were fetched again
 * for every column tile; g's rows (256 or 1,024 floats apart) aliased
 * alike, which the panels mend (462 -> 340 ms of matmul_tn a step).
 * With sym[SYM_ACC] set, the first chunk adds to out too (the output
 * layer run in chunks of sentences, chunk_output.c). */
#define TN_CHUNK 128
#define TN_GROUP 16
void emit_matmul_tn(CG *c, const Graph *g, const Node *n, const Node *na)
{
    LLVMValueRef keep = LLVMBuildICmp(c->b, LLVMIntNE, offset_val(c, g, n), i64c(c, 0), "");   /* sym[SYM_ACC] */
    LLVMValueRef M = dim_val(c, n->shape.d[0]), N = dim_val(c, n->shape.d[1]);
    LLVMValueRef R = dims_product(c, &na->shape, 0, na->shape.rank - 1);
    int RB = c->sched.rb;
    LLVMValueRef mblocks = udiv_up(c, M, i64c(c, RB));
    LLVMValueRef nchunks = udiv_up(c, R, i64c(c, TN_CHUNK));
    nchunks = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, nchunks, i64c(c, 0), ""), i64c(c, 1), nchunks, "");
    c->scratch = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, PW + 1), "row");
    LLVMSetAlignment(c->scratch, 32);
    LLVMValueRef panels = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, TN_GROUP * TN_CHUNK * PW), "panels");
    LLVMSetAlignment(panels, 64);
    LLVMValueRef strip = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, TN_CHUNK * RB), "strip");
    LLVMSetAlignment(strip, 64);
    LLVMValueRef tiles = LLVMBuildSub(c->b, c->hi, c->lo, "");
    Loop lg = loop_begin(c, udiv_up(c, tiles, i64c(c, TN_GROUP)));
    LLVMValueRef t0 = add(c, c->lo, mul(c, lg.iv, i64c(c, TN_GROUP)));
    LLVMValueRef nt = min_i(c, i64c(c, TN_GROUP), LLVMBuildSub(c->b, c->hi, t0, ""));
    Loop lc = loop_begin(c, nchunks);
    LLVMValueRef r0 = mul(c, lc.iv, i64c(c, TN_CHUNK));
    LLVMValueRef rows = min_i(c, i64c(c, TN_CHUNK), LLVMBuildSub(c->b, R, r0, ""));
    LLVMValueRef first = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, lc.iv, i64c(c, 0), ""),
                                      LLVMBuildNot(c->b, keep, ""), "");
    /* pack: panel t [r, j] = g[r0 + r, n0 + j], zeros for j >= ncols */
    Loop lt = loop_begin(c, nt);
    LLVMValueRef n0 = mul(c, add(c, t0, lt.iv), i64c(c, PW));
    LLVMValueRef ncols = min_i(c, i64c(c, PW), LLVMBuildSub(c->b, N, n0, ""));
    LLVMValueRef panel = gep(c, c->f32, panels, mul(c, lt.iv, i64c(c, TN_CHUNK * PW)));
    copy_rows(c, panel, i64c(c, PW), gep(c, c->f32, c->bb, add(c, mul(c, r0, N), n0)), N, rows, ncols);
    Loop lr = loop_begin(c, rows);
    Loop lz = loop_from(c, ncols, i64c(c, PW));
    store_f(c, f32c(c, 0), panel, add(c, mul(c, lr.iv, i64c(c, PW)), lz.iv));
    loop_end(c, &lz);
    loop_end(c, &lr);
    loop_end(c, &lt);
    Loop lm = loop_begin(c, mblocks);
    LLVMValueRef row0 = mul(c, lm.iv, i64c(c, RB));
    /* strip [r, i] = a[r0 + r, row0 + i], the block's rows of out */
    LLVMValueRef nrows = min_i(c, i64c(c, RB), LLVMBuildSub(c->b, M, row0, ""));
    copy_rows(c, strip, i64c(c, RB), gep(c, c->f32, c->a, add(c, mul(c, r0, M), row0)), M, rows, nrows);
    Loop lt2 = loop_begin(c, nt);
    /* the block's rows counted from row0: out from its row row0, a from the strip */
    MMBlock m = { .a = strip, .astride = i64c(c, 1), .akstride = i64c(c, RB), .out = gep(c, c->f32, c->out, mul(c, row0, N)),
                  .ostride = N, .row0 = i64c(c, 0), .K = rows, .N = N, .n0 = mul(c, add(c, t0, lt2.iv), i64c(c, PW)),
                  .acc_in = LLVMBuildNot(c->b, first, "") };
    m.o0 = m.n0, m.bt = gep(c, c->f32, panels, mul(c, lt2.iv, i64c(c, TN_CHUNK * PW))), m.bstride = i64c(c, PW);
    mm_block(c, &m, LLVMBuildSub(c->b, M, row0, ""), true);
    loop_end(c, &lt2);
    loop_end(c, &lm);
    loop_end(c, &lc);
    loop_end(c, &lg);
}
