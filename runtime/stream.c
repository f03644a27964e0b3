/* stream.c - continuous batching: sentences join a running greedy decoder
 * as its rows free up (vamos.h's vamos_translate_feed; vamos serve).
 *
 * A batch decoded start to end (translate.c) runs as long as its longest
 * sentence, its rows emptying as the others end; a server's requests do
 * not come sorted by length. Here the decoder keeps up to R rows, each a
 * sentence at a position of its own (the step reads each row's position,
 * incremental.c), and refills them as they free:
 *
 *   1. admit, once o->refill percent of the rows are free (default 100:
 *      all): the sentences waiting, up to the free rows, sorted by length
 *      and encoded in groups of similar lengths (at most PAD_SLACK
 *      padding); prep makes their per-sentence states, which are copied
 *      into the free rows;
 *   2. one step for every row; each row's best word is appended;
 *   3. a row whose sentence ended hands its translation back, and its
 *      place is taken by the last row (vrt_keep_rows).
 *
 * Admitting a few sentences at every step cost more than it gained: the
 * encoder, run on one or two sentences at a time (or on several of
 * random lengths, padded), took 1.5x its time in sorted batches, while a
 * step's time per row is the same at 16 rows as at 32. en-es on dev-ood,
 * one thread, Zen 4: every step 0.78x the sentences/s of
 * vamos_translate_lines; half the rows and groups by length, 0.80-0.89x
 * (its batches are sorted over the whole input). Under vamos serve's
 * load (serve_bench, 64 clients, 15 s runs in turn) refilling only
 * empty rows was level or better: 862-874 sentences/s and p99 117 ms,
 * against 846-847 and 181-184 ms at half the rows and 829-848 and
 * 170-173 ms at three quarters; at 16 clients 753-783 and 41-44 ms
 * against 744 and 58-59 ms. The rows then drain to the longest
 * sentence, whose last steps run alone and fast, and the next refill
 * takes all that waited, sorted.
 *
 * The rows' states are laid out for R rows, sources of up to 31 tokens
 * and targets of twice that + 10 (63 source tokens: 0.80-0.82x, the
 * attention reading more masked keys). A longer sentence grows the
 * layout, 32 source tokens at a time up to VAMOS_STREAM_MAX_SRC, the rows
 * decoding copied over; it shrinks back once the rows fit a smaller one. A step reads
 * the first `active` rows (every state has the batch as its first dim),
 * and the masks hide what a row does not hold (cache positions past its
 * own, source positions past its length). prep runs on the sentences
 * admitted with one source position more than the longest, memory 0
 * there: a padding position for every one of them, whose states are
 * repeated into the rest of a row's source positions (so a source mask
 * hides those, as padding); a layout grown repeats a row's last source
 * position (padding) the same way.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vamos/translate.h"
#include "vamos/vamos.h"
#include "decode.h"

#define BASE_SRC 31                    /* source tokens a row takes at first */
#define MAX_SRC VAMOS_STREAM_MAX_SRC   /* ... and at most, the layout grown */
#define TGT_OF(src) (2 * (src) + 10)   /* target words a row takes, for a source length */
#define PAD_SLACK 1.15   /* a group of sentences encoded together: at most this much padding */

typedef struct Row {
    void *tag;
    int32_t *out;
    int count, max_len;
} Row;

typedef struct Stream {
    vamos_session *s;
    const vamos_model *m;
    const vamos_opts *o;
    const vamos_feed *f;
    int R, active, sb, sn, sm, sp, start;
    int src;                              /* source tokens a row takes now: BASE_SRC .. MAX_SRC */
    int64_t sym[VAMOS_MAX_SYMS];          /* the rows' layout: R rows, src + 1, TGT_OF(src) */
    void **states, **fresh;               /* the rows'; prep's for the sentences admitted */
    size_t *cap;                          /* per state, the bytes states[k] and fresh[k] have room for */
    bool tables;                          /* the batch-less states copied from fresh */
    bool *fill;                           /* per state: a mask (it holds -inf), whose padding is repeated */
    bool oom;                             /* take() had no memory: stop, and say so */
    bool masks_known;                     /* fill found, at the first admission */
    Row *rows;
    int32_t *last, *tlen, *pos, *slen, *keep;
    bool *alive;
} Stream;

/* Whether the step can run rows at positions of their own over states
 * laid out for more rows than it runs: every state with a batch has it
 * first, and the step reads no input the rows would have to share. */
