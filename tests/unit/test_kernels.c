/* test_kernels.c - reference kernels against hand-computed values.
 *
 * Every expected value below was worked out by hand (shown in comments
 * where not obvious). Exact arithmetic is compared exactly; libm results
 * use an absolute tolerance of 1e-6 (TOL_LIBM).
 */
#include <criterion/criterion.h>
#include <math.h>

#include "kernels.h"

#define TOL_LIBM 1e-6f
#define N_OF(arr) ((int)(sizeof(arr) / sizeof((arr)[0])))

/* Compare got[i] to want[i]: NaN must match NaN, inf must match exactly. */
static void expect_arr(const float *got, const float *want, int n, float tol)
{
    for (int i = 0; i < n; i++) {
        if (isnan(want[i]))
            cr_assert(isnan(got[i]), "[%d]: got %g, want nan", i, (double)got[i]);
        else if (isinf(want[i]) || tol == 0.0f)
            cr_assert(got[i] == want[i], "[%d]: got %.9g, want %.9g", i,
                      (double)got[i], (double)want[i]);
        else
            cr_assert(fabsf(got[i] - want[i]) <= tol, "[%d]: got %.9g, want %.9g",
                      i, (double)got[i], (double)want[i]);
    }
}

/* ---- rt_numel ---- */

Test(numel, ranks)
{
    rt_shape s0 = { 0, { 0 } }, s3 = { 3, { 2, 3, 4 } }, sz = { 2, { 5, 0 } };
    cr_assert_eq(rt_numel(&s0), 1);
    cr_assert_eq(rt_numel(&s3), 24);
    cr_assert_eq(rt_numel(&sz), 0);
}

/* ---- rt_binary ---- */

Test(binary, add_same_shape)
{
    float a[] = { 1, 2, 3, 4 }, b[] = { 10, 20, 30, 40 }, out[4];
    rt_shape s = { 2, { 2, 2 } };
    float want[] = { 11, 22, 33, 44 };
    rt_binary(OP_ADD, a, &s, b, &s, out, &s);
    expect_arr(out, want, 4, 0);
}

Test(binary, add_broadcast_213_plus_3)
{
    /* (2,1,3) + (3) -> (2,1,3) */
    float a[] = { 1, 2, 3, 4, 5, 6 }, b[] = { 10, 20, 30 }, out[6];
    rt_shape as = { 3, { 2, 1, 3 } }, bs = { 1, { 3 } };
    float want[] = { 11, 22, 33, 14, 25, 36 };
    rt_binary(OP_ADD, a, &as, b, &bs, out, &as);
    expect_arr(out, want, 6, 0);
}

Test(binary, add_broadcast_both_stretch)
{
    /* (2,1,3) + (2,1) -> (2,2,3): out[i][j][k] = a[i][0][k] + b[j][0] */
    float a[] = { 1, 2, 3, 4, 5, 6 }, b[] = { 100, 200 }, out[12];
    rt_shape as = { 3, { 2, 1, 3 } }, bs = { 2, { 2, 1 } };
    rt_shape os = { 3, { 2, 2, 3 } };
    float want[] = { 101, 102, 103, 201, 202, 203,
                     104, 105, 106, 204, 205, 206 };
    rt_binary(OP_ADD, a, &as, b, &bs, out, &os);
    expect_arr(out, want, 12, 0);
}

Test(binary, mul_by_scalar_rank0)
{
    float a[] = { 1, -2, 3, 0.5f }, b[] = { 3 }, out[4];
    rt_shape as = { 2, { 2, 2 } }, bs = { 0, { 0 } };
    float want[] = { 3, -6, 9, 1.5f };
    rt_binary(OP_MUL, a, &as, b, &bs, out, &as);
    expect_arr(out, want, 4, 0);
}

Test(binary, sub_operand_order_with_broadcast)
{
    /* (1,3) - (2,1) -> (2,3): out[i][j] = a[j] - b[i] */
    float a[] = { 1, 2, 3 }, b[] = { 10, 20 }, out[6];
    rt_shape as = { 2, { 1, 3 } }, bs = { 2, { 2, 1 } }, os = { 2, { 2, 3 } };
    float want[] = { -9, -8, -7, -19, -18, -17 };
    rt_binary(OP_SUB, a, &as, b, &bs, out, &os);
    expect_arr(out, want, 6, 0);
}

