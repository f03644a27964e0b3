/* kernels.c - plain C reference kernels (the correctness oracle).
 *
 * Simple loops over dense row-major float tensors. All accumulation is in
 * float, in natural index order, like a naive reference implementation.
 */
#include "kernels.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>

#include "op_scalar.h"

/* Product of dims; 1 for rank 0. */
int64_t rt_numel(const rt_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dim[i];
    return n;
}

/* Map output linear index oi (shape os) to the linear index of a broadcast
 * input (shape is): shapes aligned on the right, dims of 1 and missing
 * leading dims stretch. */
static int64_t bcast_index(int64_t oi, const rt_shape *is, const rt_shape *os)
{
    int64_t ii = 0, stride = 1;
    int skip = os->rank - is->rank;
    for (int d = os->rank - 1; d >= 0; d--) {
        int64_t coord = oi % os->dim[d];
        oi /= os->dim[d];
        int id = d - skip;
        if (id < 0)
            continue;
        if (is->dim[id] != 1)
            ii += coord * stride;
        stride *= is->dim[id];
    }
    return ii;
}

/* Table rows gathered by idx; all indices checked before anything is written. */
int rt_gather(const float *table /* (V, D) */, int64_t V, int64_t D,
              const int32_t *idx /* (n) */, int64_t n,
              float *out /* (n, D) */, int64_t *bad_pos)
{
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= V) {
            *bad_pos = i;
            return -1;
        }
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < D; j++)
            out[i * D + j] = table[(int64_t)idx[i] * D + j];
    return 0;
}

/* Shape made of the leading rank-2 (batch) dims of s. */
static rt_shape batch_shape(const rt_shape *s)
{
    rt_shape b = { .rank = s->rank - 2 };
    for (int i = 0; i < b.rank; i++)
        b.dim[i] = s->dim[i];
    return b;
}

/* One (M, K) @ (K, N) product, float accumulation in k order. */
static void matmul_2d(const float *a /* (M, K) */, const float *b /* (K, N) */,
                      float *out /* (M, N) */, int64_t M, int64_t K, int64_t N)
{
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++)
                acc += a[m * K + k] * b[k * N + n];
            out[m * N + n] = acc;
        }
    }
}

/* Batched matmul with broadcast batch dims. */
void rt_matmul(const float *a /* (..., M, K) */, const rt_shape *as,
               const float *b /* (..., K, N) */, const rt_shape *bs,
               float *out /* (..., M, N) */, const rt_shape *os)
{
    int64_t M = as->dim[as->rank - 2], K = as->dim[as->rank - 1];
    int64_t N = bs->dim[bs->rank - 1];
    rt_shape ab = batch_shape(as), bb = batch_shape(bs), ob = batch_shape(os);
    int64_t nbatch = rt_numel(&ob);
    for (int64_t i = 0; i < nbatch; i++) {
        int64_t ai = bcast_index(i, &ab, &ob), bi = bcast_index(i, &bb, &ob);
        matmul_2d(a + ai * M * K, b + bi * K * N, out + i * M * N, M, K, N);
    }
}

/* Elementwise maximum; NaN in either operand gives NaN (the formula of
 * OP_MAXIMUM, for the fused kernels' references). */
static float max_nan(float x, float y)
{
    return op_scalar_f32(OP_MAXIMUM, x, y);
}

/* out = a (op) b, both broadcast to os. */
void rt_binary(Op op, const float *a, const rt_shape *as,
               const float *b, const rt_shape *bs, float *out,
               const rt_shape *os)
{
    int64_t n = rt_numel(os);
    for (int64_t i = 0; i < n; i++)
        out[i] = op_scalar_f32(op, a[bcast_index(i, as, os)], b[bcast_index(i, bs, os)]);
}

void rt_broadcast(const float *a, const rt_shape *as, float *out, const rt_shape *os)
{
    int64_t n = rt_numel(os);
    for (int64_t i = 0; i < n; i++)
        out[i] = a[bcast_index(i, as, os)];
}

/* out[i] = op(a[i]). */
void rt_unary(Op op, const float *a /* (n) */, int64_t n,
              float *out /* (n) */)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = op_scalar_f32(op, a[i], 0);
}

