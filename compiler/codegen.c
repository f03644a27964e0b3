/* codegen.c - lower graph nodes to LLVM IR loop nests (see codegen.h).
 *
 * Each node becomes a kernel function `k<hash>(out, a, b, dims, lo, hi)`
 * whose loops read their bounds from dims and whose outermost (parallel)
 * loop runs [lo, hi); the graph function calls it through the runtime's
 * thread pool, vamos_parallel() (include/vamos/parallel.h). Kernels are
 * plain loops that the O3 pipeline vectorises for the host. FP ops in matmul and reductions
 * carry `contract` (FMA) and `reassoc` (vector reductions); elementwise ops
 * stay exact so they match the reference bit for bit where libm allows.
 */
#include "codegen.h"
#include "kernels.h"
#include "schedule.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

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
} CG;

/* ------------------------------------------------------------ helpers */

static LLVMValueRef i64c(CG *c, int64_t v) { return LLVMConstInt(c->i64, (unsigned long long)v, 1); }
static LLVMValueRef f32c(CG *c, double v) { return LLVMConstReal(c->f32, v); }

/* Kernels take their dims as an argument, so one kernel serves every size:
 * in a kernel, a dim other than the constant 1 (which broadcasting must
 * see) is a slot of the dims array, numbered from SLOT. */
#define SLOT 1000
/* the dims array: every slot of a node and its inputs, and one extra */
#define AREA ((MAX_IN + 1) * MAX_RANK + 1)

/* A dimension's value: a constant, or dims[slot] loaded at run time. */
static LLVMValueRef dim_val(CG *c, Dim d)
{
    if (d.sym < 0)
        return i64c(c, d.n);
    LLVMValueRef p = LLVMBuildGEP2(c->b, c->i64, c->sym, (LLVMValueRef[]){ i64c(c, d.sym - SLOT) }, 1, "");
    return LLVMBuildLoad2(c->b, c->i64, p, "dim");
}

/* Replace every dim but constant 1s by the next slot. */
static void slot_shape(Shape *s, int *next)
{
    for (int i = 0; i < s->rank; i++)
        if (s->d[i].sym >= 0 || s->d[i].n != 1)
            s->d[i] = (Dim){ 0, SLOT + (*next)++ };
}

static LLVMValueRef mul(CG *c, LLVMValueRef x, LLVMValueRef y) { return LLVMBuildMul(c->b, x, y, ""); }
static LLVMValueRef add(CG *c, LLVMValueRef x, LLVMValueRef y) { return LLVMBuildAdd(c->b, x, y, ""); }

static LLVMValueRef numel(CG *c, const Shape *s)
{
    LLVMValueRef n = i64c(c, 1);
    for (int i = 0; i < s->rank; i++)
        n = mul(c, n, dim_val(c, s->d[i]));
    return n;
}

static LLVMValueRef gep(CG *c, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildInBoundsGEP2(c->b, t, base, &idx, 1, "");
}

static LLVMValueRef load_f(CG *c, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildLoad2(c->b, c->f32, gep(c, c->f32, base, idx), "");
}

static void store_f(CG *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMBuildStore(c->b, v, gep(c, c->f32, base, idx));
}

/* A counted loop `for (iv = 0; iv < n; iv++)`; the builder is left in the
 * body. loop_end closes it and leaves the builder after it. */
typedef struct Loop { LLVMBasicBlockRef pre, head, body, exit; LLVMValueRef iv; } Loop;

static Loop loop_from(CG *c, LLVMValueRef from, LLVMValueRef n)
{
    Loop l;
    l.pre = LLVMGetInsertBlock(c->b);
    l.head = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "head");
    l.body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "body");
    l.exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "exit");
    LLVMBuildBr(c->b, l.head);
    LLVMPositionBuilderAtEnd(c->b, l.head);
    l.iv = LLVMBuildPhi(c->b, c->i64, "i");
    LLVMAddIncoming(l.iv, &from, &l.pre, 1);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, l.iv, n, ""), l.body, l.exit);
    LLVMPositionBuilderAtEnd(c->b, l.body);
    return l;
}

static Loop loop_begin(CG *c, LLVMValueRef n) { return loop_from(c, i64c(c, 0), n); }

/* The kernel's parallel loop: iterations [lo, hi) of its outer loop. */
static Loop loop_par(CG *c) { return loop_from(c, c->lo, c->hi); }

static void loop_end(CG *c, Loop *l)
{
    LLVMValueRef next = LLVMBuildNSWAdd(c->b, l->iv, i64c(c, 1), ""), inc = next;
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMAddIncoming(l->iv, &inc, &latch, 1);
    LLVMBuildBr(c->b, l->head);
    LLVMPositionBuilderAtEnd(c->b, l->exit);
}

/* A call to an intrinsic overloaded on its first argument's type (f32 or
 * a vector of f32). */
static LLVMValueRef intrinsic(CG *c, const char *name, LLVMValueRef *args, int n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef tys[] = { LLVMTypeOf(args[0]) };
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, tys, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, tys, 1);
    return LLVMBuildCall2(c->b, fty, f, args, (unsigned)n, "");
}

/* The constant v of type t: an f32 or i32, or a vector of them. */
static LLVMValueRef const_of(LLVMTypeRef t, double v)
{
    if (LLVMGetTypeKind(t) != LLVMVectorTypeKind)
        return LLVMGetTypeKind(t) == LLVMFloatTypeKind ? LLVMConstReal(t, v)
                                                       : LLVMConstInt(t, (unsigned long long)(int64_t)v, 1);
    unsigned n = LLVMGetVectorSize(t);
    LLVMValueRef e[64], one = const_of(LLVMGetElementType(t), v);
    for (unsigned i = 0; i < n; i++)
        e[i] = one;
    return LLVMConstVector(e, n);
}

/* exp(x) for f32 or a vector of f32, inline, so that loops of it
 * vectorise (llvm.exp becomes a scalar call to expf). Cephes' expf
 * scheme: x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts), e^r by
 * a degree-7 polynomial, times 2^n built in the exponent bits, as
 * 2^(n/2) * 2^(n - n/2) so that n = 128 and the subnormal results
 * (n down to -150) are right. Within 2 ulp of expf over the float range;
 * exp(-inf) = 0, exp(+inf) = inf, NaN stays NaN. */