static bool streamable(const vamos_model *m, const char **why)
{
    *why = !m->has_step ? "the model has no one-word step"
         : m->has_step == 2 ? "the model's step has one position for all rows" : NULL;
    for (int k = 0; !*why && k < m->nstates; k++)
        if (m->states[k].batch_axis > 0)
            *why = "a decoder state whose batch is not its first dim";
    for (int i = 0; !*why && i < m->step.n; i++)
        if (m->step.nodes[i].kind == VAMOS_NODE_INPUT && m->step.nodes[i].role != VAMOS_IN_TOKENS &&
            m->step.nodes[i].role != VAMOS_IN_LENGTHS)
            *why = "the step reads the encoder's output";
    return !*why;
}

static size_t dims_of(const vamos_state *st, const int64_t *sym, int64_t *dim)
{
    size_t n = 1;
    for (int k = 0; k < st->rank; k++)
        n *= (size_t)(dim[k] = st->dsym[k] >= 0 ? sym[st->dsym[k]] : st->dim[k]);
    return n;
}

/* dst (dims td) = src (dims fd), over dims from..r-1 of r: where a dim of
 * dst is longer, its positions past src's repeat src's last (fill), or
 * keep what they hold. dst and src may be one buffer (a layout changed in
 * place; every dim grows, or every dim shrinks): the runs go backward when
 * dst is the bigger, each then at or after its source, else forward. */
static void copy_nd(float *dst, const int64_t *td, const float *src, const int64_t *fd, int from, int r, bool fill)
{
    int64_t idx[VAMOS_BLOB_RANK] = { 0 };
    int64_t inner = td[r - 1], have = fd[r - 1] < inner ? fd[r - 1] : inner;
    bool back = td[r - 1] > fd[r - 1];
    for (int d = from; d < r - 1; d++)
        back = back || td[d] > fd[d];
    for (int d = from; back && d < r - 1; d++)
        idx[d] = td[d] - 1;
    for (;;) {   /* over the indexes of dims from..r-2, the last dim a run */
        size_t fo = 0, to = 0;
        bool past = false;   /* a position past src's in some dim */
        for (int d = from; d < r - 1; d++) {
            int64_t i = idx[d] < fd[d] ? idx[d] : fd[d] - 1;
            past = past || idx[d] >= fd[d];
            fo = fo * (size_t)fd[d] + (size_t)i;
            to = to * (size_t)td[d] + (size_t)idx[d];
        }
        float *b = dst + to * (size_t)inner;
        if (!past || fill) {
            memmove(b, src + fo * (size_t)fd[r - 1], (size_t)have * sizeof *b);
            for (int64_t j = have; fill && j < inner; j++)
                b[j] = b[have - 1];
        }
        int d = r - 2;
        while (d >= from && idx[d] == (back ? 0 : td[d] - 1)) {
            idx[d] = back ? td[d] - 1 : 0;
            d--;
        }
        if (d < from)
            break;
        idx[d] += back ? -1 : 1;
    }
}

/* Row `from` of state k (its first dim the batch) laid out for fsym into
 * row `to` of `into`, laid out for tsym (copy_nd). */
static void copy_row(const vamos_state *st, void *into, const int64_t *tsym, const void *fbase, const int64_t *fsym,
                     int from, int to, bool fill)
{
    int64_t fd[VAMOS_BLOB_RANK], td[VAMOS_BLOB_RANK];
    size_t fall = dims_of(st, fsym, fd), tall = dims_of(st, tsym, td);
    const float *src = (const float *)fbase + fall / (size_t)fd[0] * (size_t)from;
    float *dst = (float *)into + tall / (size_t)td[0] * (size_t)to;
    if (st->rank == 1)   /* one value a row */
        *dst = *src;
    else
        copy_nd(dst, td, src, fd, 1, st->rank, fill);
}

/* Row `from` to row `to` of every state with a batch (a cache: only the
 * `filled` positions a row holds). */
static void move_row(Stream *S, int from, int to, int filled)
{
    for (int k = 0; k < S->m->nstates; k++) {
        if (S->m->states[k].batch_axis < 0)
            continue;
        RowRuns r = vrt_row_runs(S->m, k, S->sym, S->R, filled);   /* outer 1: the batch is first */
        unsigned char *p = S->states[k];
        for (size_t j = 0; j < r.mid; j++)
            memcpy(p + r.block * (size_t)to + j * r.len * r.inner, p + r.block * (size_t)from + j * r.len * r.inner,
                   r.used * r.inner);
    }
    S->rows[to] = S->rows[from];
    S->slen[to] = S->slen[from];
}

