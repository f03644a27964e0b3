/* decode.h - what the runtime's decoders share (internal: translate.c,
 * the batch decoders; stream.c, continuous batching). */
#ifndef VAMOS_RUNTIME_DECODE_H
#define VAMOS_RUNTIME_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "vamos/translate.h"

#define IN_MEMORY (1 + VAMOS_MAX_SYMS)   /* the encoder's output among a graph's inputs */
#define MAX_LANES 8

struct vamos_session {
    const vamos_model *m;
    vamos_arena enc, dec;      /* the encoder's output outlives decoder runs */
    vamos_session *lane[MAX_LANES];   /* the other lanes' sessions (translate_lanes), made when needed */
};

/* One batch of sentences for the decoder loop. */
typedef struct Batch {
    int B, N;                 /* sentences, longest source */
    int32_t *src, *slen;      /* [B, N] padded, [B] */
    int *max_len;             /* [B] target words allowed */
    int32_t **out;            /* [B][max_len] */
    int *count;               /* [B] words produced */
} Batch;

double vrt_now_ms(void);

/* How state k (with a batch axis) lies for sym, `rows` rows: `outer` runs
 * of `rows` row blocks of `block` bytes; within a row's block, `mid` runs
 * of `len` positions of `inner` bytes, of which the first `used` hold
 * anything (only a cache's target-length axis is filled as decoding goes:
 * the first `filled` positions; a state without one is used whole). */
typedef struct RowRuns { size_t outer, block, mid, len, used, inner; } RowRuns;
RowRuns vrt_row_runs(const vamos_model *m, int k, const int64_t *sym, int rows, int filled);

/* The model's symbol of a role (VAMOS_SYM_*). */
int vrt_sym_of(const vamos_model *m, int role);

/* Run the encoder over b: sym gets the batch and source length, in the
 * source lengths and (in[IN_MEMORY], *mem) the memory, which lives in the
 * session's encoder arena until the next encoder run. */
int vrt_run_encoder(vamos_session *s, const Batch *b, int64_t *sym, const void **in,
                    float **mem, vamos_stats *st, char *err, size_t errlen);

/* The index of x's largest of n (the first of equals). */
int vrt_argmax(const float *x, int n);

/* Rows kept when alive[r] says row r goes on: keep[0..n), n returned; a
 * kept row among the first n stays, a finished one's place is taken by a
 * kept row from the end (keep[i] >= i). */
int vrt_keep_rows(const bool *alive, int rows, int *keep);

/* The words ids[0..n) as a malloc'd line (NULL: out of memory). */
char *vrt_detokenize(const vamos_vocab *v, const int32_t *ids, int n);

#endif
