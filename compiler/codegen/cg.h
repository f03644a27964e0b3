/* cg.h - what the kernel emitters of codegen/ share (codegen.h is the
 * interface: this header is the code generator's inside).
 *
 * Graph nodes are lowered to LLVM IR loop nests.
 *
 * Each node becomes a kernel function `k<hash>(out, a, b, dims, lo, hi)`
 * whose loops read their bounds from dims and whose outermost (parallel)
 * loop runs [lo, hi); the graph function calls it through the runtime's
 * thread pool, vamos_parallel() (include/vamos/parallel.h). Kernels are
 * plain loops that the O3 pipeline vectorises for the host. FP ops in matmul and reductions
 * carry `contract` (FMA) and `reassoc` (vector reductions); elementwise ops
 * stay exact so they match the reference bit for bit where libm allows.
 *
 * One file per kind of kernel, each with its design notes:
 *   cg_util.c         constants, loops, intrinsics, masked loads, exp/tanh polynomials
 *   cg_elementwise.c  unary, binary and fused maps (the formula of ops.h)
 *   cg_matmul.c       matmul and linear (register tiles, panels), matmul_tn
 *   cg_int8.c         matmul and linear with int8 weights and activations
 *   cg_attention.c    fused attention
 *   cg_norm.c         reductions and the fused layer norm
 *   cg_layout.c       transpose, copies, fills, masks, stores, gather
 *   cg_training.c     dropout, cross entropy, scatter_add
 *   cg_graph.c        kernel keys, dispatch by op, graph functions
 */
#ifndef VAMOS_CG_H
#define VAMOS_CG_H

#include <llvm-c/Core.h>

#include "codegen.h"
#include "kernels.h"
#include "schedule.h"

typedef struct CG {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef i32, i64, f32, ptr, kernel_ty, parallel_ty;
    LLVMValueRef fn;            /* the kernel being emitted */
    LLVMValueRef out, a, bb, sym;
    LLVMValueRef lo, hi;        /* the kernel's share of its outer loop */
    LLVMValueRef scratch;       /* matmul: one row of a tile, on the stack */
    LLVMValueRef ins;           /* graph function: inputs of a node with more than 2 */
    Sched sched;                /* the kernel's schedule (sched_of) */
    bool narrow;                /* the target has 16 vector registers (no AVX-512) */
    bool vnni;                  /* the target has VNNI's int8 dot products on 256 bits */
    bool vnni512;               /* ... and on 512 bits (AVX-512 VNNI) */
    bool avx2;                  /* the target has AVX2 (vpmaddubsw, vpmaddwd) */
} CG;

/* Kernels take their dims as an argument, so one kernel serves every size:
 * in a kernel, a dim other than the constant 1 (which broadcasting must
 * see) is a slot of the dims array, numbered from SLOT. */
#define SLOT 1000
/* the dims array: every slot of a node and its inputs, and one extra */
#define AREA ((MAX_IN + 1) * MAX_RANK + 1)

/* A counted loop `for (iv = 0; iv < n; iv++)`; the builder is left in the
 * body. loop_end closes it and leaves the builder after it. */
typedef struct Loop { LLVMBasicBlockRef pre, head, body, exit; LLVMValueRef iv; } Loop;

/* Matmul tiling: a parallel iteration computes a block of up to rb rows
 * by one column tile of PW = VAMOS_PANEL columns (MM_VECS vectors of VEC
 * floats), accumulated in registers over k. Iterations run row blocks
 * fastest, so a column tile of b stays in cache while every row block
 * uses it; threads split the iterations, so even a one-row product
 * (decoding) uses every thread. When b is a pre-packed weight (pack.c),
 * the tile's k-th row is at panel + k * PW: one contiguous stream, the
 * last panel zero-padded. Otherwise it is at b + k * N + n0, and a last
 * partial tile takes a scalar loop. */
#define VEC 8
#define MM_VECS 4
#define PW VAMOS_PANEL
#define MM_RB_MAX SCHED_RB_MAX   /* rb: the schedule's, sched_of(n).rb */
_Static_assert(PW == VEC * MM_VECS, "a column tile is one panel");

/* How a matmul's iterations are laid out. A 2-D b (a weight) with a that
 * has every batch dim is one [rows, K] @ [K, N] product: the batch dims
 * fold into the rows, so b is read once, not once per batch entry. */
typedef struct MMShape {
    bool flat;
    LLVMValueRef batches, M, K, N, mblocks, ntiles;
} MMShape;

/* Where a matmul block reads and writes: rows row0.. of a (row stride K),
 * b's tile at bt with row stride bstride, the tile's first column n0 of N
 * columns; the results go to out[row * ostride + o0 + j] (a matmul: o0 =
 * n0, ostride = N; fused attention writes a stack row instead). */