/* The rows' states, laid out for sources of up to src tokens (bigger or
 * smaller: the rows decoding must fit it), in place: a buffer grows to
 * the biggest layout it has held and keeps that room (given back and
 * taken anew, pages cost a fault each at every change: 0.79x the
 * translator under serve_bench's load; freed and allocated again through
 * malloc, the server's memory grew 9 MB over 100,000 requests). A mask's
 * new source positions repeat its last (padding); other states' new
 * positions hold what was there (masked: old values or zeros). The
 * position tables are cut or repeated the same way (the rows decoding read
 * only their own positions of them), and are made anew at the next
 * admit. 0, or -1 (out of memory: the layout is as it was). */
static int relayout(Stream *S, int src)
{
    const vamos_model *m = S->m;
    int64_t sym[VAMOS_MAX_SYMS];
    memcpy(sym, S->sym, sizeof sym);
    sym[S->sn] = src + 1, sym[S->sm] = TGT_OF(src);
    for (int k = 0; k < m->nstates; k++) {
        size_t need = vamos_state_bytes(m, k, sym) + 64;
        if (need <= S->cap[k])
            continue;
        unsigned char *p = realloc(S->states[k], need), *q = NULL;
        if (p) {
            memset(p + S->cap[k], 0, need - S->cap[k]);   /* no NaN where a mask hides a key */
            S->states[k] = p;
        }
        if (p && !m->states[k].cache && (q = realloc(S->fresh[k], need)))   /* prep's output: up to R sentences */
            S->fresh[k] = q;
        if (!p || (!m->states[k].cache && !q))
            return -1;
        S->cap[k] = need;
    }
    bool grow = src > S->src;
    for (int k = 0; S->src > 0 && k < m->nstates; k++) {   /* (none before the first layout) */
        const vamos_state *vs = &m->states[k];
        if (vs->batch_axis == 0) {
            for (int i = 0; i < S->active; i++) {
                int r = grow ? S->active - 1 - i : i;   /* each row at or after (before) its source */
                copy_row(vs, S->states[k], sym, S->states[k], S->sym, r, r, S->fill[k]);
            }
        } else {   /* a position table */
            int64_t fd[VAMOS_BLOB_RANK], td[VAMOS_BLOB_RANK];
            dims_of(vs, S->sym, fd);
            dims_of(vs, sym, td);
            copy_nd(S->states[k], td, S->states[k], fd, 0, vs->rank, true);
        }
    }
    memcpy(S->sym, sym, sizeof sym);
    S->src = src;
    S->tables = false;
    return 0;
}

static void finish(Stream *S, void *tag, char *out, const char *err)
{
    S->f->done(S->f->ctx, tag, out, out ? "" : err);
}

/* Sentences that do not fit a row (or every sentence, for a model that
 * cannot stream): a batch of their own. */
static void translate_apart(Stream *S, const char **texts, void **tags, int n)
{
    char **outs = calloc((size_t)n, sizeof *outs), err[256] = "out of memory";
    int rc = outs ? vamos_translate_batch(S->s, texts, n, S->o, NULL, outs, err, sizeof err) : -1;
    for (int i = 0; i < n; i++)
        finish(S, tags[i], rc == 0 ? outs[i] : NULL, err);
    free(outs);
}

/* Encode and prepare n sentences (ids[i], len[i] tokens, each 1..S->src)
 * into rows active.. */