Test(binary, div)
{
    float a[] = { 1, 3, 1, -6 }, b[] = { 2, -4, 0, 3 }, out[4];
    rt_shape s = { 1, { 4 } };
    float want[] = { 0.5f, -0.75f, INFINITY, -2 };
    rt_binary(OP_DIV, a, &s, b, &s, out, &s);
    expect_arr(out, want, 4, 0);
}

Test(binary, maximum_propagates_nan)
{
    float a[] = { 1, NAN, 3, -INFINITY, 5 }, b[] = { 2, 1, NAN, -INFINITY, -5 };
    float out[5];
    rt_shape s = { 1, { 5 } };
    float want[] = { 2, NAN, NAN, -INFINITY, 5 };
    rt_binary(OP_MAXIMUM, a, &s, b, &s, out, &s);
    expect_arr(out, want, 5, 0);
}

Test(binary, pow)
{
    float a[] = { 2, 4, 9, 2 }, b[] = { 3, 0.5f, 0, -1 }, out[4];
    rt_shape s = { 1, { 4 } };
    float want[] = { 8, 2, 1, 0.5f };
    rt_binary(OP_POW, a, &s, b, &s, out, &s);
    expect_arr(out, want, 4, TOL_LIBM);
}

/* ---- rt_unary ---- */

/* Run one unary op on in[] and compare with want[]. */
static void check_unary(Op op, const float *in, const float *want, int n,
                        float tol)
{
    float out[8];
    cr_assert(n <= 8);
    rt_unary(op, in, n, out);
    expect_arr(out, want, n, tol);
}

Test(unary, exact_ops)
{
    float x[] = { 2, -0.5f, 0 };
    float neg[] = { -2, 0.5f, -0.0f };
    check_unary(OP_NEG, x, neg, 3, 0);
    float f[] = { -1.5f, 2.7f, 3, -0.2f };
    float fl[] = { -2, 2, 3, -1 };
    check_unary(OP_FLOOR, f, fl, 4, 0);
    float ab[] = { 1.5f, 2.7f, 3, 0.2f };
    check_unary(OP_ABS, f, ab, 4, 0);
    float s[] = { 4, 0.25f, 0, -1 };
    float sq[] = { 2, 0.5f, 0, NAN };
    check_unary(OP_SQRT, s, sq, 4, 0);
    float rs[] = { 0.5f, 2, INFINITY, NAN };
    check_unary(OP_RSQRT, s, rs, 4, 0);
}

Test(unary, exp_log)
{
    /* exp(0)=1, exp(1)=2.718281828, exp(-1)=0.3678794412, exp(-inf)=0 */
    float x[] = { 0, 1, -1, -INFINITY };
    float e[] = { 1, 2.7182818f, 0.36787944f, 0 };
    check_unary(OP_EXP, x, e, 4, TOL_LIBM);
    /* log(1)=0, log(2)=0.6931471806, log(0)=-inf, log(-1)=nan */
    float l[] = { 1, 2, 0, -1 };
    float le[] = { 0, 0.69314718f, -INFINITY, NAN };
    check_unary(OP_LOG, l, le, 4, TOL_LIBM);
}

Test(unary, tanh_erf)
{
    /* tanh(0.5)=0.4621171573, tanh(1)=0.7615941560, tanh(-1) = -tanh(1) */
    float x[] = { 0, 0.5f, 1, -1 };
    float t[] = { 0, 0.46211716f, 0.76159416f, -0.76159416f };
    check_unary(OP_TANH, x, t, 4, TOL_LIBM);
    /* erf(0.5)=0.5204998778, erf(1)=0.8427007929, erf(2)=0.9953222650 */
    float ex[] = { 0, 0.5f, 1, -1, 2 };
    float er[] = { 0, 0.52049988f, 0.84270079f, -0.84270079f, 0.99532227f };
    check_unary(OP_ERF, ex, er, 5, TOL_LIBM);
}

Test(unary, sin_cos)
{
    /* sin(1)=0.8414709848, cos(1)=0.5403023059, sin(pi/2)=1, cos(pi)=-1 */
    float x[] = { 0, 1, 1.57079633f, 3.14159265f };
    float s[] = { 0, 0.84147098f, 1, 0 };
    float c[] = { 1, 0.54030231f, 0, -1 };
    check_unary(OP_SIN, x, s, 4, TOL_LIBM);
    check_unary(OP_COS, x, c, 4, TOL_LIBM);
}

