/* translate.h - running a compiled model: graphs, tokens, decoding.
 *
 *     vamos_model m;                       // from vamos_model_open()
 *     vamos_session *s = vamos_session_new(&m);
 *     char *out = vamos_translate(s, "Let's go", &opts, &stats);  // "vamos"
 *     free(out);
 *     vamos_session_free(s);
 */
#ifndef VAMOS_TRANSLATE_H
#define VAMOS_TRANSLATE_H

#include <stdbool.h>
#include <stdint.h>

#include "vamos/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VAMOS_MAX_BEAM 64

typedef struct vamos_opts {
    int max_len;          /* target words; 0: 2 * source + 10 */
    int max_src;          /* source words kept (longer input is truncated); 0: 1024 */
    int beam;             /* beam size; 0 or 1: greedy; at most VAMOS_MAX_BEAM */
    double alpha;         /* length penalty ((5 + len) / 6)^alpha; 0: 0.6 */
    /* vamos_translate_batch sorts its sentences by length and decodes them
     * in batches of at most batch_rows sentences (0: VAMOS_DEFAULT_BATCH)
     * and at most batch_tokens source tokens, padding included (0: no
     * bound) */
    int batch_rows, batch_tokens;
    int refill;           /* vamos_translate_stream: percent of rows free before it takes more; 0: 100 */
} vamos_opts;

/* en-es on dev-ood: batches of 16 took 0.94-0.95x the time of 32 (Zen 4,
 * README); a model with wider layers may want more (--batch). */
#define VAMOS_DEFAULT_BATCH 16

#define VAMOS_STAT_POSITIONS 1024

typedef struct vamos_stats {
    long sentences, src_tokens, tgt_tokens;
    double enc_ms, dec_ms;
    /* decoder steps by target position (0: the step that gives the first
     * word): summed milliseconds and how many steps were timed */
    double step_ms[VAMOS_STAT_POSITIONS];
    long steps[VAMOS_STAT_POSITIONS];
} vamos_stats;

typedef struct vamos_session vamos_session;

vamos_session *vamos_session_new(const vamos_model *m);
void vamos_session_free(vamos_session *s);

/* Translate one sentence (any bytes; invalid UTF-8 and unknown words are
 * handled, see the README). Returns a malloc'd line without newline, or
 * NULL with a message in err. */
char *vamos_translate(vamos_session *s, const char *text, const vamos_opts *o,
                      vamos_stats *st, char *err, size_t errlen);

/* Translate count sentences: sorted by length and cut into padded
 * batches of o->batch_rows (and o->batch_tokens); beam search makes each
 * sentence's hypotheses rows of its batch. With several threads and at
 * least 4 batches per thread, the threads take whole batches in turn (a
 * session of their own each, made on first use and kept by s); else each
 * kernel is split between them. The same words either way. outs[i] gets
 * a malloc'd line. Returns 0, or -1 with a message (then no outs are set).
 * Not for two threads at once on one session. */
int vamos_translate_batch(vamos_session *s, const char *const *texts, int count, const vamos_opts *o,
                          vamos_stats *st, char **outs, char *err, size_t errlen);

/* Words of a vocabulary from text: whitespace-separated; exact match, then
 * lowercase, then <unk>; unknown words are dropped when there is no <unk>.
 * Returns the number of ids written (at most max). */
int vamos_tokenize(const vamos_vocab *v, const char *text, int32_t *ids, int max);

/* Index a word vocabulary's words by hash (v->index), so that
 * vamos_tokenize looks each up in O(1) instead of scanning all of them;
 * model loading does this. 0, or -1 when out of memory. */
int vamos_vocab_index(vamos_vocab *v);

/* The same over a word list; with `strict`, a word that is unknown when
 * there is no <unk> stops it: -1, with *bad pointing at the word in text. */
int vamos_tokenize_words(const char *const *words, int nwords, int unk, const char *text,
                         int32_t *ids, int max, bool strict, const char **bad);

/* The memory a graph runs in: one 64-byte aligned block, grown as needed
 * and reused across runs. buf[i] is node i's value after a run. */
typedef struct vamos_arena {
    unsigned char *base;
    size_t cap;
    void **buf;
    int nbuf;
    size_t *off;
    int noff;
} vamos_arena;

void vamos_arena_free(vamos_arena *a);

/* Run a graph in arena `a`: buffers laid out by the graph's memory plan for
 * sym, inputs copied in, weights pointed at. *out points at the output (*out_n
 * floats), valid until the arena runs again or is freed. Indexes of inputs:
 * 0 tokens, 1 + s the lengths of symbol s, 1 + VAMOS_MAX_SYMS the memory. */
int vamos_run_graph(const vamos_model *m, const vamos_graph *g, vamos_kernel_fn fn, vamos_arena *a,
                    const int64_t *sym, const void *const *inputs, void *const *states,
                    float **out, int64_t *out_n, char *err, size_t errlen);

/* Continuous batching (vamos.h's vamos_translate_feed): sentences join
 * the decoder's rows as they free up. Greedy (o->beam is not read); at
 * most o->batch_rows rows. */
struct vamos_feed;
#define VAMOS_STREAM_MAX_SRC 127   /* source tokens a row takes at most; longer goes in a batch of its own */
int vamos_translate_stream(vamos_session *s, const vamos_opts *o, const struct vamos_feed *f, char *err,
                           size_t errlen);

/* Bytes of state k for the symbols in sym. */
size_t vamos_state_bytes(const vamos_model *m, int k, const int64_t *sym);

#ifdef __cplusplus
}
#endif

#endif