/* Reduce len values spaced by stride; float accumulation in index order. */
static float reduce1(Op op, const float *a, int64_t len, int64_t stride)
{
    float acc = (op == OP_MAX) ? -INFINITY : 0.0f;
    for (int64_t k = 0; k < len; k++) {
        float x = a[k * stride];
        if (op == OP_MAX)
            acc = (isnan(x) || x > acc) ? x : acc;
        else
            acc += x;
    }
    return (op == OP_MEAN) ? acc / (float)len : acc;
}

/* Reduce along axis, keeping it with size 1. */
void rt_reduce(Op op, const float *a /* as */, const rt_shape *as,
               int axis, float *out /* as with dim[axis] = 1 */)
{
    int64_t outer = 1, inner = 1, len = as->dim[axis];
    for (int d = 0; d < axis; d++)
        outer *= as->dim[d];
    for (int d = axis + 1; d < as->rank; d++)
        inner *= as->dim[d];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            out[o * inner + i] = reduce1(op, a + o * len * inner + i, len, inner);
}

/* out.dim[i] = a.dim[perm[i]]; gathers each output element from a. */
void rt_transpose(const float *a /* as */, const rt_shape *as, const int *perm,
                  float *out /* permuted as */)
{
    int64_t in_stride[RT_MAX_RANK], out_dim[RT_MAX_RANK];
    int64_t s = 1;
    for (int d = as->rank - 1; d >= 0; d--) {
        in_stride[d] = s;
        s *= as->dim[d];
    }
    for (int d = 0; d < as->rank; d++)
        out_dim[d] = as->dim[perm[d]];
    int64_t n = rt_numel(as);
    for (int64_t oi = 0; oi < n; oi++) {
        int64_t rem = oi, ii = 0;
        for (int d = as->rank - 1; d >= 0; d--) {
            ii += (rem % out_dim[d]) * in_stride[perm[d]];
            rem /= out_dim[d];
        }
        out[oi] = a[ii];
    }
}

/* out[i] = from + i. */
void rt_arange(int64_t n, int64_t from, float *out /* (n) */)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)(from + i);
}

/* 0 where col <= from + row, -inf after. */
void rt_causal_mask(int64_t rows, int64_t cols, int64_t from, float *out /* (rows, cols) */)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            out[r * cols + c] = (c <= from + r) ? 0.0f : -INFINITY;
}

/* x (size 1 along axis) written into state at index `at` of axis. */
int64_t rt_store(float *state, const rt_shape *ss, int axis, const int32_t *at, bool shared, const float *x)
{
    int64_t per_row = 1, inner = 1, len = ss->dim[axis];
    for (int i = shared ? 0 : 1; i < axis; i++)
        per_row *= ss->dim[i];
    for (int i = axis + 1; i < ss->rank; i++)
        inner *= ss->dim[i];
    int64_t rows = shared ? 1 : ss->dim[0];
    for (int64_t r = 0; r < rows; r++)
        if (at[r] < 0 || at[r] >= len)
            return r;
    for (int64_t o = 0; o < rows * per_row; o++)
        for (int64_t i = 0; i < inner; i++)
            state[(o * len + at[o / per_row]) * inner + i] = x[o * inner + i];
    return -1;
}

/* 0 where pos < lengths[i], -inf elsewhere. */
void rt_pad_mask(const int32_t *lengths /* (b) */, int64_t b, int64_t L,
                 float *out /* (b, L) */)
{
    for (int64_t i = 0; i < b; i++)
        for (int64_t p = 0; p < L; p++)
            out[i * L + p] = (p < lengths[i]) ? 0.0f : -INFINITY;
}

int64_t rt_packed_numel(int64_t K, int64_t N)
{
    return (N + VAMOS_PANEL - 1) / VAMOS_PANEL * VAMOS_PANEL * K;
}

void rt_pack_panels(const float *b, int64_t K, int64_t N, float *out)
{
    for (int64_t p = 0; p * VAMOS_PANEL < N; p++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < VAMOS_PANEL; j++) {
                int64_t col = p * VAMOS_PANEL + j;
                *out++ = col < N ? b[k * N + col] : 0.0f;
            }
}

