/* op_scalar.h - the formula column of VAMOS_OPS (ops.h) as C functions,
 * in float (the reference kernels, constant folding of graphs) and in
 * double (the language's numbers, builtins.c).
 *
 * Each F_* primitive is one C operation; a formula composes them
 * (rsqrt is F_DIV(F_ONE, F_SQRT(x))). codegen/cg_elementwise.c defines the
 * same primitives as LLVM instructions, so every backend computes the
 * one formula. */
#ifndef VAMOS_OP_SCALAR_H
#define VAMOS_OP_SCALAR_H

#include <math.h>

#include "ops.h"

/* maximum: NaN in either operand gives NaN; else the larger (y on ties,
 * as the compiled select(x > y, x, y) does). */
#define F_MAX_NAN(a, b) (isnan(a) ? (a) : isnan(b) ? (b) : (a) > (b) ? (a) : (b))
#define F_ADD(a, b) ((a) + (b))
#define F_SUB(a, b) ((a) - (b))
#define F_MUL(a, b) ((a) * (b))
#define F_DIV(a, b) ((a) / (b))
#define F_GE(a, b) ((a) >= (b) ? 1 : 0)
#define F_NEG(a) (-(a))
#define F_ONE 1

/* The function of an elementwise op (kind OPK_UNARY or OPK_BINARY; y is
 * ignored by unary ops). Other ops return x. */
static inline float op_scalar_f32(Op op, float x, float y)
{
#define F_POW(a, b) powf(a, b)
#define F_EXP(a) expf(a)
#define F_LOG(a) logf(a)
#define F_SQRT(a) sqrtf(a)
#define F_TANH(a) tanhf(a)
#define F_ERF(a) erff(a)
#define F_SIN(a) sinf(a)
#define F_COS(a) cosf(a)
#define F_FLOOR(a) floorf(a)
#define F_ABS(a) fabsf(a)
#define NONE x
    switch (op) {
#define X(id, text, oper, arity, kind, attr, by, formula) case OP_##id: return (float)(formula);
        VAMOS_OPS(X)
#undef X
    case OP_COUNT:
        break;
    }
    (void)y;
    return x;
#undef F_POW
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

static inline double op_scalar_f64(Op op, double x, double y)
{
#define F_POW(a, b) pow(a, b)
#define F_EXP(a) exp(a)
#define F_LOG(a) log(a)
#define F_SQRT(a) sqrt(a)
#define F_TANH(a) tanh(a)
#define F_ERF(a) erf(a)
#define F_SIN(a) sin(a)
#define F_COS(a) cos(a)
#define F_FLOOR(a) floor(a)
#define F_ABS(a) fabs(a)
#define NONE x
    switch (op) {
#define X(id, text, oper, arity, kind, attr, by, formula) case OP_##id: return (double)(formula);
        VAMOS_OPS(X)
#undef X
    case OP_COUNT:
        break;
    }
    (void)y;
    return x;
#undef F_POW
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

#endif
