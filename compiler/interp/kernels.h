/* kernels.h - plain C reference kernels, one per primitive op.
 *
 * These are the oracle: obviously correct, unoptimised loops over dense,
 * row-major tensors with concrete shapes. The interpreter runs them; every
 * compiled kernel (later) is tested against them.
 *
 * Conventions: a shape is (rank, dim[]) with dim[0] outermost. Binary ops
 * broadcast numpy-style (shapes aligned on the right, a dim of 1 stretches).
 * Output buffers are allocated by the caller with the output shape that the
 * compiler inferred; kernels never allocate.
 */
#ifndef VAMOS_KERNELS_H
#define VAMOS_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops.h"

#define RT_MAX_RANK 8

typedef struct rt_shape {
    int rank;
    int64_t dim[RT_MAX_RANK];
} rt_shape;

int64_t rt_numel(const rt_shape *s);


/* out(..., D) = table[idx(...), :]; table (V, D), idx (n) flattened.
 * Returns -1 (and fills nothing further) if an index is outside [0, V),
 * storing the offending position in *bad_pos; 0 on success. */
int rt_gather(const float *table, int64_t V, int64_t D,
              const int32_t *idx, int64_t n, float *out, int64_t *bad_pos);

/* Training (compiler/autodiff.c). */

/* The dropout hash: a uniform draw in [0, 1) for element i of the
 * dropout node with this salt in the run with this seed. Compiled code
 * computes the same integer hash. */
float rt_dropout_u(uint64_t seed, uint32_t salt, uint64_t i);
/* out[i] = x[i] kept (scaled by 1 / (1 - p)) or dropped (0), i < n. */
void rt_dropout(const float *x, int64_t n, float p, uint64_t seed, uint32_t salt, float *out);
/* rows x V logits, one label per row (< 0: no target): loss[r] the
 * label-smoothed cross entropy of the row (0 without a target). */
void rt_xent(const float *x, int64_t rows, int64_t V, const int32_t *labels, float eps, float *loss);
/* its gradient with respect to x: softmax(x) - q per row (0 rows without a target). */
void rt_xent_grad(const float *x, int64_t rows, int64_t V, const int32_t *labels, float eps, float *out);
/* out [V, D] = 0, then out[ids[i], :] += g[i, :] for i < n (ids outside [0, V) skipped). */
void rt_scatter_add(const float *g, const int32_t *ids, int64_t n, int64_t V, int64_t D, float *out);

/* out [K, N] = a^T g: a [R, K], g [R, N] (R every leading position). */
void rt_matmul_tn(const float *a, const float *g, int64_t R, int64_t K, int64_t N, float *out);

/* Batched matmul: a (..., M, K) @ b (..., K, N) -> out (..., M, N), batch dims
 * broadcast (either operand may have fewer batch dims or dims of 1).
 * Both a and b have rank >= 2; out shape is the broadcast result. */
void rt_matmul(const float *a, const rt_shape *as, const float *b,
               const rt_shape *bs, float *out, const rt_shape *os);

/* out = a (op) b with broadcasting to os; op of kind OPK_BINARY, its
 * formula (ops.h) per element. */
void rt_binary(Op op, const float *a, const rt_shape *as,
               const float *b, const rt_shape *bs, float *out,
               const rt_shape *os);

/* out = a broadcast to os (a copy when the shapes are equal). */
void rt_broadcast(const float *a, const rt_shape *as, float *out, const rt_shape *os);

/* out[i] = op(a[i]) for i < n; op of kind OPK_UNARY. */
void rt_unary(Op op, const float *a, int64_t n, float *out);

/* Reduce along axis (0 <= axis < rank), keeping it with size 1: OP_SUM,
 * OP_MAX (NaN wins) or OP_MEAN. */
void rt_reduce(Op op, const float *a, const rt_shape *as, int axis,
               float *out);

/* out = a permuted: out.dim[i] = a.dim[perm[i]]. */
void rt_transpose(const float *a, const rt_shape *as, const int *perm,
                  float *out);

/* out[i] = from + i for i < n. */
void rt_arange(int64_t n, int64_t from, float *out);