static LLVMValueRef exp_poly(CG *c, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    bool vec = LLVMGetTypeKind(t) == LLVMVectorTypeKind;
    LLVMTypeRef it = vec ? LLVMVectorType(c->i32, LLVMGetVectorSize(t)) : c->i32;
    LLVMBuilderRef b = c->b;
    const double hi = 88.72283935546875, lo = -103.972084045410;
    /* clamped by compare and select (vmaxps/vminps); a NaN stays NaN
     * through it, and the last select returns x for it */
    LLVMValueRef xc = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, const_of(t, lo), ""), const_of(t, lo), x, "");
    xc = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, xc, const_of(t, hi), ""), const_of(t, hi), xc, "");
    LLVMValueRef fx = LLVMBuildFAdd(b, LLVMBuildFMul(b, xc, const_of(t, 1.44269504088896341), ""), const_of(t, 0.5), "");
    fx = intrinsic(c, "llvm.floor", &fx, 1);
    LLVMValueRef r = LLVMBuildFSub(b, xc, LLVMBuildFMul(b, fx, const_of(t, 0.693359375), ""), "");
    r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, fx, const_of(t, -2.12194440e-4), ""), "");
    static const double P[] = { 1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                                4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1 };
    LLVMValueRef y = const_of(t, P[0]);
    for (int i = 1; i < 6; i++)
        y = LLVMBuildFAdd(b, LLVMBuildFMul(b, y, r, ""), const_of(t, P[i]), "");
    y = LLVMBuildFMul(b, y, LLVMBuildFMul(b, r, r, ""), "");
    y = LLVMBuildFAdd(b, LLVMBuildFAdd(b, y, r, ""), const_of(t, 1.0), "");
    LLVMValueRef n = LLVMBuildFPToSI(b, fx, it, "");
    LLVMValueRef n1 = LLVMBuildAShr(b, n, const_of(it, 1), "");
    LLVMValueRef n2 = LLVMBuildSub(b, n, n1, "");
    LLVMValueRef e1 = LLVMBuildBitCast(b, LLVMBuildShl(b, LLVMBuildAdd(b, n1, const_of(it, 127), ""), const_of(it, 23), ""), t, "");
    LLVMValueRef e2 = LLVMBuildBitCast(b, LLVMBuildShl(b, LLVMBuildAdd(b, n2, const_of(it, 127), ""), const_of(it, 23), ""), t, "");
    LLVMValueRef res = LLVMBuildFMul(b, LLVMBuildFMul(b, y, e1, ""), e2, "");
    res = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, const_of(t, lo), ""), const_of(t, 0.0), res, "");
    res = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, const_of(t, hi), ""), const_of(t, INFINITY), res, "");
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, res, "");
}

/* tanh(x), inline and vectorisable like exp_poly, by Cephes' tanhf
 * scheme: for |x| < 0.625 an odd polynomial, x + x^3 P(x^2); above, 1 -
 * 2 / (e^2|x| + 1) (1 once e^2|x| overflows to inf); either with x's
 * sign. NaN takes the polynomial's path and stays NaN; -0 stays -0. */
static LLVMValueRef tanh_poly(CG *c, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMBuilderRef b = c->b;
    LLVMValueRef z = intrinsic(c, "llvm.fabs", &x, 1);
    LLVMValueRef s = exp_poly(c, LLVMBuildFAdd(b, z, z, ""));
    LLVMValueRef big = LLVMBuildFSub(b, const_of(t, 1.0),
                                     LLVMBuildFDiv(b, const_of(t, 2.0), LLVMBuildFAdd(b, s, const_of(t, 1.0), ""), ""), "");
    static const double P[] = { -5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2,
                                1.33314422036E-1, -3.33332819422E-1 };
    LLVMValueRef w = LLVMBuildFMul(b, x, x, ""), p = const_of(t, P[0]);
    for (int i = 1; i < 5; i++)
        p = LLVMBuildFAdd(b, LLVMBuildFMul(b, p, w, ""), const_of(t, P[i]), "");
    p = LLVMBuildFAdd(b, LLVMBuildFMul(b, LLVMBuildFMul(b, p, w, ""), x, ""), x, "");
    LLVMValueRef r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGE, z, const_of(t, 0.625), ""), big, p, "");
    return intrinsic(c, "llvm.copysign", (LLVMValueRef[]){ r, x }, 2);   /* odd; keeps -0 */
}

/* A call to a libm function float(float) (erff). */
static LLVMValueRef libm1(CG *c, const char *name, LLVMValueRef x)
{
    LLVMTypeRef fty = LLVMFunctionType(c->f32, &c->f32, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
    if (!f)
        f = LLVMAddFunction(c->mod, name, fty);
    return LLVMBuildCall2(c->b, fty, f, &x, 1, "");
}

static void fast(LLVMValueRef inst)
{
    LLVMSetFastMathFlags(inst, LLVMFastMathAllowContract | LLVMFastMathAllowReassoc);
}

/* -------------------------------------------------------- elementwise */

/* max with NaN propagation, as the reference's max_nan */
static LLVMValueRef max_nan(CG *c, LLVMValueRef x, LLVMValueRef y)
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
#define X(id, text, arity, kind, attr, by, formula) case OP_##id: return formula;
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
static void bcast_strides(CG *c, const Shape *in, const Shape *out, LLVMValueRef *st)
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
static void unflatten(CG *c, LLVMValueRef p, const LLVMValueRef *dims, int r, LLVMValueRef *idx)
{
    for (int i = r - 1; i > 0; i--) {
        idx[i] = LLVMBuildURem(c->b, p, dims[i], "");
        p = LLVMBuildUDiv(c->b, p, dims[i], "");
    }
    if (r > 0)
        idx[0] = p;
}

static LLVMValueRef product(CG *c, const Shape *s, int from, int to)
{
    LLVMValueRef n = i64c(c, 1);
    for (int i = from; i < to; i++)
        n = mul(c, n, dim_val(c, s->d[i]));
    return n;
}

/* Input k + 1 of a node with more than two inputs (b is their array). */
static LLVMValueRef input(CG *c, int k)
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
static void emit_binary(CG *c, const Node *n, const Node *na, const Node *nb)
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
static void emit_map(CG *c, const Graph *g, const Node *n)
{
    const Shape *ins[MAX_IN];
    LLVMValueRef ptrs[MAX_IN];
    for (int k = 0; k < n->attr.map.nin; k++) {
        ins[k] = &g->nodes[n->in[k]].shape;
        ptrs[k] = k == 0 ? c->a : input(c, k - 1);
    }
    emit_rows(c, n, ins, ptrs, n->attr.map.nin, map_body);
}

/* Elementwise over the flat index. */
static void emit_unary(CG *c, const Node *n)
{
    Loop l = loop_par(c);
    store_f(c, scalar(c, n->op, load_f(c, c->a, l.iv), NULL), c->out, l.iv);
    loop_end(c, &l);
}

/* ----------------------------------------------------- other kernels */

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
static void emit_reduce(CG *c, const Node *n, const Node *na)
{
    LLVMValueRef len = dim_val(c, na->shape.d[n->attr.axis]);
    LLVMValueRef inner = product(c, &na->shape, n->attr.axis + 1, na->shape.rank);
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

static LLVMValueRef udiv_up(CG *c, LLVMValueRef x, LLVMValueRef y)
{
    return LLVMBuildUDiv(c->b, add(c, x, LLVMBuildSub(c->b, y, i64c(c, 1), "")), y, "");
}

static LLVMValueRef min_i(CG *c, LLVMValueRef x, LLVMValueRef y)
{
    return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, x, y, ""), x, y, "");
}

/* How a matmul's iterations are laid out. A 2-D b (a weight) with a that
 * has every batch dim is one [rows, K] @ [K, N] product: the batch dims
 * fold into the rows, so b is read once, not once per batch entry. */
typedef struct MMShape {
    bool flat;
    LLVMValueRef batches, M, K, N, mblocks, ntiles;
} MMShape;

static MMShape mm_shape(CG *c, const Node *n, const Node *na, const Node *nb, int rb)
{
    int r = n->shape.rank;
    MMShape s = { .flat = nb->shape.rank == 2 && na->shape.rank == r };
    s.N = dim_val(c, n->shape.d[r - 1]);
    s.K = dim_val(c, na->shape.d[na->shape.rank - 1]);
    s.M = s.flat ? product(c, &n->shape, 0, r - 1) : dim_val(c, n->shape.d[r - 2]);
    s.batches = s.flat ? i64c(c, 1) : product(c, &n->shape, 0, r - 2);
    s.mblocks = udiv_up(c, s.M, i64c(c, rb));
    s.ntiles = udiv_up(c, s.N, i64c(c, PW));
    return s;
}

static LLVMValueRef vload(CG *c, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMValueRef l = LLVMBuildLoad2(c->b, vt, gep(c, c->f32, base, idx), "");
    LLVMSetAlignment(l, 4);
    return l;
}

