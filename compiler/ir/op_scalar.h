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

/* The libm functions, named once: LIBM(exp) is expf for float, exp for
 * double (set below before each instantiation). */
#define F_POW(a, b) LIBM(pow)(a, b)
#define F_EXP(a) LIBM(exp)(a)
#define F_LOG(a) LIBM(log)(a)
#define F_SQRT(a) LIBM(sqrt)(a)
#define F_TANH(a) LIBM(tanh)(a)
#define F_ERF(a) LIBM(erf)(a)
#define F_SIN(a) LIBM(sin)(a)
#define F_COS(a) LIBM(cos)(a)
#define F_FLOOR(a) LIBM(floor)(a)
#define F_ABS(a) LIBM(fabs)(a)
#define NONE x
#define OP_SCALAR_CASE(id, text, oper, arity, kind, attr, by, formula) \
    case OP_##id:                                                    \
        return (formula);
/* The function of an elementwise op (kind OPK_UNARY or OPK_BINARY; y is
 * ignored by unary ops). Other ops return x. */
#define OP_SCALAR_FUNCTION(name, T)             \
    static inline T name(Op op, T x, T y)       \
    {                                           \
        switch (op) {                           \
            VAMOS_OPS(OP_SCALAR_CASE)           \
        case OP_COUNT:                          \
            break;                              \
        }                                       \
        (void)y;                                \
        return x;                               \
    }

#define LIBM(fn) fn##f
OP_SCALAR_FUNCTION(op_scalar_f32, float)
#undef LIBM
#define LIBM(fn) fn
OP_SCALAR_FUNCTION(op_scalar_f64, double)
#undef LIBM

#undef OP_SCALAR_FUNCTION
#undef OP_SCALAR_CASE
#undef NONE
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
#undef F_MAX_NAN
#undef F_ADD
#undef F_SUB
#undef F_MUL
#undef F_DIV
#undef F_GE
#undef F_NEG
#undef F_ONE

#endif