static int admit(Stream *S, int32_t *const *ids, const int *len, void **tags, int n, char *err, size_t errlen)
{
    const vamos_model *m = S->m;
    Batch b = { .B = n };
    for (int i = 0; i < n; i++)
        b.N = len[i] > b.N ? len[i] : b.N;
    size_t width = (size_t)m->enc.nodes[m->enc.output].dim[2], N1 = (size_t)b.N + 1;
    b.src = malloc(sizeof *b.src * (size_t)n * (size_t)b.N);
    b.slen = malloc(sizeof *b.slen * (size_t)n);
    float *padded = calloc((size_t)n * N1 * width, sizeof *padded);
    if (!b.src || !b.slen || !padded) {
        free(b.src), free(b.slen), free(padded);
        snprintf(err, errlen, "out of memory for decoding");
        return -1;
    }
    int pad = m->src.pad >= 0 ? m->src.pad : 0;
    for (int i = 0; i < n; i++) {
        b.slen[i] = len[i];
        for (int k = 0; k < b.N; k++)
            b.src[(size_t)i * (size_t)b.N + (size_t)k] = k < len[i] ? ids[i][k] : pad;
    }
    int64_t sym[VAMOS_MAX_SYMS] = { 0 };
    const void *in[2 + VAMOS_MAX_SYMS] = { 0 };
    float *mem, *out;
    int64_t nout;
    int rc = vrt_run_encoder(S->s, &b, sym, in, &mem, NULL, err, errlen);
    /* prep sees a padding position more than the encoder gave (its
     * memory there 0, masked as padding): see the top */
    for (int i = 0; rc == 0 && i < n; i++)
        memcpy(padded + (size_t)i * N1 * width, mem + (size_t)i * (size_t)b.N * width, (size_t)b.N * width * sizeof *mem);
    in[IN_MEMORY] = padded;
    sym[S->sn] = (int64_t)N1;
    sym[S->sm] = S->sym[S->sm];   /* the position tables' length */
    if (rc == 0 && m->prep.n > 0)
        rc = vamos_run_graph(m, &m->prep, m->run_prep, &S->s->dec, sym, in, S->fresh, &out, &nout, err, errlen);
    for (int k = 0; rc == 0 && !S->masks_known && k < m->nstates; k++)   /* which are masks: row 0's padding shows */
        if (!m->states[k].cache && m->states[k].batch_axis == 0) {
            int64_t d[VAMOS_BLOB_RANK];
            size_t all = dims_of(&m->states[k], sym, d), block = all / (size_t)d[0];
            for (size_t e = 0; e < block && !S->fill[k]; e++)
                S->fill[k] = isinf(((const float *)S->fresh[k])[e]) && ((const float *)S->fresh[k])[e] < 0;
        }
    S->masks_known = S->masks_known || rc == 0;   /* every admission has a padding position */
    for (int i = 0; rc == 0 && i < n; i++) {
        int r = S->active + i;
        for (int k = 0; k < m->nstates; k++)
            if (!m->states[k].cache && m->states[k].batch_axis == 0)
                copy_row(&m->states[k], S->states[k], S->sym, S->fresh[k], sym, i, r, S->fill[k]);
        int max_len = S->o->max_len > 0 ? S->o->max_len : 2 * len[i] + 10;   /* take() saw it fits */
        S->rows[r] = (Row){ tags[i], malloc(sizeof(int32_t) * (size_t)(max_len + 1)), 0, max_len };
        S->slen[r] = len[i];
        if (!S->rows[r].out) {
            snprintf(err, errlen, "out of memory for decoding");
            rc = -1;
        }
    }
    for (int k = 0; rc == 0 && !S->tables && k < m->nstates; k++)
        if (!m->states[k].cache && m->states[k].batch_axis < 0)
            memcpy(S->states[k], S->fresh[k], vamos_state_bytes(m, k, S->sym));
    S->tables = S->tables || rc == 0;
    free(b.src), free(b.slen), free(padded);
    if (rc)
        for (int i = 0; i < n; i++)
            free(S->rows[S->active + i].out);
    else
        S->active += n;
    return rc;
}

/* Take what the feed has, up to the free rows: each sentence is
 * tokenised; empty ones are answered at once. A sentence longer than a
 * row takes grows the layout, by 32 tokens at a time up to MAX_SRC;
 * longer ones go apart (and any whose max_len a row cannot hold). */
