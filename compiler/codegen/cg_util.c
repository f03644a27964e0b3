/* cg_util.c - helpers every kernel emitter uses: constants, loops, intrinsics,
 * and the inline polynomials of exp and tanh. */
#include "cg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Loop loop_from(CG *c, LLVMValueRef from, LLVMValueRef n)
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

/* A call to an intrinsic overloaded on its first argument's type (f32 or
 * a vector of f32). */
LLVMValueRef intrinsic(CG *c, const char *name, LLVMValueRef *args, int n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef tys[] = { LLVMTypeOf(args[0]) };
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, tys, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, tys, 1);
    return LLVMBuildCall2(c->b, fty, f, args, (unsigned)n, "");
}

/* The constant v of type t: an f32 or i32, or a vector of them. */
LLVMValueRef const_of(LLVMTypeRef t, double v)
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
LLVMValueRef exp_poly(CG *c, LLVMValueRef x)
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
LLVMValueRef tanh_poly(CG *c, LLVMValueRef x)
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
LLVMValueRef libm1(CG *c, const char *name, LLVMValueRef x)
{
    LLVMTypeRef fty = LLVMFunctionType(c->f32, &c->f32, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
    if (!f)
        f = LLVMAddFunction(c->mod, name, fty);
    return LLVMBuildCall2(c->b, fty, f, &x, 1, "");
}

/* The vector at base[idx] of which only the first n lanes (n <= 0:
 * none, n >= VEC: all) are read; the others are 0 (llvm.masked.load:
 * vmaskmovps on AVX2, a masked move on AVX-512). */
LLVMValueRef masked_vload(CG *c, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef n)
{
    LLVMTypeRef tys[] = { vt, LLVMPointerTypeInContext(c->ctx, 0) };
    unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, tys, 2);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, tys, 2);
    unsigned w = LLVMGetVectorSize(vt);
    LLVMValueRef lane[PW];
    for (unsigned i = 0; i < w; i++)
        lane[i] = LLVMConstInt(c->i64, i, 0);
    LLVMTypeRef it = LLVMVectorType(c->i64, w);
    LLVMValueRef mask = LLVMBuildICmp(c->b, LLVMIntSLT, LLVMConstVector(lane, w), splat(c, it, n), "");
    LLVMValueRef args[] = { gep(c, c->f32, base, idx), LLVMConstInt(c->i32, 4, 0), mask, LLVMConstNull(vt) };
    return LLVMBuildCall2(c->b, fty, f, args, 4, "");
}