float rt_row_quant(const float *x, int64_t K, int bits, float *mult, int *unsigned_row)
{
    float most = 0;
    bool finite = true, negative = false;
    for (int64_t k = 0; k < K; k++) {
        float v = fabsf(x[k]);
        finite &= v <= FLT_MAX;
        negative |= x[k] < 0;
        most = v > most ? v : most;
    }
    *unsigned_row = finite && !negative;
    float top = (float)((1 << (bits - !*unsigned_row)) - 1);   /* 255 or 127 (8 bits); 127 or 63 (7) */
    *mult = finite && most > 0 ? top / most : 0.0f;
    return finite ? most / top : NAN;
}

void rt_quantize_rows(const float *a, int64_t rows, int64_t K, int bits, float *out)
{
    for (int64_t r = 0; r < rows; r++) {
        int u;
        float mult, s = rt_row_quant(a + r * K, K, bits, &mult, &u);
        float hi = (float)((1 << (bits - !u)) - 1), lo = u ? 0.0f : -hi;
        for (int64_t k = 0; k < K; k++) {
            float q = rintf(a[r * K + k] * mult);
            q = fminf(fmaxf(q, lo), hi);   /* a NaN (x infinite, mult 0) becomes lo: s is NaN */
            out[r * K + k] = q * s;
        }
    }
}

/* One attention score: q row . kt column, scaled, plus the mask. */
static float att_score(const float *qrow, const float *km, int64_t D, int64_t T, int64_t j, float scale, int div,
                       float maskv)
{
    float dot = 0;
    for (int64_t d = 0; d < D; d++)
        dot += qrow[d] * km[d * T + j];
    return (div ? dot / scale : dot * scale) + maskv;
}

void rt_attention(const float *q, const rt_shape *qs, const float *kt, const rt_shape *ks,
                  const float *v, const rt_shape *vs, const float *mask, const rt_shape *ms,
                  float scale, int div, float *out, const rt_shape *os)
{
    int r = os->rank;
    int64_t S = qs->dim[r - 2], D = qs->dim[r - 1], T = ks->dim[r - 1], E = vs->dim[r - 1];
    rt_shape qb = batch_shape(qs), kb = batch_shape(ks), vb = batch_shape(vs), ob = batch_shape(os);
    /* the scores' shape [..., S, T], which the mask broadcasts to */
    rt_shape ss = *os;
    ss.dim[r - 1] = T;
    int64_t nbatch = rt_numel(&ob);
    for (int64_t bi = 0; bi < nbatch; bi++) {
        const float *qm = q + bcast_index(bi, &qb, &ob) * S * D;
        const float *km = kt + bcast_index(bi, &kb, &ob) * D * T;
        const float *vm = v + bcast_index(bi, &vb, &ob) * T * E;
        for (int64_t i = 0; i < S; i++) {
            /* softmax over the row of scores (recomputed, not stored:
             * reference kernels do not allocate), then times v */
            const float *qrow = qm + i * D;
            int64_t row = (bi * S + i) * T;
            float mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < T; j++)
                mx = max_nan(mx, att_score(qrow, km, D, T, j, scale, div, mask[bcast_index(row + j, ms, &ss)]));
            for (int64_t j = 0; j < T; j++)
                sum += expf(att_score(qrow, km, D, T, j, scale, div, mask[bcast_index(row + j, ms, &ss)]) - mx);
            float *orow = out + (bi * S + i) * E;
            for (int64_t e = 0; e < E; e++)
                orow[e] = 0;
            for (int64_t j = 0; j < T; j++) {
                float p = expf(att_score(qrow, km, D, T, j, scale, div, mask[bcast_index(row + j, ms, &ss)]) - mx) / sum;
                for (int64_t e = 0; e < E; e++)
                    orow[e] += p * vm[j * E + e];
            }
        }
    }
}