static void vstore(CG *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMSetAlignment(LLVMBuildStore(c->b, v, gep(c, c->f32, base, idx)), 4);
}

static LLVMValueRef splat(CG *c, LLVMTypeRef vt, LLVMValueRef x)
{
    LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetUndef(vt), x, i64c(c, 0), "");
    LLVMTypeRef mt = LLVMVectorType(c->i32, VEC);
    return LLVMBuildShuffleVector(c->b, v, LLVMGetUndef(vt), LLVMConstNull(mt), "");
}

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
} MMBlock;

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

/* rb rows by a whole tile (PW columns of b exist: a full tile, or a
 * zero-padded panel): rb x MM_VECS vector accumulators through the k loop.
 * The columns at or past N (padding) are not stored. */
static void mm_tile(CG *c, const MMBlock *m, int rb)
{
    LLVMTypeRef vt = LLVMVectorType(c->f32, VEC);
    LLVMValueRef arow[MM_RB_MAX];
    for (int i = 0; i < rb; i++)
        arow[i] = gep(c, c->f32, m->a, mul(c, add(c, m->row0, i64c(c, i)), m->astride));
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
        for (int v = 0; v < MM_VECS; v++) {
            acc[i][v] = LLVMBuildPhi(c->b, vt, "acc");
            LLVMAddIncoming(acc[i][v], &vzero, &pre, 1);
        }
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, k, m->K, ""), body, exit);
    LLVMPositionBuilderAtEnd(c->b, body);
    LLVMValueRef brow = mul(c, k, m->bstride), bv[MM_VECS];
    for (int v = 0; v < MM_VECS; v++)
        if (m->q8) {   /* 8 int8 weights, widened exactly to f32: no integer sums, nothing saturates */
            LLVMTypeRef i8 = LLVMInt8TypeInContext(c->ctx), v8 = LLVMVectorType(i8, VEC);
            LLVMValueRef l = LLVMBuildLoad2(c->b, v8, gep(c, i8, m->bt, add(c, brow, i64c(c, v * VEC))), "");
            LLVMSetAlignment(l, 1);
            bv[v] = LLVMBuildSIToFP(c->b, l, vt, "");
        } else {
            bv[v] = vload(c, vt, m->bt, add(c, brow, i64c(c, v * VEC)));
        }
    LLVMValueRef nk = LLVMBuildNSWAdd(c->b, k, i64c(c, 1), "");
    LLVMValueRef nacc[MM_RB_MAX][MM_VECS];
    unsigned id = LLVMLookupIntrinsicID("llvm.fmuladd", 12);
    LLVMValueRef fma = LLVMGetIntrinsicDeclaration(c->mod, id, &vt, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, &vt, 1);
    for (int i = 0; i < rb; i++) {
        LLVMValueRef s = splat(c, vt, load_f(c, arow[i], m->akstride ? mul(c, k, m->akstride) : k));
        for (int v = 0; v < MM_VECS; v++)
            nacc[i][v] = LLVMBuildCall2(c->b, fty, fma, (LLVMValueRef[]){ s, bv[v], acc[i][v] }, 3, "");
    }
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMAddIncoming(k, &nk, &latch, 1);
    for (int i = 0; i < rb; i++)
        for (int v = 0; v < MM_VECS; v++)
            LLVMAddIncoming(acc[i][v], &nacc[i][v], &latch, 1);
    LLVMBuildBr(c->b, head);
    LLVMPositionBuilderAtEnd(c->b, exit);

    /* store: whole vectors for a full tile, else through a stack row */
    LLVMBasicBlockRef full = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "store_full");
    LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "store_part");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "stored");
    LLVMValueRef left = LLVMBuildSub(c->b, m->N, m->n0, "");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, left, i64c(c, PW), ""), full, part);
    LLVMPositionBuilderAtEnd(c->b, full);
    for (int i = 0; i < rb; i++) {
        LLVMValueRef o = add(c, mul(c, add(c, m->row0, i64c(c, i)), m->ostride), m->o0);
        for (int v = 0; v < MM_VECS; v++)
            vstore(c, epilogue(c, m, with_old(c, m, acc[i][v], m->out, add(c, o, i64c(c, v * VEC))), i64c(c, v * VEC)),
                   m->out, add(c, o, i64c(c, v * VEC)));
    }
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, part);
    LLVMValueRef tmp = c->scratch;
    for (int i = 0; i < rb; i++) {
        for (int v = 0; v < MM_VECS; v++)
            vstore(c, acc[i][v], tmp, i64c(c, v * VEC));
        LLVMValueRef o = add(c, mul(c, add(c, m->row0, i64c(c, i)), m->ostride), m->o0);
        Loop lj = loop_begin(c, left);
        store_f(c, epilogue(c, m, with_old(c, m, load_f(c, tmp, lj.iv), m->out, add(c, o, lj.iv)), lj.iv), m->out,
                add(c, o, lj.iv));
        loop_end(c, &lj);
    }
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
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
static void mm_block(CG *c, const MMBlock *m, LLVMValueRef M, bool packed)
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