/* ---- rt_reduce ---- */

/* a[i][j][k] = 6i + 2j + k, shape (2,3,2) */
static const float seq232[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
/* shape (2,3,2), non-monotone */
static const float mix232[] = { 1, -2, 5, 0, 3, 4, -1, -1, -3, 8, 2, -7 };

Test(reduce, sum_each_axis)
{
    rt_shape s = { 3, { 2, 3, 2 } };
    float out[6];
    float ax0[] = { 6, 8, 10, 12, 14, 16 };   /* (1,3,2) */
    float ax1[] = { 6, 9, 24, 27 };           /* (2,1,2): 0+2+4, 1+3+5, ... */
    float ax2[] = { 1, 5, 9, 13, 17, 21 };    /* (2,3,1) */
    rt_reduce(OP_SUM, seq232, &s, 0, out);
    expect_arr(out, ax0, 6, 0);
    rt_reduce(OP_SUM, seq232, &s, 1, out);
    expect_arr(out, ax1, 4, 0);
    rt_reduce(OP_SUM, seq232, &s, 2, out);
    expect_arr(out, ax2, 6, 0);
}

Test(reduce, max_each_axis)
{
    rt_shape s = { 3, { 2, 3, 2 } };
    float out[6];
    float ax0[] = { 1, -1, 5, 8, 3, 4 };
    float ax1[] = { 5, 4, 2, 8 };
    float ax2[] = { 1, 5, 4, -1, 8, 2 };
    rt_reduce(OP_MAX, mix232, &s, 0, out);
    expect_arr(out, ax0, 6, 0);
    rt_reduce(OP_MAX, mix232, &s, 1, out);
    expect_arr(out, ax1, 4, 0);
    rt_reduce(OP_MAX, mix232, &s, 2, out);
    expect_arr(out, ax2, 6, 0);
}

Test(reduce, mean_each_axis)
{
    rt_shape s = { 3, { 2, 3, 2 } };
    float out[6];
    float ax0[] = { 0, -1.5f, 1, 4, 2.5f, -1.5f };
    float ax1[] = { 3, 2.0f / 3, -2.0f / 3, 0 };  /* (1+5+3)/3, (-2+0+4)/3, ... */
    float ax2[] = { -0.5f, 2.5f, 3.5f, -1, 2.5f, -2.5f };
    rt_reduce(OP_MEAN, mix232, &s, 0, out);
    expect_arr(out, ax0, 6, 0);
    rt_reduce(OP_MEAN, mix232, &s, 1, out);
    expect_arr(out, ax1, 4, TOL_LIBM);
    rt_reduce(OP_MEAN, mix232, &s, 2, out);
    expect_arr(out, ax2, 6, 0);
}

Test(reduce, max_nan_and_neg_inf)
{
    /* rows: NaN in middle, NaN first, NaN last, all -inf */
    float a[] = { 1, NAN, 2, NAN, 1, 0, 1, 2, NAN,
                  -INFINITY, -INFINITY, -INFINITY };
    rt_shape s = { 2, { 4, 3 } };
    float out[4];
    float want[] = { NAN, NAN, NAN, -INFINITY };
    rt_reduce(OP_MAX, a, &s, 1, out);
    expect_arr(out, want, 4, 0);
}

Test(reduce, sum_is_float_in_index_order)
{
    /* float: (1e8 + 1) rounds to 1e8, then - 1e8 = 0 (double would give 1) */
    float a[] = { 1e8f, 1, -1e8f };
    rt_shape s = { 1, { 3 } };
    float out[1];
    rt_reduce(OP_SUM, a, &s, 0, out);
    cr_assert(out[0] == 0.0f, "got %g, want 0", (double)out[0]);
}

/* ---- rt_matmul ---- */

/* A (2,3) = [[1,2,3],[4,5,6]], B (3,2) = [[7,8],[9,10],[11,12]] */
static const float A23[] = { 1, 2, 3, 4, 5, 6 };
static const float B32[] = { 7, 8, 9, 10, 11, 12 };

Test(matmul, plain_2x3_at_3x2)
{
    /* [1*7+2*9+3*11, 1*8+2*10+3*12; 4*7+5*9+6*11, 4*8+5*10+6*12] */
    rt_shape as = { 2, { 2, 3 } }, bs = { 2, { 3, 2 } }, os = { 2, { 2, 2 } };
    float out[4], want[] = { 58, 64, 139, 154 };
    rt_matmul(A23, &as, B32, &bs, out, &os);
    expect_arr(out, want, 4, 0);
}

Test(matmul, batch_223_at_32)
{
    /* batch 0 = A23; batch 1 = [[-1,0,1],[2,-2,0.5]] -> [[4,4],[1.5,2]] */
    float a[] = { 1, 2, 3, 4, 5, 6, -1, 0, 1, 2, -2, 0.5f };
    rt_shape as = { 3, { 2, 2, 3 } }, bs = { 2, { 3, 2 } };
    rt_shape os = { 3, { 2, 2, 2 } };
    float out[8], want[] = { 58, 64, 139, 154, 4, 4, 1.5f, 2 };
    rt_matmul(a, &as, B32, &bs, out, &os);
    expect_arr(out, want, 8, 0);
}

Test(matmul, batch_123_at_432)
{
    /* a = [[1,0,0],[0,1,1]]: row 0 picks B row 0, row 1 = B row 1 + B row 2 */
    float a[] = { 1, 0, 0, 0, 1, 1 };
    float b[] = { 1, 2, 3, 4, 5, 6,
                  0, 1, 1, 0, 2, 2,
                  -1, 1, 2, -2, 0.5f, 0.25f,
                  10, 20, 30, 40, 50, 60 };
    rt_shape as = { 3, { 1, 2, 3 } }, bs = { 3, { 4, 3, 2 } };
    rt_shape os = { 3, { 4, 2, 2 } };
    float out[16];
    float want[] = { 1, 2, 8, 10,
                     0, 1, 3, 2,
                     -1, 1, 2.5f, -1.75f,
                     10, 20, 80, 100 };
    rt_matmul(a, &as, b, &bs, out, &os);
    expect_arr(out, want, 16, 0);
}

Test(matmul, both_sides_broadcast)
{
    /* a (2,1,1,2) @ b (3,2,1) -> (2,3,1,1): out[i][j] = a_i . b_j
     * a_0=[1,2], a_1=[3,4]; b_0=[1,1], b_1=[1,-1], b_2=[0,10] */
    float a[] = { 1, 2, 3, 4 }, b[] = { 1, 1, 1, -1, 0, 10 };
    rt_shape as = { 4, { 2, 1, 1, 2 } }, bs = { 3, { 3, 2, 1 } };
    rt_shape os = { 4, { 2, 3, 1, 1 } };
    float out[6], want[] = { 3, -1, 20, 7, -1, 40 };
    rt_matmul(a, &as, b, &bs, out, &os);
    expect_arr(out, want, 6, 0);
}

Test(matmul, float_accumulation_in_k_order)
{
    /* (1e8 + 1) - 1e8 in float is 0 */
    float a[] = { 1e8f, 1, -1e8f }, b[] = { 1, 1, 1 }, out[1];
    rt_shape as = { 2, { 1, 3 } }, bs = { 2, { 3, 1 } }, os = { 2, { 1, 1 } };
    rt_matmul(a, &as, b, &bs, out, &os);
    cr_assert(out[0] == 0.0f, "got %g, want 0", (double)out[0]);
}

/* ---- rt_transpose ---- */

Test(transpose, rank2)
{
    rt_shape s = { 2, { 2, 3 } };
    int perm[] = { 1, 0 };
    float out[6], want[] = { 1, 4, 2, 5, 3, 6 };
    rt_transpose(A23, &s, perm, out);
    expect_arr(out, want, 6, 0);
}

Test(transpose, rank3_perm_201)
{
    /* a (2,3,4), a[i][j][k] = 12i + 4j + k; out (4,2,3), out[k][i][j] = a[i][j][k] */
    float a[24], out[24];
    for (int i = 0; i < 24; i++)
        a[i] = (float)i;
    rt_shape s = { 3, { 2, 3, 4 } };
    int perm[] = { 2, 0, 1 };
    rt_transpose(a, &s, perm, out);
    cr_assert(out[0] == 0);   /* (k0,i0,j0) = a[0][0][0] */
    cr_assert(out[1] == 4);   /* (k0,i0,j1) = a[0][1][0] */
    cr_assert(out[3] == 12);  /* (k0,i1,j0) = a[1][0][0] */
    cr_assert(out[6] == 1);   /* (k1,i0,j0) = a[0][0][1] */
    cr_assert(out[10] == 17); /* (k1,i1,j1) = a[1][1][1] */
    cr_assert(out[23] == 23); /* (k3,i1,j2) = a[1][2][3] */
    float want[] = { 0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21,
                     2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23 };
    expect_arr(out, want, 24, 0);
}

Test(transpose, identity_perm)
{
    rt_shape s = { 2, { 2, 3 } };
    int perm[] = { 0, 1 };
    float out[6];
    rt_transpose(A23, &s, perm, out);
    expect_arr(out, A23, 6, 0);
}

/* ---- rt_gather ---- */

static const float table42[] = { 0, 1, 10, 11, 20, 21, 30, 31 }; /* (4,2) */

Test(gather, rows)
{
    int32_t idx[] = { 2, 0, 3, 2 };
    float out[8], want[] = { 20, 21, 0, 1, 30, 31, 20, 21 };
    int64_t bad = -7;
    cr_assert_eq(rt_gather(table42, 4, 2, idx, 4, out, &bad), 0);
    expect_arr(out, want, 8, 0);
    cr_assert_eq(bad, -7, "bad_pos touched on success");
}

Test(gather, out_of_range)
{
    int32_t too_big[] = { 1, 4, 0 }, negative[] = { 0, 3, -1 };
    float out[6];
    int64_t bad = -7;
    for (int i = 0; i < 6; i++)
        out[i] = 99;
    cr_assert_eq(rt_gather(table42, 4, 2, too_big, 3, out, &bad), -1);
    cr_assert_eq(bad, 1);
    cr_assert(out[2] == 99 && out[3] == 99 && out[4] == 99 && out[5] == 99,
              "rows at or after the bad index were written");
    cr_assert_eq(rt_gather(table42, 4, 2, negative, 3, out, &bad), -1);
    cr_assert_eq(bad, 2);
}

/* ---- masks, arange ---- */

Test(masks, causal_3)
{
    float out[9];
    float want[] = { 0, -INFINITY, -INFINITY,
                     0, 0, -INFINITY,
                     0, 0, 0 };
    rt_causal_mask(3, 3, 0, out);
    expect_arr(out, want, 9, 0);
}

/* the rows of a step at position 2 of a cache of 4 */
Test(masks, causal_from)
{
    float out[8];
    float want[] = { 0, 0, 0, -INFINITY,
                     0, 0, 0, 0 };
    rt_causal_mask(2, 4, 2, out);
    expect_arr(out, want, 8, 0);
}

Test(store, into_the_middle_axis)
{
    /* state [2, 3, 2], x [2, 1, 2]: row 0 written at index 1 of axis 1, row 1 at index 2 */
    float st[12] = { 0 }, x[] = { 1, 2, 3, 4 };
    float want[] = { 0, 0, 1, 2, 0, 0,
                     0, 0, 0, 0, 3, 4 };
    rt_shape ss = { 3, { 2, 3, 2 } };
    int32_t at[] = { 1, 2 }, bad[] = { 1, 3 };
    cr_assert_eq(rt_store(st, &ss, 1, at, false, x), -1);
    expect_arr(st, want, 12, 0);
    cr_assert_eq(rt_store(st, &ss, 1, bad, false, x), 1, "row 1's position 3 is outside the axis");
    expect_arr(st, want, 12, 0);
}

Test(masks, pad)
{
    int32_t len[] = { 2, 0, 3 };
    float out[9];
    float want[] = { 0, 0, -INFINITY,
                     -INFINITY, -INFINITY, -INFINITY,
                     0, 0, 0 };
    rt_pad_mask(len, 3, 3, out);
    expect_arr(out, want, 9, 0);
}

Test(arange, values)
{
    float out[5] = { 9, 9, 9, 9, 9 }, want[] = { 0, 1, 2, 3, 9 };
    rt_arange(4, 0, out);
    expect_arr(out, want, 5, 0);
    float want7[] = { 7, 8, 9, 3, 9 };
    rt_arange(3, 7, out);
    expect_arr(out, want7, 5, 0);
}