/* Additive causal mask (rows, cols): 0 where col <= from + row, -inf after
 * (from 0 and rows = cols: the square mask of a whole sequence). */
void rt_causal_mask(int64_t rows, int64_t cols, int64_t from, float *out);

/* state's row r (its first dim) gets x's row r at at[r] along axis (shared:
 * all of x at at[0], the state having no batch); -1, or the first row whose
 * position is outside the axis (nothing written). */
int64_t rt_store(float *state, const rt_shape *ss, int axis, const int32_t *at, bool shared, const float *x);

/* Fused attention, as its unfused definition (lang/std/nn.vam) computes
 * it: out = softmax(q @ kt * scale + mask) @ v (q @ kt / scale when div),
 * softmax along the last axis. q (..., S, D), kt (..., D, T), v (..., T,
 * E), out (..., S, E), batch dims broadcast as in rt_matmul; the mask
 * broadcasts to (..., S, T). Like the unfused ops (and PyTorch), a key
 * whose mask is -inf still multiplies its value row by 0, so an inf or
 * NaN there makes the row NaN. The compiled kernel skips key blocks whose
 * mask is all -inf and never reads their values: there, it gives the
 * finite result of ignoring them. The two agree whenever masked values
 * are finite (tests keep non-finite values where every row sees them). */
void rt_attention(const float *q, const rt_shape *qs, const float *kt, const rt_shape *ks,
                  const float *v, const rt_shape *vs, const float *mask, const rt_shape *ms,
                  float scale, int div, float *out, const rt_shape *os);

/* Matmul with its epilogue, as the unfused ops compute it: out = x @ w +
 * bias (bias [N] along the last axis), then maximum(out, 0) if relu. */
void rt_linear(const float *x, const rt_shape *xs, const float *w, const rt_shape *ws, const float *bias,
               int relu, float *out, const rt_shape *os);

/* The standard library's layer_norm of h = x + r over rows of d: (h -
 * mean) * 1 / sqrt(mean((h - mean)^2) + eps) * gain + bias. r is a
 * residual of x's shape (r_full) or one value added everywhere. */
void rt_layer_norm(const float *x, const float *r, int r_full, const float *gain, const float *bias,
                   int64_t rows, int64_t d, float eps, float *out);

/* Pre-packed matmul weights. A weight b [K, N] that is only ever the right
 * operand of matmuls is stored in panels of VAMOS_PANEL columns: panel p
 * holds columns [p*P, p*P + P) as K rows of P contiguous floats, the last
 * panel padded with zeros. Generated matmul kernels then read each panel
 * as one contiguous stream (compiler/pack.c decides, codegen.c reads). */
#define VAMOS_PANEL 32
int64_t rt_packed_numel(int64_t K, int64_t N);
void rt_pack_panels(const float *b, int64_t K, int64_t N, float *out);

/* int8 activations, for products whose weights are stored for them
 * (pass_quantize with a8): row r of a [rows, K] is read as q * s, in
 * `bits` bits (8, or 7 for AVX2's vpmaddubsw, whose 16-bit sums of two
 * products stay below 2 * 127 * 127 < 32767 only so). A row with no
 * negative value (after a relu, say) is unsigned: s = its largest value
 * / top and q = rint(x * (top / largest)) in 0..top, top = 2^bits - 1;
 * another row has top = 2^(bits - 1) - 1 and q in -top..top. A row of
 * zeros has s = 0, and a row holding a NaN or an infinity s = NaN (its
 * products are NaN). rt_row_quant gives s, the multiplier (0 for those
 * two rows) and whether the row is unsigned, as the compiled kernels
 * (cg_int8.c) compute them bit for bit; rt_quantize_rows writes every
 * row as q * s, the values the integer products stand for. K is at most
 * A8_MAX_K, so that a sum of K products of 255 by 127 fits an int32. */
#define A8_MAX_K 16384
float rt_row_quant(const float *x, int64_t K, int bits, float *mult, int *unsigned_row);
void rt_quantize_rows(const float *a, int64_t rows, int64_t K, int bits, float *out);

/* Additive padding mask (b, L): 0 where pos < lengths[i], -inf elsewhere. */
void rt_pad_mask(const int32_t *lengths, int64_t b, int64_t L, float *out);

#endif