/* Batch entry bi's offsets in a's and b's batch strides. */
static void mm_batch_at(CG *c, const MMBatch *bat, LLVMValueRef bi, LLVMValueRef *oa, LLVMValueRef *ob)
{
    LLVMValueRef idx[MAX_RANK];
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
static void emit_matmul(CG *c, const Node *n, const Node *na, const Node *nb, LLVMValueRef bptr, LLVMValueRef bias)
{
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
    LLVMValueRef oa, ob;
    mm_batch_at(c, &bat, bi, &oa, &ob);
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
 * are contiguous strips). */
#define PN_FEW_ROWS 4
#define PN_KB 256
#define PN_BLOCKS 64
static LLVMValueRef pn_chunk_rows(CG *c) { return i64c(c, (int64_t)c->sched.rb * PN_BLOCKS); }

static void emit_matmul_panels(CG *c, const Node *n, const Node *na, const Node *nb, LLVMValueRef bptr, LLVMValueRef bias)
{
    bool bt = n->attr.mm.bt;
    MMShape s = mm_shape(c, n, na, nb, c->sched.rb);
    MMBatch bat = mm_batch(c, n, na, nb, &s);
    LLVMValueRef mk = mul(c, s.M, s.K), mn = mul(c, s.M, s.N), kn = mul(c, s.K, s.N);
    LLVMValueRef chunk = pn_chunk_rows(c), mchunks = udiv_up(c, s.M, chunk);
    c->scratch = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, PW + 1), "row");
    LLVMSetAlignment(c->scratch, 32);
    LLVMValueRef panel = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, PN_KB * PW), "panel");
    LLVMSetAlignment(panel, 64);
    Loop lp = loop_par(c);
    LLVMValueRef ch = LLVMBuildURem(c->b, lp.iv, mchunks, ""), q = LLVMBuildUDiv(c->b, lp.iv, mchunks, "");
    LLVMValueRef tile = LLVMBuildURem(c->b, q, s.ntiles, ""), bi = LLVMBuildUDiv(c->b, q, s.ntiles, "");
    LLVMValueRef oa, ob;
    mm_batch_at(c, &bat, bi, &oa, &ob);
    LLVMValueRef abase = gep(c, c->f32, c->a, mul(c, oa, mk)), obase = gep(c, c->f32, c->out, mul(c, bi, mn));
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
        LLVMValueRef arow = gep(c, c->f32, abase, mul(c, add(c, row0, dr.iv), s.K));
        LLVMBuildStore(c->b, f32c(c, 0), acc);
        Loop dk = loop_begin(c, s.K);
        LLVMValueRef prod = LLVMBuildFMul(c->b, load_f(c, arow, dk.iv), load_f(c, yrow, dk.iv), "");
        fast(prod);
        LLVMValueRef sum = LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f32, acc, ""), prod, "");
        fast(sum);
        LLVMBuildStore(c->b, sum, acc);
        loop_end(c, &dk);
        store_f(c, LLVMBuildLoad2(c->b, c->f32, acc, ""), obase,
                add(c, mul(c, add(c, row0, dr.iv), s.N), add(c, n0, dj.iv)));
        loop_end(c, &dr);
        loop_end(c, &dj);
    } else {    /* the register tiles, b's strip in place */
        Loop lb = loop_begin(c, nblocks);
        MMBlock m = { .a = abase, .astride = s.K, .bt = btile, .bstride = s.N, .out = obase, .ostride = s.N,
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
        Loop lc = loop_begin(c, kb);
        LLVMValueRef brow = gep(c, c->f32, btile, mul(c, add(c, k0, lc.iv), s.N));
        LLVMValueRef prow = gep(c, c->f32, panel, mul(c, lc.iv, i64c(c, PW)));
        Loop lj = loop_begin(c, ncols);
        store_f(c, load_f(c, brow, lj.iv), prow, lj.iv);
        loop_end(c, &lj);
        loop_end(c, &lc);
    }
    Loop lz = loop_begin(c, LLVMBuildSub(c->b, i64c(c, PW), ncols, ""));
    Loop lzk = loop_begin(c, kb);
    store_f(c, f32c(c, 0), panel, add(c, mul(c, lzk.iv, i64c(c, PW)), add(c, ncols, lz.iv)));
    loop_end(c, &lzk);
    loop_end(c, &lz);
    /* the chunk's row blocks over this k block; a linear's bias and relu
     * with the last */
    Loop lb = loop_begin(c, nblocks);
    MMBlock m = { .a = gep(c, c->f32, abase, k0), .astride = s.K, .bt = panel, .bstride = i64c(c, PW), .out = obase,
                  .ostride = s.N, .o0 = n0, .row0 = add(c, row0, mul(c, lb.iv, i64c(c, c->sched.rb))), .K = kb,
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
 * [.., M] and g [.., N]: the matmul's register tiles with a read down
 * its columns (row stride 1, k stride M). R is long (every token of a
 * batch), so it is cut into chunks of TN_CHUNK rows, each chunk's
 * products added to out: a parallel iteration owns one column tile and
 * runs every row block of out over a chunk, so the chunk's [TN_CHUNK, 32]
 * strip of g stays in L1 while all of them read it. (Looping the row
 * blocks over the whole of R streamed that strip from L2 once per row
 * block: 296 against 197 ms a step for en-es, tests/bench/train_bench.) */
#define TN_CHUNK 128
static void emit_matmul_tn(CG *c, const Node *n, const Node *na)
{
    LLVMValueRef M = dim_val(c, n->shape.d[0]), N = dim_val(c, n->shape.d[1]);
    LLVMValueRef R = product(c, &na->shape, 0, na->shape.rank - 1);
    LLVMValueRef mblocks = udiv_up(c, M, i64c(c, c->sched.rb));
    LLVMValueRef nchunks = udiv_up(c, R, i64c(c, TN_CHUNK));
    nchunks = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, nchunks, i64c(c, 0), ""), i64c(c, 1), nchunks, "");
    c->scratch = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, PW + 1), "row");
    LLVMSetAlignment(c->scratch, 32);
    LLVMValueRef panel = LLVMBuildArrayAlloca(c->b, c->f32, i64c(c, TN_CHUNK * PW), "panel");
    LLVMSetAlignment(panel, 64);
    Loop lp = loop_par(c);
    LLVMValueRef n0 = mul(c, lp.iv, i64c(c, PW));
    Loop lc = loop_begin(c, nchunks);
    LLVMValueRef r0 = mul(c, lc.iv, i64c(c, TN_CHUNK));
    LLVMValueRef rows = min_i(c, i64c(c, TN_CHUNK), LLVMBuildSub(c->b, R, r0, ""));
    LLVMValueRef first = LLVMBuildICmp(c->b, LLVMIntEQ, lc.iv, i64c(c, 0), "");
    /* pack: panel[r, j] = g[r0 + r, n0 + j], zeros for j >= ncols */
    LLVMValueRef ncols = min_i(c, i64c(c, PW), LLVMBuildSub(c->b, N, n0, ""));
    LLVMValueRef gtile = gep(c, c->f32, c->bb, add(c, mul(c, r0, N), n0));
    Loop lr = loop_begin(c, rows);
    LLVMValueRef grow = gep(c, c->f32, gtile, mul(c, lr.iv, N));
    LLVMValueRef prow = gep(c, c->f32, panel, mul(c, lr.iv, i64c(c, PW)));
    Loop lj = loop_begin(c, ncols);
    store_f(c, load_f(c, grow, lj.iv), prow, lj.iv);
    loop_end(c, &lj);
    Loop lz = loop_from(c, ncols, i64c(c, PW));
    store_f(c, f32c(c, 0), prow, lz.iv);
    loop_end(c, &lz);
    loop_end(c, &lr);
    Loop lm = loop_begin(c, mblocks);
    MMBlock m = { .a = gep(c, c->f32, c->a, mul(c, r0, M)), .astride = i64c(c, 1), .akstride = M, .out = c->out,
                  .ostride = N, .row0 = mul(c, lm.iv, i64c(c, c->sched.rb)), .K = rows, .N = N, .n0 = n0,
                  .acc_in = LLVMBuildNot(c->b, first, "") };
    m.o0 = m.n0, m.bt = panel, m.bstride = i64c(c, PW);
    mm_block(c, &m, M, true);
    loop_end(c, &lm);
    loop_end(c, &lc);
    loop_end(c, &lp);
}

/* Fused attention (fuse.c), QB query rows of a batch entry per parallel
 * iteration, the keys in blocks of BK (the schedule's qb and bk):
 *
 *   1. The block's mask rows go to the score rows (-inf past the last
 *      key). A block whose mask is -inf everywhere (causal masking's
 *      future, padding) is skipped.
 *   2. kt's block is copied to a [D, BK] stack block, zero-padded:
 *      kt's rows are a whole sequence apart (a power of two apart is
 *      common, which makes the cache alias); the copy is read by every
 *      query row.
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
_Static_assert(SCHED_BK_MAX % PW == 0 && SCHED_BK_DEFAULT % PW == 0, "a key block is whole column tiles");

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

static void emit_attention(CG *c, const Graph *g, const Node *n)
{
    const Node *nq = &g->nodes[n->in[0]], *nk = &g->nodes[n->in[1]], *nv = &g->nodes[n->in[2]];
    const Node *nm = &g->nodes[n->in[3]];
    int r = n->shape.rank, nbat = r - 2;
    LLVMValueRef S = dim_val(c, n->shape.d[r - 2]), E = dim_val(c, n->shape.d[r - 1]);
    LLVMValueRef D = dim_val(c, nq->shape.d[r - 1]), T = dim_val(c, nk->shape.d[r - 1]);
    LLVMValueRef kt = input(c, 0), v = input(c, 1), mask = input(c, 2);
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

/* Fused layer norm (fuse_norm.c), one row of d per parallel iteration,
 * three passes over the row as the reference (rt_layer_norm): h = x + r
 * into out and its sum; the sum of squares about the mean; the scaled
 * row. The sums reassociate (vector lanes). Inputs: a = x, b = { r,
 * gain, bias }; r is x's shape or one value. */