static void take(Stream *S, bool wait, bool *stop)
{
    int R = S->R, room = R - S->active;
    const char **texts = malloc(sizeof *texts * (size_t)R), **apart = malloc(sizeof *apart * (size_t)R);
    void **tags = malloc(sizeof *tags * (size_t)R), **atags = malloc(sizeof *atags * (size_t)R);
    void **rtags = malloc(sizeof *rtags * (size_t)R);
    const char **rtexts = malloc(sizeof *rtexts * (size_t)R);
    int32_t **ids = calloc((size_t)R, sizeof *ids);
    int *len = malloc(sizeof *len * (size_t)R), n = 0, na = 0, nr = 0;
    char err[256];
    if (!texts || !apart || !tags || !atags || !rtags || !rtexts || !ids || !len) {
        *stop = S->oom = true;   /* no memory to take more: the rows decoding end, then an error */
        goto out;
    }
    n = S->f->next(S->f->ctx, room, wait, texts, tags);
    if (n < 0) {
        *stop = true;
        n = 0;
    }
    int longest = 0;
    for (int i = 0; i < n; i++) {
        int32_t *t = malloc(sizeof *t * (MAX_SRC + 1));
        int k = t ? vamos_tokenize(&S->m->src, texts[i], t, MAX_SRC + 1) : -1;
        int need = k;   /* the source a row must take, for k and the words allowed */
        while (S->o->max_len > 0 && need <= MAX_SRC && TGT_OF(need) < S->o->max_len)
            need++;
        if (k == 0) {
            free(t);
            char *empty = calloc(1, 1);
            finish(S, tags[i], empty, "out of memory");
        } else if (k < 0 || need > MAX_SRC) {
            free(t);
            apart[na] = texts[i], atags[na++] = tags[i];
        } else {
            ids[nr] = t, len[nr] = k, rtexts[nr] = texts[i], rtags[nr++] = tags[i];
            longest = need > longest ? need : longest;
        }
    }
    if (longest > S->src) {   /* a row must take longer sentences */
        int src = S->src;
        while (src < longest)
            src += BASE_SRC + 1;
        if (relayout(S, src < MAX_SRC ? src : MAX_SRC)) {   /* no memory for it: all apart */
            for (int i = 0; i < nr; i++) {
                apart[na] = rtexts[i], atags[na++] = rtags[i];
                free(ids[i]);
            }
            nr = 0;
        }
    }
    /* by length, in groups of similar lengths: the encoder pads a group
     * to its longest */
    for (int i = 1; i < nr; i++)
        for (int j = i; j > 0 && len[j - 1] > len[j]; j--) {
            int32_t *t = ids[j]; ids[j] = ids[j - 1]; ids[j - 1] = t;
            int l = len[j]; len[j] = len[j - 1]; len[j - 1] = l;
            void *g = rtags[j]; rtags[j] = rtags[j - 1]; rtags[j - 1] = g;
        }
    for (int i = 0, j; i < nr; i = j) {
        long sum = len[i];
        for (j = i + 1; j < nr && (double)(j - i + 1) * len[j] <= PAD_SLACK * (double)(sum + len[j]); j++)
            sum += len[j];
        if (admit(S, ids + i, len + i, rtags + i, j - i, err, sizeof err))
            for (int k = i; k < j; k++)
                finish(S, rtags[k], NULL, err);
    }
    if (na > 0)
        translate_apart(S, apart, atags, na);
out:
    for (int i = 0; ids && i < nr; i++)
        free(ids[i]);
    free(texts), free(apart), free(tags), free(atags), free(rtags), free(rtexts), free(ids), free(len);
}

/* One step for every row; rows whose sentence ended answer and leave. */
static int step(Stream *S, char *err, size_t errlen)
{
    const vamos_model *m = S->m;
    int64_t sym[VAMOS_MAX_SYMS];
    memcpy(sym, S->sym, sizeof sym);
    sym[S->sb] = S->active;
    for (int r = 0; r < S->active; r++) {   /* (sym t is read by no per-row step) */
        Row *w = &S->rows[r];
        S->last[r] = w->count ? w->out[w->count - 1] : S->start;
        S->pos[r] = w->count;
        S->tlen[r] = w->count + 1;
    }
    const void *in[2 + VAMOS_MAX_SYMS] = { 0 };
    in[0] = S->last;
    in[1 + S->sn] = S->slen;
    in[1 + S->sm] = S->tlen;
    in[1 + S->sp] = S->pos;
    float *scores;
    int64_t n;
    if (vamos_run_graph(m, &m->step, m->run_step, &S->s->dec, sym, in, S->states, &scores, &n, err, errlen))
        return -1;
    int V = m->tgt.n;
    bool all = true;
    for (int r = 0; r < S->active; r++) {
        Row *w = &S->rows[r];
        int word = vrt_argmax(scores + (size_t)r * (size_t)V, V);
        bool go = word != m->tgt.eos && w->count < w->max_len;
        if (go)
            w->out[w->count++] = word;
        S->alive[r] = go && w->count < w->max_len;
        if (!S->alive[r]) {
            char *line = vrt_detokenize(&m->tgt, w->out, w->count);
            free(w->out);
            finish(S, w->tag, line, "out of memory");
            all = false;
        }
    }
    if (!all) {
        int kept = vrt_keep_rows(S->alive, S->active, S->keep);
        for (int i = 0; i < kept; i++)
            if (S->keep[i] != i)
                move_row(S, S->keep[i], i, S->rows[S->keep[i]].count);
        S->active = kept;
    }
    return 0;
}