void rt_linear(const float *x, const rt_shape *xs, const float *w, const rt_shape *ws, const float *bias,
               int relu, float *out, const rt_shape *os)
{
    rt_matmul(x, xs, w, ws, out, os);
    int64_t n = rt_numel(os), N = os->dim[os->rank - 1];
    for (int64_t i = 0; i < n; i++) {
        float y = out[i] + bias[i % N];
        out[i] = relu ? max_nan(y, 0.0f) : y;
    }
}

void rt_layer_norm(const float *x, const float *r, int r_full, const float *gain, const float *bias,
                   int64_t rows, int64_t d, float eps, float *out)
{
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x + i * d, *rr = r_full ? r + i * d : r;
        float *o = out + i * d, sum = 0, sq = 0;
        for (int64_t j = 0; j < d; j++) {
            o[j] = xr[j] + rr[r_full ? j : 0];
            sum += o[j];
        }
        float mu = sum / (float)d;
        for (int64_t j = 0; j < d; j++)
            sq += (o[j] - mu) * (o[j] - mu);
        float rs = 1.0f / sqrtf(sq / (float)d + eps);
        for (int64_t j = 0; j < d; j++)
            o[j] = (o[j] - mu) * rs * gain[j] + bias[j];
    }
}

/* ------------------------------------------------------------ training */

/* A 64-bit mix (splitmix64's finaliser) of seed, salt and index: the top
 * 24 bits make the draw. Compiled dropout computes the same. */
float rt_dropout_u(uint64_t seed, uint32_t salt, uint64_t i)
{
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + (uint64_t)salt * 0xD1B54A32D192ED03ull + i;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

void rt_dropout(const float *x, int64_t n, float p, uint64_t seed, uint32_t salt, float *out)
{
    float scale = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++)
        out[i] = rt_dropout_u(seed, salt, (uint64_t)i) >= p ? x[i] * scale : 0.0f;
}

/* The row's maximum and log of the sum of exp(x - max). */
static void log_sum_exp(const float *x, int64_t V, float *mx, double *lse)
{
    float m = -INFINITY;
    for (int64_t j = 0; j < V; j++)
        m = x[j] > m ? x[j] : m;
    double s = 0;
    for (int64_t j = 0; j < V; j++)
        s += exp((double)x[j] - m);
    *mx = m;
    *lse = log(s);
}

void rt_xent(const float *x, int64_t rows, int64_t V, const int32_t *labels, float eps, float *loss)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * V;
        int32_t y = labels[r];
        if (y < 0 || y >= V) {
            loss[r] = 0;
            continue;
        }
        float m;
        double lse, sum = 0;
        log_sum_exp(row, V, &m, &lse);
        for (int64_t j = 0; j < V; j++)
            sum += (double)row[j] - m - lse;
        double logp_y = (double)row[y] - m - lse;
        loss[r] = (float)(-(1.0 - eps) * logp_y - eps / (double)V * sum);
    }
}

void rt_xent_grad(const float *x, int64_t rows, int64_t V, const int32_t *labels, float eps, float *out)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * V;
        float *o = out + r * V;
        int32_t y = labels[r];
        if (y < 0 || y >= V) {
            for (int64_t j = 0; j < V; j++)
                o[j] = 0;
            continue;
        }
        float m;
        double lse;
        log_sum_exp(row, V, &m, &lse);
        for (int64_t j = 0; j < V; j++)
            o[j] = (float)(exp((double)row[j] - m - lse) - eps / (double)V - (j == y ? 1.0 - eps : 0.0));
    }
}

void rt_scatter_add(const float *g, const int32_t *ids, int64_t n, int64_t V, int64_t D, float *out)
{
    for (int64_t k = 0; k < V * D; k++)
        out[k] = 0;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < V)
            for (int64_t k = 0; k < D; k++)
                out[ids[i] * D + k] += g[i * D + k];
}

void rt_matmul_tn(const float *a, const float *g, int64_t R, int64_t K, int64_t N, float *out)
{
    for (int64_t k = 0; k < K * N; k++)
        out[k] = 0;
    for (int64_t r = 0; r < R; r++)
        for (int64_t k = 0; k < K; k++) {
            float x = a[r * K + k];
            for (int64_t n = 0; n < N; n++)
                out[k * N + n] += x * g[r * N + n];
        }
}