static void emit_layer_norm(CG *c, const Graph *g, const Node *n)
{
    int rk = n->shape.rank;
    bool full = g->nodes[n->in[1]].shape.rank == rk;
    LLVMValueRef d = dim_val(c, n->shape.d[rk - 1]), fd = LLVMBuildSIToFP(c->b, d, c->f32, "");
    LLVMValueRef r = input(c, 0), gain = input(c, 1), bias = input(c, 2);
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

/* out index (i0..ir) reads in[sum i_k * instride[perm[k]]]; the parallel
 * loop runs over out's rows. */
static void emit_transpose(CG *c, const Node *n, const Node *na)
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

/* A node's position offset (ARANGE, CAUSAL_MASK, STORE): 0, or the value
 * of its symbol passed in the first extra dims slot. */
static LLVMValueRef offset_val(CG *c, const Graph *g, const Node *n)
{
    bool has = n->op == OP_DROPOUT || (n->op == OP_STORE ? n->attr.store.axis >= 0 : n->attr.offset != 0);
    return has ? dim_val(c, (Dim){ 0, SLOT + nslotted(g, n) }) : i64c(c, 0);
}

/* state with x written at the position along axis (or all of x): one
 * sequential call (the state is small next to the rest of a step). */
static void emit_store(CG *c, const Graph *g, const Node *n, const Node *nb)
{
    LLVMValueRef all = numel(c, &n->shape);
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
        store_f(c, load_f(c, c->bb, l.iv), c->out, l.iv);
        loop_end(c, &l);
        return;
    }
    LLVMValueRef len = dim_val(c, n->shape.d[axis]), at = offset_val(c, g, n);
    LLVMValueRef inner = product(c, &n->shape, axis + 1, n->shape.rank);
    Loop l = loop_begin(c, numel(c, &nb->shape));
    LLVMValueRef o = LLVMBuildUDiv(c->b, l.iv, inner, ""), i = LLVMBuildURem(c->b, l.iv, inner, "");
    LLVMValueRef dst = add(c, mul(c, add(c, mul(c, o, len), at), inner), i);
    store_f(c, load_f(c, c->bb, l.iv), c->out, dst);
    loop_end(c, &l);
}

/* Copy (reshape) or fill (const, arange), over the flat index. */
static void emit_fill(CG *c, const Graph *g, const Node *n)
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
static void emit_mask(CG *c, const Graph *g, const Node *n)
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

/* ---------------------------------------------------- training kernels */

static LLVMValueRef u64c(CG *c, uint64_t v) { return LLVMConstInt(c->i64, v, 0); }

/* The constants of rt_dropout_u (runtime/kernels.c), which this must match
 * bit for bit: the draw of element i is mix(seed * K_SEED + salt * K_SALT + i). */
#define K_SEED 0x9E3779B97F4A7C15ull
#define K_SALT 0xD1B54A32D192ED03ull

/* dropout: the extra dims slot holds seed * K_SEED + salt * K_SALT (see
 * dims_arg), so dropouts of one shape and p share a kernel. */
static void emit_dropout(CG *c, const Graph *g, const Node *n)
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

/* xent, xent_grad (see rt_xent): the parallel loop runs over rows; per
 * row the maximum, then the sum of exp(x - max) (and of x, for xent). */
static void emit_xent(CG *c, const Node *n, const Node *na)
{
    LLVMValueRef V = dim_val(c, na->shape.d[na->shape.rank - 1]);
    double eps = n->attr.eps;
    LLVMValueRef mxp = acc_new(c, -INFINITY), sp = acc_new(c, 0), xsp = acc_new(c, 0);
    LLVMValueRef vmx = LLVMBuildAlloca(c->b, LLVMVectorType(c->f32, VEC), "vmax");
    Loop lr = loop_par(c);
    LLVMValueRef row = gep(c, c->f32, c->a, mul(c, lr.iv, V));
    LLVMValueRef y = LLVMBuildSExt(c->b, LLVMBuildLoad2(c->b, c->i32, gep(c, c->i32, c->bb, lr.iv), ""), c->i64, "");
    LLVMValueRef valid = LLVMBuildICmp(c->b, LLVMIntULT, y, V, "");   /* 0 <= y < V */
    LLVMBuildStore(c->b, f32c(c, 0), sp);
    LLVMBuildStore(c->b, f32c(c, 0), xsp);
    LLVMValueRef mx = row_max(c, row, V, vmx, mxp);
    if (n->op == OP_XENT) {
        Loop l1 = loop_begin(c, V);
        acc_add(c, xsp, load_f(c, row, l1.iv), false);
        loop_end(c, &l1);
    }
    Loop l2 = loop_begin(c, V);
    acc_add(c, sp, exp_poly(c, LLVMBuildFSub(c->b, load_f(c, row, l2.iv), mx, "")), false);
    loop_end(c, &l2);
    LLVMValueRef lse = intrinsic(c, "llvm.log", (LLVMValueRef[]){ LLVMBuildLoad2(c->b, c->f32, sp, "") }, 1);
    LLVMValueRef shift = LLVMBuildFAdd(c->b, mx, lse, "");   /* log p_j = x_j - shift */
    if (n->op == OP_XENT) {
        LLVMValueRef Vf = LLVMBuildSIToFP(c->b, V, c->f32, "");
        LLVMValueRef safe_y = LLVMBuildSelect(c->b, valid, y, i64c(c, 0), "");
        LLVMValueRef lpy = LLVMBuildFSub(c->b, load_f(c, row, safe_y), shift, "");
        LLVMValueRef slp = LLVMBuildFSub(c->b, LLVMBuildLoad2(c->b, c->f32, xsp, ""), LLVMBuildFMul(c->b, Vf, shift, ""), "");
        LLVMValueRef loss = LLVMBuildFNeg(c->b, LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, f32c(c, 1.0 - eps), lpy, ""),
                                                              LLVMBuildFMul(c->b, LLVMBuildFDiv(c->b, f32c(c, eps), Vf, ""), slp, ""), ""), "");
        store_f(c, LLVMBuildSelect(c->b, valid, loss, f32c(c, 0), ""), c->out, lr.iv);
    } else {
        LLVMValueRef orow = gep(c, c->f32, c->out, mul(c, lr.iv, V));
        LLVMValueRef floor_q = LLVMBuildFDiv(c->b, f32c(c, eps), LLVMBuildSIToFP(c->b, V, c->f32, ""), "");
        Loop l3 = loop_begin(c, V);
        LLVMValueRef p = exp_poly(c, LLVMBuildFSub(c->b, load_f(c, row, l3.iv), shift, ""));
        LLVMValueRef hit = LLVMBuildICmp(c->b, LLVMIntEQ, l3.iv, y, "");
        LLVMValueRef q = LLVMBuildFAdd(c->b, floor_q, LLVMBuildSelect(c->b, hit, f32c(c, 1.0 - eps), f32c(c, 0), ""), "");
        LLVMValueRef gv = LLVMBuildFSub(c->b, p, q, "");
        store_f(c, LLVMBuildSelect(c->b, valid, gv, f32c(c, 0), ""), orow, l3.iv);
        loop_end(c, &l3);
    }
    loop_end(c, &lr);
}

#define SCATTER_COLS 16   /* columns of a scatter_add's parallel iteration */

/* scatter_add: iteration j owns columns [16 j, 16 j + 16) of every row
 * of out, so no two threads add into the same place. */
static void emit_scatter_add(CG *c, const Node *n, const Node *nb)
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

/* gather: out[r, :] = table[idx[r], :] over rows r; returns 1 + r for a bad id. */
static void emit_gather(CG *c, const Node *n, const Node *na)
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