typedef struct MMBlock {
    LLVMValueRef a, astride, bt, bstride, out, ostride, o0, row0, K, N, n0;
    LLVMValueRef akstride;   /* a's k-th element of a row is k * akstride on (NULL: 1) */
    LLVMValueRef acc_in;     /* i1: add the results to what out holds (NULL: never) */
    LLVMValueRef bias;   /* LINEAR: + bias[n0 + j] before the store, else NULL */
    bool relu;           /* LINEAR: then max_nan(x, 0) */
    /* q8: bt points at int8 panels (bstride and indices in elements, so
     * bytes), each column's sum times scale[n0 + j] before the bias */
    bool q8;
    LLVMValueRef scale;
    /* bn (i64, or NULL): b's tile holds only its first bn columns (if
     * fewer than PW): the rest are not read (masked loads) and count as 0 */
    LLVMValueRef bn;
} MMBlock;

/* The constants of rt_dropout_u (compiler/kernels.c), which this must match
 * bit for bit: the draw of element i is mix(seed * K_SEED + salt * K_SALT + i). */
#define K_SEED 0x9E3779B97F4A7C15ull
#define K_SALT 0xD1B54A32D192ED03ull

/* row blocks of a panel matmul's chunk (cg_matmul.c), which extent() splits by */
#define PN_BLOCKS 64

#define SCATTER_COLS 16   /* columns of a scatter_add's parallel iteration */

/* cg_util.c */
Loop loop_from(CG *c, LLVMValueRef from, LLVMValueRef n);
LLVMValueRef intrinsic(CG *c, const char *name, LLVMValueRef *args, int n);
LLVMValueRef const_of(LLVMTypeRef t, double v);
LLVMValueRef exp_poly(CG *c, LLVMValueRef x);
LLVMValueRef tanh_poly(CG *c, LLVMValueRef x);
LLVMValueRef libm1(CG *c, const char *name, LLVMValueRef x);
LLVMValueRef masked_vload(CG *c, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef n);

/* cg_elementwise.c */
LLVMValueRef max_nan(CG *c, LLVMValueRef x, LLVMValueRef y);
void bcast_strides(CG *c, const Shape *in, const Shape *out, LLVMValueRef *st);
void unflatten(CG *c, LLVMValueRef p, const LLVMValueRef *dims, int r, LLVMValueRef *idx);
LLVMValueRef dims_product(CG *c, const Shape *s, int from, int to);
LLVMValueRef extra_input(CG *c, int k);
void emit_binary(CG *c, const Node *n, const Node *na, const Node *nb);
void emit_map(CG *c, const Graph *g, const Node *n);
void emit_unary(CG *c, const Node *n);

/* cg_norm.c */
void emit_reduce(CG *c, const Node *n, const Node *na);
void emit_layer_norm(CG *c, const Graph *g, const Node *n);

/* cg_matmul.c */
MMShape mm_shape(CG *c, const Node *n, const Node *na, const Node *nb, int rb);
void mm_block(CG *c, const MMBlock *m, LLVMValueRef M, bool packed);
void emit_matmul(CG *c, const Node *n, const Node *na, const Node *nb, LLVMValueRef bptr, LLVMValueRef bias);
void emit_matmul_panels(CG *c, const Node *n, const Node *na, const Node *nb, LLVMValueRef bptr, LLVMValueRef bias);
/* A matmul and its a as the product sees them (fuse_heads.c): a read
 * transposed (attr.mm.at) with its last two axes swapped back, a result
 * held head-split (attr.mm.heads) with axes 1 and 2. */
void mm_logical(const Node *n, const Node *na, Node *ln, Node *la);
void emit_matmul_tn(CG *c, const Graph *g, const Node *n, const Node *na);
void mm_store(CG *c, const MMBlock *m, int rb, int v0, int nv, LLVMValueRef acc[][MM_VECS]);

/* cg_int8.c: products with int8 activations (attr.mm.a8). A parallel
 * iteration quantizes a block of rows once and runs it over A8_TILES
 * column tiles. */
#define A8_TILES 8
void emit_matmul_a8(CG *c, const Node *n, const Node *na, const Node *nb, LLVMValueRef bptr, LLVMValueRef bias);

/* cg_attention.c */
void emit_attention(CG *c, const Graph *g, const Node *n);

/* cg_layout.c */
void emit_transpose(CG *c, const Node *n, const Node *na);
LLVMValueRef offset_val(CG *c, const Graph *g, const Node *n);
void emit_store(CG *c, const Graph *g, const Node *n, const Node *nb);
void emit_fill(CG *c, const Graph *g, const Node *n);
void emit_mask(CG *c, const Graph *g, const Node *n);
void emit_gather(CG *c, const Node *n, const Node *na);

/* cg_training.c */
void emit_dropout(CG *c, const Graph *g, const Node *n);
void emit_xent(CG *c, const Node *n, const Node *na);
void emit_scatter_add(CG *c, const Node *n, const Node *nb);