static void stream_free(Stream *S)
{
    for (int k = 0; S->states && S->fresh && k < S->m->nstates; k++)
        free(S->states[k]), free(S->fresh[k]);
    free(S->states), free(S->fresh), free(S->cap), free(S->fill), free(S->rows), free(S->last), free(S->tlen), free(S->pos), free(S->slen);
    free(S->keep), free(S->alive);
}

/* Every sentence the feed gives, a batch at a time (for what cannot
 * stream). */
static int batches(Stream *S)
{
    const char **texts = malloc(sizeof *texts * (size_t)S->R);
    void **tags = malloc(sizeof *tags * (size_t)S->R);
    for (int n; texts && tags && (n = S->f->next(S->f->ctx, S->R, true, texts, tags)) >= 0;)
        translate_apart(S, texts, tags, n);
    int rc = texts && tags ? 0 : -1;
    free(texts), free(tags);
    return rc;
}

int vamos_translate_stream(vamos_session *s, const vamos_opts *o, const vamos_feed *f, char *err, size_t errlen)
{
    static const vamos_opts defaults = { 0 };
    const vamos_model *m = s->m;
    if (!o)
        o = &defaults;
    Stream S = { .s = s, .m = m, .o = o, .f = f };
    S.R = o->batch_rows > 0 ? o->batch_rows : VAMOS_DEFAULT_BATCH;
    const char *why;
    if (o->beam > 1 || !streamable(m, &why)) {
        if (batches(&S) == 0)
            return 0;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    S.sb = vrt_sym_of(m, VAMOS_SYM_BATCH), S.sn = vrt_sym_of(m, VAMOS_SYM_SRC_LEN);
    S.sm = vrt_sym_of(m, VAMOS_SYM_TGT_LEN), S.sp = vrt_sym_of(m, VAMOS_SYM_STEP_POS);
    S.start = m->tgt.bos >= 0 ? m->tgt.bos : m->tgt.eos;
    S.sym[S.sb] = S.R;
    S.fill = calloc((size_t)m->nstates + 1, sizeof *S.fill);
    S.states = calloc((size_t)m->nstates + 1, sizeof *S.states);
    S.fresh = calloc((size_t)m->nstates + 1, sizeof *S.fresh);
    S.cap = calloc((size_t)m->nstates + 1, sizeof *S.cap);
    S.rows = calloc((size_t)S.R, sizeof *S.rows);
    S.last = calloc((size_t)S.R, sizeof *S.last), S.tlen = calloc((size_t)S.R, sizeof *S.tlen);
    S.pos = calloc((size_t)S.R, sizeof *S.pos), S.slen = calloc((size_t)S.R, sizeof *S.slen);
    S.keep = calloc((size_t)S.R, sizeof *S.keep), S.alive = calloc((size_t)S.R, sizeof *S.alive);
    bool ok = S.fill && S.states && S.fresh && S.cap && S.rows && S.last && S.tlen && S.pos && S.slen && S.keep && S.alive && relayout(&S, BASE_SRC) == 0;
    if (!ok) {
        stream_free(&S);
        snprintf(err, errlen, "out of memory for %d rows of decoding", S.R);
        return -1;
    }
    bool stop = false;
    int rc = 0, refill = o->refill > 0 && o->refill <= 100 ? o->refill : 100;
    while (!stop || S.active > 0) {
        if (S.src > BASE_SRC) {   /* back to the smallest layout the rows fit (as it is without memory) */
            int need = 0, src = BASE_SRC;
            for (int r = 0; r < S.active; r++) {
                int n = (S.rows[r].max_len - 9) / 2;   /* TGT_OF(n) >= max_len */
                n = S.slen[r] > n ? S.slen[r] : n;
                need = n > need ? n : need;
            }
            while (src < need)
                src += BASE_SRC + 1;
            if (src < S.src)
                relayout(&S, src);
        }
        if (!stop && (S.active == 0 || (S.R - S.active) * 100 >= S.R * refill))
            take(&S, S.active == 0, &stop);
        if (S.active > 0 && step(&S, err, errlen)) {
            for (int r = 0; r < S.active; r++) {
                free(S.rows[r].out);
                finish(&S, S.rows[r].tag, NULL, err);
            }
            S.active = 0;
            rc = -1;
        }
    }
    stream_free(&S);
    if (S.oom && rc == 0) {
        snprintf(err, errlen, "out of memory for the sentences waiting");
        rc = -1;
    }
    return rc;
}