/* The length of node n's parallel loop and the work of the whole kernel
 * (for the pool's threshold), from the dims in c->sym. */
static void extent(CG *c, const Graph *one, LLVMValueRef *len, LLVMValueRef *work)
{
    const Node *n = &one->nodes[MAX_IN], *na = &one->nodes[0], *nb = &one->nodes[1];
    const Shape *s = &n->shape;
    LLVMValueRef all = numel(c, s);
    *work = all;
    switch (op_info[n->op].kind) {
    case OPK_UNARY:
        *len = all;
        return;
    case OPK_BINARY:
        *len = product(c, s, 0, s->rank - 1);
        return;
    case OPK_REDUCE:
        *len = product(c, &na->shape, 0, n->attr.axis);
        *work = numel(c, &na->shape);
        return;
    case OPK_LAYOUT:
        *len = n->op == OP_TRANSPOSE ? product(c, s, 0, s->rank - 1) : all;
        return;
    case OPK_SOURCE:
    case OPK_OTHER:
        if ((n->op == OP_MATMUL || n->op == OP_LINEAR) && !n->attr.mm.packed) {
            MMShape m = mm_shape(c, n, na, nb, sched_of(n).rb);
            LLVMValueRef chunks = udiv_up(c, m.M, i64c(c, (int64_t)sched_of(n).rb * PN_BLOCKS));
            *len = mul(c, mul(c, m.batches, chunks), m.ntiles);
            *work = mul(c, all, dim_val(c, na->shape.d[na->shape.rank - 1]));
        } else if (n->op == OP_MATMUL || n->op == OP_LINEAR) {
            MMShape m = mm_shape(c, n, na, nb, sched_of(n).rb);
            *len = mul(c, mul(c, m.batches, m.mblocks), m.ntiles);
            *work = mul(c, all, dim_val(c, na->shape.d[na->shape.rank - 1]));
        } else if (n->op == OP_GATHER) {
            *len = product(c, s, 0, s->rank - 1);
        } else if (n->op == OP_ATTENTION) {
            *len = mul(c, product(c, s, 0, s->rank - 2), udiv_up(c, dim_val(c, s->d[s->rank - 2]), i64c(c, sched_of(n).qb)));
            LLVMValueRef T = dim_val(c, nb->shape.d[s->rank - 1]), D = dim_val(c, na->shape.d[s->rank - 1]);
            *work = mul(c, mul(c, product(c, s, 0, s->rank - 1), T), add(c, D, dim_val(c, s->d[s->rank - 1])));
        } else if (n->op == OP_LAYER_NORM) {
            *len = product(c, s, 0, s->rank - 1);
            *work = mul(c, all, i64c(c, 4));
        } else if (n->op == OP_MAP) {
            *len = product(c, s, 0, s->rank - 1);
            *work = mul(c, all, i64c(c, n->attr.map.nstep));
        } else if (n->op == OP_CAUSAL_MASK || n->op == OP_PAD_MASK) {
            *len = dim_val(c, s->d[0]);
        } else if (n->op == OP_STORE) {
            *len = i64c(c, 1);   /* one sequential call */
        } else if (n->op == OP_XENT || n->op == OP_XENT_GRAD) {
            *len = product(c, &na->shape, 0, na->shape.rank - 1);
            *work = mul(c, numel(c, &na->shape), i64c(c, 8));
        } else if (n->op == OP_MATMUL_TN) {
            *len = udiv_up(c, dim_val(c, s->d[1]), i64c(c, PW));   /* column tiles */
            *work = mul(c, all, product(c, &na->shape, 0, na->shape.rank - 1));
        } else if (n->op == OP_SCATTER_ADD) {
            *len = udiv_up(c, dim_val(c, s->d[1]), i64c(c, SCATTER_COLS));
            *work = add(c, all, numel(c, &na->shape));
        } else {
            *len = all;   /* CONST, ARANGE */
        }
        return;
    }
}

/* ------------------------------------------------------------ kernels */

/* Append a shape's dims (value, symbol) to a key. */
static int key_shape(int64_t *k, int at, const Shape *s)
{
    k[at++] = s->rank;
    for (int i = 0; i < s->rank; i++) {
        k[at++] = s->d[i].sym >= 0 ? -1 : s->d[i].n;
        k[at++] = s->d[i].sym;
    }
    return at;
}

/* The bits of a float, as a key word. */
static int64_t fbits(float f)
{
    int32_t bits;
    memcpy(&bits, &f, 4);
    return bits;
}

/* Append what the op's attribute (its table column, ops.h) makes its
 * kernel differ by. Fields the graph function passes at run time (a
 * store's state and position, an offset's symbol, dropout's salt) are
 * keyed only by whether they exist. */
static int key_attr(int64_t *k, int at, const Node *n)
{
    switch (op_info[n->op].attr) {
    case AT_NONE:
    case AT_INPUT:   /* buffers, no kernel */
    case AT_PARAM:
        break;
    case AT_VALUE:
        memcpy(&k[at++], &n->attr.value, sizeof n->attr.value);
        break;
    case AT_OFFSET:
        k[at++] = n->attr.offset != 0;
        break;
    case AT_AXIS:
        k[at++] = n->attr.axis;
        break;
    case AT_PERM:
        for (int i = 0; i < n->shape.rank; i++)
            k[at++] = n->attr.perm[i];
        break;
    case AT_MM:
        k[at++] = n->attr.mm.packed | n->attr.mm.relu << 1 | n->attr.mm.bt << 2 | n->attr.mm.q8 << 3;
        break;
    case AT_STORE:
        k[at++] = n->attr.store.axis;
        break;
    case AT_ATTN:
        k[at++] = fbits(n->attr.attn.scale);
        k[at++] = n->attr.attn.div;
        break;
    case AT_EPS:
        k[at++] = fbits(n->attr.eps);
        break;
    case AT_MAP:
        k[at++] = n->attr.map.nin;
        for (int s = 0; s < n->attr.map.nstep; s++) {
            const MapStep *st = &n->attr.map.code[s];
            k[at++] = st->op;
            k[at++] = st->a | st->b << 8;
            k[at++] = st->op == OP_CONST ? fbits(st->value) : 0;
        }
        break;
    case AT_DROP:
        k[at++] = fbits(n->attr.drop.p);
        break;
    }
    return at;
}

/* The kernel's identity: op, shapes of node and inputs, attributes (field
 * by field: struct padding must not split equal kernels). */
static uint64_t kernel_key(const Graph *g, const Node *n)
{
    int64_t k[9 + (MAX_IN + 1) * (1 + 2 * MAX_RANK) + MAX_RANK + 1 + 3 * MAP_MAX_STEPS];
    int at = 0;
    k[at++] = n->op;
    at = key_shape(k, at, &n->shape);
    for (int i = 0; i < op_info[n->op].arity; i++)
        at = key_shape(k, at, &g->nodes[n->in[i]].shape);
    at = key_attr(k, at, n);
    if (sched_tunable(n->op)) {
        Sched sc = sched_of(n);
        k[at++] = sc.qb | sc.bk << 8 | sc.rb << 16;
    }
    return XXH3_64bits(k, sizeof(int64_t) * (size_t)at);
}