static inline LLVMValueRef i64c(CG *c, int64_t v) { return LLVMConstInt(c->i64, (unsigned long long)v, 1); }
static inline LLVMValueRef f32c(CG *c, double v) { return LLVMConstReal(c->f32, v); }

/* A dimension's value: a constant, or dims[slot] loaded at run time. */
static inline LLVMValueRef dim_val(CG *c, Dim d)
{
    if (d.sym < 0)
        return i64c(c, d.n);
    LLVMValueRef p = LLVMBuildGEP2(c->b, c->i64, c->sym, (LLVMValueRef[]){ i64c(c, d.sym - SLOT) }, 1, "");
    return LLVMBuildLoad2(c->b, c->i64, p, "dim");
}

/* Replace every dim but constant 1s by the next slot. */
static inline void slot_shape(Shape *s, int *next)
{
    for (int i = 0; i < s->rank; i++)
        if (s->d[i].sym >= 0 || s->d[i].n != 1)
            s->d[i] = (Dim){ 0, SLOT + (*next)++ };
}

static inline LLVMValueRef mul(CG *c, LLVMValueRef x, LLVMValueRef y) { return LLVMBuildMul(c->b, x, y, ""); }
static inline LLVMValueRef add(CG *c, LLVMValueRef x, LLVMValueRef y) { return LLVMBuildAdd(c->b, x, y, ""); }

static inline LLVMValueRef numel(CG *c, const Shape *s)
{
    LLVMValueRef n = i64c(c, 1);
    for (int i = 0; i < s->rank; i++)
        n = mul(c, n, dim_val(c, s->d[i]));
    return n;
}

static inline LLVMValueRef gep(CG *c, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildInBoundsGEP2(c->b, t, base, &idx, 1, "");
}

static inline LLVMValueRef load_f(CG *c, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildLoad2(c->b, c->f32, gep(c, c->f32, base, idx), "");
}

static inline void store_f(CG *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMBuildStore(c->b, v, gep(c, c->f32, base, idx));
}

static inline Loop loop_begin(CG *c, LLVMValueRef n) { return loop_from(c, i64c(c, 0), n); }

/* The kernel's parallel loop: iterations [lo, hi) of its outer loop. */
static inline Loop loop_par(CG *c) { return loop_from(c, c->lo, c->hi); }

static inline void loop_end(CG *c, Loop *l)
{
    LLVMValueRef next = LLVMBuildNSWAdd(c->b, l->iv, i64c(c, 1), ""), inc = next;
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMAddIncoming(l->iv, &inc, &latch, 1);
    LLVMBuildBr(c->b, l->head);
    LLVMPositionBuilderAtEnd(c->b, l->exit);
}

static inline void fast(LLVMValueRef inst)
{
    LLVMSetFastMathFlags(inst, LLVMFastMathAllowContract | LLVMFastMathAllowReassoc);
}

static inline LLVMValueRef udiv_up(CG *c, LLVMValueRef x, LLVMValueRef y)
{
    return LLVMBuildUDiv(c->b, add(c, x, LLVMBuildSub(c->b, y, i64c(c, 1), "")), y, "");
}

static inline LLVMValueRef min_i(CG *c, LLVMValueRef x, LLVMValueRef y)
{
    return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, x, y, ""), x, y, "");
}

static inline LLVMValueRef vload(CG *c, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMValueRef l = LLVMBuildLoad2(c->b, vt, gep(c, c->f32, base, idx), "");
    LLVMSetAlignment(l, 4);
    return l;
}

static inline void vstore(CG *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMSetAlignment(LLVMBuildStore(c->b, v, gep(c, c->f32, base, idx)), 4);
}

static inline LLVMValueRef splat(CG *c, LLVMTypeRef vt, LLVMValueRef x)
{
    LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetUndef(vt), x, i64c(c, 0), "");
    LLVMTypeRef mt = LLVMVectorType(c->i32, LLVMGetVectorSize(vt));
    return LLVMBuildShuffleVector(c->b, v, LLVMGetUndef(vt), LLVMConstNull(mt), "");
}

static inline LLVMValueRef u64c(CG *c, uint64_t v) { return LLVMConstInt(c->i64, v, 0); }

static inline LLVMValueRef a8_groups(CG *c, LLVMValueRef ntiles) { return udiv_up(c, ntiles, i64c(c, A8_TILES)); }

/* A product that cg_int8.c emits: int8 activations by a packed 2-D weight,
 * a with every dim of the result (its rows are whole rows of K). */
static inline bool mm_is_a8(const Node *n, const Node *na, const Node *nb)
{
    return n->attr.mm.packed && n->attr.mm.a8 && nb->shape.rank == 2 && na->shape.rank == n->shape.rank;
}

#endif
