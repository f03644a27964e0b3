/* stream.c - continuous batching: sentences join a running greedy decoder
 * as its rows free up (vamos.h's vamos_translate_feed; vamos serve).
 *
 * A batch decoded start to end (translate.c) runs as long as its longest
 * sentence, its rows emptying as the others end; a server's requests do
 * not come sorted by length. Here the decoder keeps up to R rows, each a
 * sentence at a position of its own (the step reads each row's position,
 * incremental.c), and refills them as they free:
 *
 *   1. admit, once half the rows are free (or none is busy): the
 *      sentences waiting, up to the free rows, sorted by length and
 *      encoded in groups of similar lengths (at most PAD_SLACK padding);
 *      prep makes their per-sentence states, which are copied into the
 *      free rows;
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
 * (its batches are sorted over the whole input).
 *
 * The rows' states are laid out once, for R rows, sources of up to
 * VAMOS_STREAM_MAX_SRC tokens and targets of twice that + 10 (63 source
 * tokens: 0.80-0.82x, the attention reading more masked keys): a step
 * reads the first `active` rows (every state has the batch as its first
 * dim), and the masks hide what a row does not hold (cache positions past
 * its own, source positions past its length). prep runs on the sentences
 * admitted with one source position more than the longest, memory 0
 * there: a padding position for every one of them, whose states are
 * repeated into the rest of a row's source positions (so a source mask
 * hides those, as padding).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vamos/translate.h"
#include "vamos/vamos.h"
#include "decode.h"

#define MAX_SRC VAMOS_STREAM_MAX_SRC
#define MAX_TGT (2 * MAX_SRC + 10)
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
    int64_t sym[VAMOS_MAX_SYMS];          /* the rows' layout: R rows, MAX_SRC, MAX_TGT */
    void **states, **fresh;               /* the rows'; prep's for the sentences admitted */
    bool tables;                          /* the batch-less states copied from fresh */
    Row *rows;
    int32_t *last, *tlen, *pos, *slen, *keep;
    bool *alive;
} Stream;

/* Whether the step can run rows at positions of their own over states
 * laid out for more rows than it runs: every state with a batch has it
 * first, and the step reads no input the rows would have to share. */