/* Emit (or reuse) the kernel of node n (whose dims are slots). */
static LLVMValueRef kernel(CG *c, const Graph *g, const Node *n)
{
    char name[32];
    snprintf(name, sizeof name, "k%016llx", (unsigned long long)kernel_key(g, n));
    LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
    if (f)
        return f;
    f = LLVMAddFunction(c->mod, name, c->kernel_ty);
    LLVMSetLinkage(f, LLVMInternalLinkage);
    /* kept out of line: one optimised copy per distinct kernel, and graph
     * functions that stay small enough for O3 to handle in seconds */
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
    for (unsigned i = 0; i < 3; i++)
        LLVMAddAttributeAtIndex(f, i + 1, LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    c->fn = f;
    c->out = LLVMGetParam(f, 0), c->a = LLVMGetParam(f, 1), c->bb = LLVMGetParam(f, 2), c->sym = LLVMGetParam(f, 3);
    c->lo = LLVMGetParam(f, 4), c->hi = LLVMGetParam(f, 5);
    c->sched = sched_of(n);
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, f, "entry"));
    const Node *na = op_info[n->op].arity > 0 ? &g->nodes[n->in[0]] : NULL;
    const Node *nb = op_info[n->op].arity > 1 ? &g->nodes[n->in[1]] : NULL;
    switch (op_info[n->op].kind) {
    case OPK_UNARY: emit_unary(c, n); break;
    case OPK_BINARY: emit_binary(c, n, na, nb); break;
    case OPK_REDUCE: emit_reduce(c, n, na); break;
    case OPK_LAYOUT:
        if (n->op == OP_TRANSPOSE)
            emit_transpose(c, n, na);
        else
            emit_fill(c, g, n);
        break;
    case OPK_SOURCE:
    case OPK_OTHER:
        if (n->op == OP_MATMUL && !n->attr.mm.packed)
            emit_matmul_panels(c, n, na, nb, c->bb, NULL);
        else if (n->op == OP_MATMUL)
            emit_matmul(c, n, na, nb, c->bb, NULL);
        else if (n->op == OP_LINEAR && !n->attr.mm.packed)
            emit_matmul_panels(c, n, na, nb, input(c, 0), input(c, 1));
        else if (n->op == OP_LINEAR)
            emit_matmul(c, n, na, nb, input(c, 0), input(c, 1));
        else if (n->op == OP_LAYER_NORM)
            emit_layer_norm(c, g, n);
        else if (n->op == OP_MAP)
            emit_map(c, g, n);
        else if (n->op == OP_GATHER)
            emit_gather(c, n, na);
        else if (n->op == OP_CAUSAL_MASK || n->op == OP_PAD_MASK)
            emit_mask(c, g, n);
        else if (n->op == OP_STORE)
            emit_store(c, g, n, nb);
        else if (n->op == OP_ATTENTION)
            emit_attention(c, g, n);
        else if (n->op == OP_DROPOUT)
            emit_dropout(c, g, n);
        else if (n->op == OP_XENT || n->op == OP_XENT_GRAD)
            emit_xent(c, n, na);
        else if (n->op == OP_SCATTER_ADD)
            emit_scatter_add(c, n, nb);
        else if (n->op == OP_MATMUL_TN)
            emit_matmul_tn(c, n, na);
        else
            emit_fill(c, g, n);   /* CONST, ARANGE */
        break;
    }
    LLVMBuildRet(c->b, LLVMConstInt(c->i32, 0, 0));
    return f;
}

/* Node i with its inputs, dims replaced by slots, as a small graph: the
 * inputs at 0.., the node at MAX_IN. */
static Graph slotted(const Graph *g, int i, Node tmp[MAX_IN + 1])
{
    const Node *n = &g->nodes[i];
    int arity = op_info[n->op].arity, next = 0;
    tmp[MAX_IN] = *n;
    slot_shape(&tmp[MAX_IN].shape, &next);
    for (int k = 0; k < arity; k++) {
        tmp[k] = g->nodes[n->in[k]];
        slot_shape(&tmp[k].shape, &next);
        tmp[MAX_IN].in[k] = k;
    }
    return (Graph){ .name = g->name, .nodes = tmp, .n = MAX_IN + 1, .cap = MAX_IN + 1, .output = MAX_IN };
}

/* The dims array of node i's kernel, in slot order, in an alloca. */
static LLVMValueRef dims_arg(CG *c, const Graph *g, int i, LLVMValueRef sym, LLVMValueRef area)
{
    const Node *n = &g->nodes[i];
    const Shape *shapes[MAX_IN + 1] = { &n->shape };
    for (int k = 0; k < op_info[n->op].arity; k++)
        shapes[k + 1] = &g->nodes[n->in[k]].shape;
    int slot = 0;
    for (int s = 0; s < MAX_IN + 1; s++)
        for (int k = 0; shapes[s] && k < shapes[s]->rank; k++) {
            Dim d = shapes[s]->d[k];
            if (d.sym < 0 && d.n == 1)
                continue;
            LLVMValueRef v = d.sym >= 0 ? LLVMBuildLoad2(c->b, c->i64, gep(c, c->i64, sym, i64c(c, d.sym)), "")
                                        : i64c(c, d.n);
            LLVMBuildStore(c->b, v, gep(c, c->i64, area, i64c(c, slot++)));
        }
    /* one extra slot: the position symbol of ARANGE, CAUSAL_MASK, STORE */
    int pos = n->op == OP_STORE ? (n->attr.store.axis >= 0 ? n->attr.store.pos : -1)
            : n->op == OP_ARANGE || n->op == OP_CAUSAL_MASK ? n->attr.offset - 1 : -1;
    if (pos >= 0)
        LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, c->i64, gep(c, c->i64, sym, i64c(c, pos)), ""),
                       gep(c, c->i64, area, i64c(c, slot)));
    if (n->op == OP_DROPOUT) {   /* the draw's base: seed * K_SEED + salt * K_SALT */
        LLVMValueRef seed = LLVMBuildLoad2(c->b, c->i64, gep(c, c->i64, sym, i64c(c, SYM_SEED)), "");
        LLVMValueRef v = add(c, mul(c, seed, u64c(c, K_SEED)), u64c(c, (uint64_t)n->attr.drop.salt * K_SALT));
        LLVMBuildStore(c->b, v, gep(c, c->i64, area, i64c(c, slot)));
    }
    return area;
}

/* Call node i's kernel through the pool: vamos_parallel(kernel, out, a,
 * b, dims, len, work); returns the status. */
static LLVMValueRef emit_call(CG *c, const Graph *g, int i, LLVMValueRef kfn, LLVMValueRef buf, LLVMValueRef sym,
                              LLVMValueRef area)
{
    const Node *n = &g->nodes[i];
    int arity = op_info[n->op].arity;
    int slots[3] = { i, arity > 0 ? n->in[0] : -1, arity > 1 ? n->in[1] : -1 };
    LLVMValueRef args[7];
    args[0] = kfn;
    for (int k = 0; k < 3; k++)
        args[k + 1] = slots[k] < 0 ? LLVMConstNull(c->ptr)
                                   : LLVMBuildLoad2(c->b, c->ptr, gep(c, c->ptr, buf, i64c(c, slots[k])), "");
    if (arity > 2) {   /* b: the array of inputs 1.. */
        for (int k = 1; k < arity; k++)
            LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, c->ptr, gep(c, c->ptr, buf, i64c(c, n->in[k])), ""),
                           gep(c, c->ptr, c->ins, i64c(c, k - 1)));
        args[3] = c->ins;
    }
    args[4] = dims_arg(c, g, i, sym, area);
    /* the loop length and work, from the dims just stored (slot numbering) */
    Node tmp[MAX_IN + 1];
    Graph one = slotted(g, i, tmp);
    LLVMValueRef saved = c->sym;
    c->sym = area;
    extent(c, &one, &args[5], &args[6]);
    c->sym = saved;
    if (sched_tunable(g->nodes[i].op) && sched_of(&g->nodes[i]).th == 1)
        args[6] = i64c(c, 0);   /* no work worth a thread: the pool runs it inline */
    LLVMValueRef par = LLVMGetNamedFunction(c->mod, "vamos_parallel");
    if (!par)
        par = LLVMAddFunction(c->mod, "vamos_parallel", c->parallel_ty);
    return LLVMBuildCall2(c->b, c->parallel_ty, par, args, 7, "");
}

