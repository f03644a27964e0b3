/* model.h - a compiled model as a built translator carries it.
 *
 * `vamos build` emits one object file that defines, with PREFIX "vamos"
 * in a translator (--prefix with --lib),
 *
 *     const unsigned char PREFIX_blob[];            (64-byte aligned)
 *     const char PREFIX_cpu[];                      (vamos_cpu_check)
 *     int32_t PREFIX_encoder(void *const *buf, const int64_t *sym);
 *     int32_t PREFIX_decoder(void *const *buf, const int64_t *sym);
 *     int32_t PREFIX_prep(...), PREFIX_step(...);   (with a derived step)
 *     const vamos_linked_model PREFIX_linked;       (vamos/vamos.h: all of them)
 *
 * The blob holds the model's name, symbols, vocabularies, the node tables
 * of both graphs (what each buffer is and its symbolic shape) and the
 * weights. vamos_model_open() reads it into the structures below; the
 * runtime then runs the graphs and decodes. Everything is little-endian.
 *
 * Blob layout (all integers little-endian):
 *   "VAMOSBLB" u32 version u32 reserved  u64 weights_hash  u64 weights_offset
 *   str name;  u32 nsyms, nsyms x u32 role
 *   vocab src, vocab tgt:  u32 n, i32 eos bos unk pad, n x str, str bpe
 *                          (a subword vocabulary's file, runtime/bpe.h; "" if none)
 *   graph enc, dec:        u32 n, i32 output, u32 nslots, n x node
 *     node: u8 kind u8 dtype u8 rank u8 role, i32 sym, i32 param, i32 slot,
 *           rank x (i64 n, i32 sym)
 *   u32 has_step (2: its rows share one position, no continuous batching);
 *                 if not 0: u32 nstates, nstates x state, graph prep, step
 *     state: u8 rank u8 cache i32 batch_axis, rank x (i64 n, i32 sym)
 *   u32 nparams, nparams x (u64 offset from weights_offset, u64 bytes)
 *   (padding to a multiple of 64) weights
 * where str is u32 length + bytes (no NUL).
 *
 * A node's slot is the buffer its value lives in (-1 for weights and
 * states, whose `param` is then the weight's or state's index): the
 * compiler's memory plan (compiler/passes/plan.c) lets values whose lifetimes do
 * not overlap share a buffer. The runtime sizes the buffers for the
 * current batch and lengths and lays them out in one 64-byte aligned block.
 */
#ifndef VAMOS_MODEL_H
#define VAMOS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VAMOS_BLOB_VERSION 4
#define VAMOS_MAX_SYMS 8
#define VAMOS_BLOB_RANK 8

enum { VAMOS_NODE_COMPUTE, VAMOS_NODE_INPUT, VAMOS_NODE_PARAM, VAMOS_NODE_STATE };
enum { VAMOS_IN_TOKENS, VAMOS_IN_LENGTHS, VAMOS_IN_TENSOR };
enum { VAMOS_SYM_BATCH, VAMOS_SYM_SRC_LEN, VAMOS_SYM_TGT_LEN, VAMOS_SYM_STEP_POS };

typedef struct vamos_node {
    int kind, dtype, rank, role, sym, param, slot;
    int64_t dim[VAMOS_BLOB_RANK];
    int dsym[VAMOS_BLOB_RANK];   /* -1: constant dim[k] */
} vamos_node;

typedef struct vamos_graph {
    int n, output, nslots;
    vamos_node *nodes;
} vamos_graph;

/* A tensor a decoder step keeps between runs: a key/value cache (its
 * target-length dim is the cache length) or a per-sentence value. */
typedef struct vamos_state {
    int rank, cache, batch_axis;
    int64_t dim[VAMOS_BLOB_RANK];
    int dsym[VAMOS_BLOB_RANK];
} vamos_state;

typedef struct vamos_vocab {
    int n, eos, bos, unk, pad;
    char **words;                /* NUL-terminated copies */
    struct vamos_bpe *bpe;       /* subwords: tokenise and detokenise with it; NULL: words */
    int32_t *index;              /* words: a hash table of id + 1 (0: empty), index_mask + 1 slots; NULL: scan */
    uint32_t index_mask;
} vamos_vocab;

typedef int32_t (*vamos_kernel_fn)(void *const *buf, const int64_t *sym);

typedef struct vamos_model {
    char *name;
    uint64_t weights_hash;
    int nsyms, sym_role[VAMOS_MAX_SYMS];
    vamos_vocab src, tgt;
    vamos_graph enc, dec;
    int nparams;
    const float **params;        /* into the blob */
    vamos_kernel_fn run_enc, run_dec;
    /* incremental decoding: has_step, and then prep (once per batch) and
     * step (one word) over states */
    int has_step, nstates;
    vamos_state *states;
    vamos_graph prep, step;
    vamos_kernel_fn run_prep, run_step;
} vamos_model;

/* Parse a blob of `size` bytes (size may be 0: then the blob's own bounds
 * are trusted, as for the one linked into a translator). fns are the
 * generated encoder, decoder, prep and step (the last two may be NULL: then
 * decoding re-runs the decoder). Returns 0, or -1 with a message. */
int vamos_model_open(vamos_model *m, const unsigned char *blob, size_t size,
                     const vamos_kernel_fn fns[4], char *err, size_t errlen);
void vamos_model_close(vamos_model *m);

/* Can this CPU run code built for `spec` (a translator's vamos_cpu:
 * "native:" and LLVM's feature string, or an x86-64 level such as
 * "x86-64-v3"; see runtime/cpu.c)? 0, or -1 with a message naming what
 * is missing. _with takes the test of one feature (tests). */
int vamos_cpu_check(const char *spec, char *err, size_t errlen);
int vamos_cpu_check_with(const char *spec, bool (*has)(const char *feature), char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