static bool streamable(const vamos_model *m, const char **why)
{
    *why = !m->has_step ? "the model has no one-word step" : NULL;
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

/* Row `from` of state k laid out for fsym (the sentences admitted) into
 * row `to` of the rows' layout: each dim's positions past the admitted
 * layout's repeat its last (a padding position). */
static void copy_row(Stream *S, int k, const void *fbase, const int64_t *fsym, int from, int to)
{
    const vamos_state *st = &S->m->states[k];
    int64_t fd[VAMOS_BLOB_RANK], td[VAMOS_BLOB_RANK], idx[VAMOS_BLOB_RANK] = { 0 };
    size_t fall = dims_of(st, fsym, fd), tall = dims_of(st, S->sym, td);
    int r = st->rank;
    if (r == 1) {   /* one value a row */
        ((float *)S->states[k])[to] = ((const float *)fbase)[from];
        return;
    }
    const float *src = (const float *)fbase + fall / (size_t)fd[0] * (size_t)from;
    float *dst = (float *)S->states[k] + tall / (size_t)td[0] * (size_t)to;
    int64_t inner = td[r - 1], have = fd[r - 1] < inner ? fd[r - 1] : inner;
    for (;;) {   /* over the indexes of dims 1..r-2, the last dim a run */
        size_t fo = 0, to_ = 0;
        for (int d = 1; d < r - 1; d++) {
            int64_t i = idx[d] < fd[d] ? idx[d] : fd[d] - 1;
            fo = fo * (size_t)fd[d] + (size_t)i;
            to_ = to_ * (size_t)td[d] + (size_t)idx[d];
        }
        const float *a = src + fo * (size_t)fd[r - 1];
        float *b = dst + to_ * (size_t)inner;
        memcpy(b, a, (size_t)have * sizeof *b);
        for (int64_t j = have; j < inner; j++)
            b[j] = a[have - 1];
        int d = r - 2;
        while (d >= 1 && ++idx[d] == td[d])
            idx[d--] = 0;
        if (d < 1)
            break;
    }
}

/* Row `from` to row `to` of every state with a batch (a cache: only the
 * `filled` positions a row holds). */
static void move_row(Stream *S, int from, int to, int filled)
{
    const vamos_model *m = S->m;
    for (int k = 0; k < m->nstates; k++) {
        const vamos_state *st = &m->states[k];
        if (st->batch_axis < 0)
            continue;
        int64_t d[VAMOS_BLOB_RANK];
        size_t block = dims_of(st, S->sym, d) / (size_t)d[0];
        float *p = S->states[k];
        int la = -1;   /* a cache's target-length axis */
        for (int i = 1; st->cache && la < 0 && i < st->rank; i++)
            if (st->dsym[i] == S->sm)
                la = i;
        if (la < 0) {
            memcpy(p + block * (size_t)to, p + block * (size_t)from, block * sizeof *p);
            continue;
        }
        size_t mid = 1, inner = 1;
        for (int i = 1; i < la; i++)
            mid *= (size_t)d[i];
        for (int i = la + 1; i < st->rank; i++)
            inner *= (size_t)d[i];
        size_t used = (size_t)(filled < d[la] ? filled : d[la]) * inner, run = (size_t)d[la] * inner;
        for (size_t j = 0; j < mid; j++)
            memcpy(p + block * (size_t)to + j * run, p + block * (size_t)from + j * run, used * sizeof *p);
    }
    S->rows[to] = S->rows[from];
    S->slen[to] = S->slen[from];
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

/* Encode and prepare n sentences (ids[i], len[i] tokens, each 1..MAX_SRC)
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
    sym[S->sm] = MAX_TGT;   /* the position tables' length */
    if (rc == 0 && m->prep.n > 0)
        rc = vamos_run_graph(m, &m->prep, m->run_prep, &S->s->dec, sym, in, S->fresh, &out, &nout, err, errlen);
    for (int i = 0; rc == 0 && i < n; i++) {
        int r = S->active + i;
        for (int k = 0; k < m->nstates; k++)
            if (!m->states[k].cache && m->states[k].batch_axis == 0)
                copy_row(S, k, S->fresh[k], sym, i, r);
        int max_len = S->o->max_len > 0 && S->o->max_len < MAX_TGT ? S->o->max_len : 2 * len[i] + 10;
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
 * tokenised; empty ones are answered at once, long ones apart. */
static void take(Stream *S, bool wait, bool *stop)
{
    int R = S->R, room = R - S->active;
    const char **texts = malloc(sizeof *texts * (size_t)R), **apart = malloc(sizeof *apart * (size_t)R);
    void **tags = malloc(sizeof *tags * (size_t)R), **atags = malloc(sizeof *atags * (size_t)R);
    void **rtags = malloc(sizeof *rtags * (size_t)R);
    int32_t **ids = calloc((size_t)R, sizeof *ids);
    int *len = malloc(sizeof *len * (size_t)R), n = 0, na = 0, nr = 0;
    char err[256];
    if (!texts || !apart || !tags || !atags || !rtags || !ids || !len) {
        *stop = true;   /* no memory to take more: the rows decoding end, then the feed */
        goto out;
    }
    n = S->f->next(S->f->ctx, room, wait, texts, tags);
    if (n < 0) {
        *stop = true;
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        int32_t *t = malloc(sizeof *t * (MAX_SRC + 1));
        int k = t ? vamos_tokenize(&S->m->src, texts[i], t, MAX_SRC + 1) : -1;
        if (k == 0) {
            free(t);
            char *empty = calloc(1, 1);
            finish(S, tags[i], empty, "out of memory");
        } else if (k < 0 || k > MAX_SRC) {
            free(t);
            apart[na] = texts[i], atags[na++] = tags[i];
        } else {
            ids[nr] = t, len[nr] = k, rtags[nr++] = tags[i];
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
    free(texts), free(apart), free(tags), free(atags), free(rtags), free(ids), free(len);
}

/* One step for every row; rows whose sentence ended answer and leave. */
static int step(Stream *S, char *err, size_t errlen)
{
    const vamos_model *m = S->m;
    int64_t sym[VAMOS_MAX_SYMS];
    memcpy(sym, S->sym, sizeof sym);
    sym[S->sb] = S->active;
    int top = 0;
    for (int r = 0; r < S->active; r++) {
        Row *w = &S->rows[r];
        S->last[r] = w->count ? w->out[w->count - 1] : S->start;
        S->pos[r] = w->count;
        S->tlen[r] = w->count + 1;
        top = w->count > top ? w->count : top;
    }
    sym[S->sp] = top;
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
    for (int k = 0; k < S->m->nstates; k++) {
        free(S->states ? S->states[k] : NULL);
        free(S->fresh ? S->fresh[k] : NULL);
    }
    free(S->states), free(S->fresh), free(S->rows), free(S->last), free(S->tlen), free(S->pos), free(S->slen);
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
    const vamos_model *m = s->m;
    Stream S = { .s = s, .m = m, .o = o, .f = f };
    S.R = o && o->batch_rows > 0 ? o->batch_rows : VAMOS_DEFAULT_BATCH;
    const char *why;
    if ((o && o->beam > 1) || !streamable(m, &why)) {
        if (batches(&S) == 0)
            return 0;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    S.sb = vrt_sym_of(m, VAMOS_SYM_BATCH), S.sn = vrt_sym_of(m, VAMOS_SYM_SRC_LEN);
    S.sm = vrt_sym_of(m, VAMOS_SYM_TGT_LEN), S.sp = vrt_sym_of(m, VAMOS_SYM_STEP_POS);
    S.start = m->tgt.bos >= 0 ? m->tgt.bos : m->tgt.eos;
    S.sym[S.sb] = S.R, S.sym[S.sn] = MAX_SRC + 1, S.sym[S.sm] = MAX_TGT;
    S.states = calloc((size_t)m->nstates + 1, sizeof *S.states);
    S.fresh = calloc((size_t)m->nstates + 1, sizeof *S.fresh);
    S.rows = calloc((size_t)S.R, sizeof *S.rows);
    S.last = calloc((size_t)S.R, sizeof *S.last), S.tlen = calloc((size_t)S.R, sizeof *S.tlen);
    S.pos = calloc((size_t)S.R, sizeof *S.pos), S.slen = calloc((size_t)S.R, sizeof *S.slen);
    S.keep = calloc((size_t)S.R, sizeof *S.keep), S.alive = calloc((size_t)S.R, sizeof *S.alive);
    bool ok = S.states && S.fresh && S.rows && S.last && S.tlen && S.pos && S.slen && S.keep && S.alive;
    for (int k = 0; ok && k < m->nstates; k++) {
        size_t bytes = vamos_state_bytes(m, k, S.sym) + 64;
        ok = (S.states[k] = calloc(1, bytes)) != NULL;
        if (ok && !m->states[k].cache)   /* prep's output, for up to R sentences as long as a row takes */
            ok = (S.fresh[k] = calloc(1, bytes)) != NULL;
    }
    if (!ok) {
        stream_free(&S);
        snprintf(err, errlen, "out of memory for %d rows of decoding", S.R);
        return -1;
    }
    bool stop = false;
    int rc = 0;
    while (!stop || S.active > 0) {
        if (!stop && (S.active == 0 || S.R - S.active >= (S.R + 1) / 2))
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
    return rc;
}