/* vamos_<graph>_step(node, buf, sym): one node's kernel, for tests. */
static void emit_steps(CG *c, const Graph *g, LLVMValueRef *ks)
{
    char name[64];
    snprintf(name, sizeof name, "vamos_%s_step", g->name);
    LLVMTypeRef fty = LLVMFunctionType(c->i32, (LLVMTypeRef[]){ c->i32, c->ptr, c->ptr }, 3, 0);
    LLVMValueRef f = LLVMAddFunction(c->mod, name, fty);
    c->fn = f;
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(c->ctx, f, "entry");
    LLVMBasicBlockRef none = LLVMAppendBasicBlockInContext(c->ctx, f, "none");
    LLVMPositionBuilderAtEnd(c->b, none);
    LLVMBuildRet(c->b, LLVMConstInt(c->i32, 0, 0));
    LLVMPositionBuilderAtEnd(c->b, entry);
    LLVMValueRef area = LLVMBuildArrayAlloca(c->b, c->i64, i64c(c, AREA), "dims");
    c->ins = LLVMBuildArrayAlloca(c->b, c->ptr, i64c(c, MAX_IN), "ins");
    LLVMValueRef sw = LLVMBuildSwitch(c->b, LLVMGetParam(f, 0), none, (unsigned)g->n);
    for (int i = 0; i < g->n; i++) {
        if (!ks[i])
            continue;
        LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(c->ctx, f, "node");
        LLVMAddCase(sw, LLVMConstInt(c->i32, (unsigned long long)i, 0), bb);
        LLVMPositionBuilderAtEnd(c->b, bb);
        LLVMBuildRet(c->b, emit_call(c, g, i, ks[i], LLVMGetParam(f, 1), LLVMGetParam(f, 2), area));
    }
}

/* vamos_<graph>(buf, sym): call each node's kernel in order. */
static void emit_graph(CG *c, const Graph *g, bool steps)
{
    LLVMValueRef *ks = calloc((size_t)g->n + 1, sizeof *ks);
    for (int i = 0; i < g->n; i++) {
        Op op = g->nodes[i].op;
        Node tmp[MAX_IN + 1];
        Graph one = slotted(g, i, tmp);
        ks[i] = op == OP_INPUT || op == OP_PARAM ? NULL : kernel(c, &one, &tmp[MAX_IN]);
    }
    char name[64];
    snprintf(name, sizeof name, "vamos_%s", g->name);
    LLVMTypeRef fty = LLVMFunctionType(c->i32, (LLVMTypeRef[]){ c->ptr, c->ptr }, 2, 0);
    LLVMValueRef f = LLVMAddFunction(c->mod, name, fty);
    c->fn = f;
    LLVMValueRef buf = LLVMGetParam(f, 0), sym = LLVMGetParam(f, 1);
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, f, "entry"));
    LLVMValueRef area = LLVMBuildArrayAlloca(c->b, c->i64, i64c(c, AREA), "dims");
    c->ins = LLVMBuildArrayAlloca(c->b, c->ptr, i64c(c, MAX_IN), "ins");
    for (int i = 0; i < g->n; i++) {
        if (!ks[i])
            continue;
        LLVMValueRef rc = emit_call(c, g, i, ks[i], buf, sym, area);
        LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(c->ctx, f, "fail");
        LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, f, "next");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, rc, LLVMConstInt(c->i32, 0, 0), ""), fail, next);
        LLVMPositionBuilderAtEnd(c->b, fail);
        LLVMBuildRet(c->b, rc);
        LLVMPositionBuilderAtEnd(c->b, next);
    }
    LLVMBuildRet(c->b, LLVMConstInt(c->i32, 0, 0));
    if (steps)
        emit_steps(c, g, ks);
    free(ks);
}

const char *const cg_cpu_levels[] = { "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", NULL };

LLVMTargetMachineRef cg_host_machine(char *err, size_t errlen)
{
    return cg_target_machine(NULL, err, errlen);
}

LLVMTargetMachineRef cg_target_machine(const char *cpu_level, char *err, size_t errlen)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple(), *msg = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        snprintf(err, errlen, "no LLVM target for %s: %s", triple, msg);
        LLVMDisposeMessage(msg);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    bool host = !cpu_level || !strcmp(cpu_level, "native");
    if (!host && strncmp(triple, "x86_64", 6)) {
        snprintf(err, errlen, "--cpu %s is for x86-64 machines; this one is %s: use --cpu native", cpu_level, triple);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    char *cpu = host ? LLVMGetHostCPUName() : LLVMCreateMessage(cpu_level);
    char *features = host ? LLVMGetHostCPUFeatures() : LLVMCreateMessage("");
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive,
                                                      LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    LLVMDisposeMessage(triple);
    return tm;
}

LLVMModuleRef cg_emit(LLVMContextRef ctx, LLVMTargetMachineRef tm, const Model *m,
                      const Graph *const *graphs, int ngraphs, bool steps, char *err, size_t errlen)
{
    CG c = { .ctx = ctx };
    /* the register tiles' default rows follow the target's vector registers */
    char *cpu = LLVMGetTargetMachineCPU(tm), *features = LLVMGetTargetMachineFeatureString(tm);
    sched_set_target(strstr(features, "+avx512f") || !strcmp(cpu, "x86-64-v4"));
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    c.mod = LLVMModuleCreateWithNameInContext(m->name, ctx);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(c.mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(c.mod, layout);
    LLVMDisposeTargetData(layout);
    c.b = LLVMCreateBuilderInContext(ctx);
    c.i32 = LLVMInt32TypeInContext(ctx);
    c.i64 = LLVMInt64TypeInContext(ctx);
    c.f32 = LLVMFloatTypeInContext(ctx);
    c.ptr = LLVMPointerTypeInContext(ctx, 0);
    c.kernel_ty = LLVMFunctionType(c.i32, (LLVMTypeRef[]){ c.ptr, c.ptr, c.ptr, c.ptr, c.i64, c.i64 }, 6, 0);
    c.parallel_ty = LLVMFunctionType(c.i32, (LLVMTypeRef[]){ c.ptr, c.ptr, c.ptr, c.ptr, c.ptr, c.i64, c.i64 }, 7, 0);
    for (int i = 0; i < ngraphs; i++)
        emit_graph(&c, graphs[i], steps);
    LLVMDisposeBuilder(c.b);
    char *msg = NULL;
    if (LLVMVerifyModule(c.mod, LLVMReturnStatusAction, &msg)) {
        snprintf(err, errlen, "internal error: generated module does not verify: %.400s", msg);
        LLVMDisposeMessage(msg);
        LLVMDisposeModule(c.mod);
        return NULL;
    }
    LLVMDisposeMessage(msg);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(c.mod, "default<O3>", tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    const char *dump = getenv("VAMOS_DUMP_IR");   /* for developers: the optimised IR */
    if (!e && dump && *dump)
        LLVMPrintModuleToFile(c.mod, dump, NULL);
    if (e) {
        char *em = LLVMGetErrorMessage(e);
        snprintf(err, errlen, "internal error: optimisation failed: %s", em);
        LLVMDisposeErrorMessage(em);
        LLVMDisposeModule(c.mod);
        return NULL;
    }
    return c.mod;
}
