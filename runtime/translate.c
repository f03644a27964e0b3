/* translate.c - run compiled graphs, tokenise, decode (greedy). */
#include <ctype.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vamos/parallel.h"
#include "vamos/translate.h"
#include "bpe.h"
#include "decode.h"

#define LANE_BATCHES 4

vamos_session *vamos_session_new(const vamos_model *m)
{
    vamos_session *s = calloc(1, sizeof *s);
    if (s)
        s->m = m;
    return s;
}

void vamos_session_free(vamos_session *s)
{
    if (!s)
        return;
    vamos_arena_free(&s->enc);
    vamos_arena_free(&s->dec);
    for (int l = 0; l < MAX_LANES; l++)
        vamos_session_free(s->lane[l]);
    free(s);
}

double vrt_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int64_t node_numel(const vamos_node *n, const int64_t *sym)
{
    int64_t c = 1;
    for (int k = 0; k < n->rank; k++)
        c *= n->dsym[k] >= 0 ? sym[n->dsym[k]] : n->dim[k];
    return c;
}

size_t vamos_state_bytes(const vamos_model *m, int k, const int64_t *sym)
{
    const vamos_state *s = &m->states[k];
    size_t bytes = 4;
    for (int i = 0; i < s->rank; i++)
        bytes *= (size_t)(s->dsym[i] >= 0 ? sym[s->dsym[i]] : s->dim[i]);
    return bytes;
}

void vamos_arena_free(vamos_arena *a)
{
    free(a->base);
    free(a->buf);
    free(a->off);
    memset(a, 0, sizeof *a);
}

/* Grow an array of n elements of size sz to hold at least want. */
static bool grow(void **p, int *n, int want, size_t sz)
{
    if (*n >= want)
        return true;
    void *q = realloc(*p, sz * (size_t)want);
    if (!q)
        return false;
    *p = q, *n = want;
    return true;
}

/* Lay the graph's buffers out for sym: each buffer as large as the
 * largest value planned into it, 64-byte aligned, one block. */
static int layout(vamos_arena *a, const vamos_graph *g, const int64_t *sym)
{
    int nb = a->nbuf, no = a->noff;
    if (!grow((void **)&a->buf, &nb, g->n + 1, sizeof *a->buf) ||
        !grow((void **)&a->off, &no, g->nslots + 1, sizeof *a->off))
        return -1;
    a->nbuf = nb, a->noff = no;
    memset(a->off, 0, sizeof *a->off * (size_t)(g->nslots + 1));
    const size_t limit = (size_t)1 << 46;                    /* no machine has 64 TB */
    for (int i = 0; i < g->n; i++) {
        const vamos_node *n = &g->nodes[i];
        if (n->slot < 0)
            continue;
        size_t bytes = 4;
        for (int k = 0; k < n->rank; k++) {
            int64_t d = n->dsym[k] >= 0 ? sym[n->dsym[k]] : n->dim[k];
            if (d < 0 || (d > 0 && bytes > limit / (size_t)d))
                return -1;
            bytes *= (size_t)d;
        }
        bytes = (bytes + 63) & ~(size_t)63;
        if (bytes > a->off[n->slot])
            a->off[n->slot] = bytes;
    }
    size_t total = 0;                                        /* sizes to offsets */
    for (int s = 0; s < g->nslots; s++) {
        size_t bytes = a->off[s] ? a->off[s] : 64;
        a->off[s] = total;
        if (bytes > limit - total)
            return -1;
        total += bytes;
    }
    if (total > a->cap) {
        free(a->base);
        a->cap = 0;
        a->base = aligned_alloc(64, total);
        if (!a->base)
            return -1;
        a->cap = total;
    }
    for (int i = 0; i < g->n; i++)
        a->buf[i] = g->nodes[i].slot >= 0 ? a->base + a->off[g->nodes[i].slot] : NULL;
    return 0;
}

int vamos_run_graph(const vamos_model *m, const vamos_graph *g, vamos_kernel_fn fn, vamos_arena *a,
                    const int64_t *sym, const void *const *inputs, void *const *states,
                    float **out, int64_t *out_n, char *err, size_t errlen)
{
    if (layout(a, g, sym)) {
        snprintf(err, errlen, "out of memory for the graph's buffers");
        return -1;
    }
    for (int i = 0; i < g->n; i++) {
        const vamos_node *n = &g->nodes[i];
        if (n->kind == VAMOS_NODE_PARAM) {
            a->buf[i] = (void *)m->params[n->param];
        } else if (n->kind == VAMOS_NODE_STATE) {
            if (!states || !states[n->param]) {
                snprintf(err, errlen, "internal error: a state of the graph was not given");
                return -1;
            }
            a->buf[i] = states[n->param];
        } else if (n->kind == VAMOS_NODE_INPUT) {
            int slot = n->role == VAMOS_IN_TOKENS ? 0 : n->role == VAMOS_IN_LENGTHS ? 1 + n->sym : IN_MEMORY;
            if (!inputs[slot]) {
                snprintf(err, errlen, "internal error: an input of the graph was not given");
                return -1;
            }
            memcpy(a->buf[i], inputs[slot], (size_t)node_numel(n, sym) * 4);
        }
    }
    int32_t bad = fn(a->buf, sym);
    if (bad) {
        snprintf(err, errlen, "a token id at position %d is outside its embedding table", bad - 1);
        return -1;
    }
    *out = a->buf[g->output];
    *out_n = node_numel(&g->nodes[g->output], sym);
    return 0;
}

static uint32_t word_hash(const char *s)   /* FNV-1a */
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int vamos_vocab_index(vamos_vocab *v)
{
    uint32_t size = 16;
    while (size < 2u * (uint32_t)v->n)
        size <<= 1;
    if (!(v->index = calloc(size, sizeof *v->index)))
        return -1;
    v->index_mask = size - 1;
    for (int i = 0; i < v->n; i++) {
        uint32_t h = word_hash(v->words[i]) & v->index_mask;
        while (v->index[h] && strcmp(v->words[v->index[h] - 1], v->words[i]))
            h = (h + 1) & v->index_mask;
        if (!v->index[h])   /* a repeated word keeps its first id, as a scan finds */
            v->index[h] = i + 1;
    }
    return 0;
}

/* Word w's id in words[0..n) (its first), by the index when there is one; -1: none. */
static int find_word(const char *const *words, int n, const int32_t *index, uint32_t mask, const char *w)
{
    if (index) {
        for (uint32_t h = word_hash(w) & mask; index[h]; h = (h + 1) & mask)
            if (!strcmp(words[index[h] - 1], w))
                return index[h] - 1;
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(words[i], w))
            return i;
    return -1;
}

static int tokenize_words(const char *const *words, int nwords, const int32_t *index, uint32_t mask, int unk,
                          const char *text, int32_t *ids, int max, bool strict, const char **bad);

int vamos_tokenize_words(const char *const *words, int nwords, int unk, const char *text,
                         int32_t *ids, int max, bool strict, const char **bad)
{
    return tokenize_words(words, nwords, NULL, 0, unk, text, ids, max, strict, bad);
}

static int tokenize_words(const char *const *words, int nwords, const int32_t *index, uint32_t mask, int unk,
                          const char *text, int32_t *ids, int max, bool strict, const char **bad)
{
    int n = 0;
    char word[256], lower[256];
    for (const char *p = text; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        size_t len = 0;
        while (p[len] && !isspace((unsigned char)p[len]))
            len++;
        if (!len || n == max)
            break;
        size_t k = len < sizeof word - 1 ? len : sizeof word - 1;
        memcpy(word, p, k);
        word[k] = 0;
        for (size_t i = 0; i <= k; i++)
            lower[i] = (char)tolower((unsigned char)word[i]);
        int id = find_word(words, nwords, index, mask, word);
        if (id < 0)
            id = find_word(words, nwords, index, mask, lower);
        if (id < 0)
            id = unk;
        if (id < 0 && strict) {
            *bad = p;
            return -1;
        }
        if (id >= 0)
            ids[n++] = id;
        p += len;
    }
    return n;
}

int vamos_tokenize(const vamos_vocab *v, const char *text, int32_t *ids, int max)
{
    if (v->bpe)
        return vamos_bpe_encode(v->bpe, text, ids, max, NULL);
    return tokenize_words((const char *const *)v->words, v->n, v->index, v->index_mask, v->unk, text, ids, max, false,
                          NULL);
}

/* Rows of a decoder input [rows, t + 1]: the start word, then each row's
 * words so far (the start word past their end). */
static void fill_prefix(int32_t *prefix, int rows, int t, int start, int32_t *const *words, const int *len)
{
    for (int i = 0; i < rows; i++) {
        int32_t *row = prefix + (size_t)i * (size_t)(t + 1);
        row[0] = start;
        for (int k = 0; k < t; k++)
            row[1 + k] = k < len[i] ? words[i][k] : start;
    }
}

int vrt_sym_of(const vamos_model *m, int role)
{
    for (int i = 0; i < m->nsyms; i++)
        if (m->sym_role[i] == role)
            return i;
    return 0;
}

/* A decoder row's log-probabilities, computed only where asked: the row
 * is logits (log-softmax: x - max - log sum exp(x - max), the sum once per
 * row), or already a distribution (log x). Either way the order of the
 * words is the order of x. */
typedef struct LogProbs {
    const float *x;
    double shift;   /* max + log(sum), for logits */
    bool dist;
} LogProbs;

/* 4 floats at a time in GCC's vector types (clang has them too; 16
 * bytes, as every x86-64 has, so they are passed in registers by the
 * baseline ABI): they vectorise at the runtime's -O2 on any target, for the two passes over a
 * row's V scores that beam search makes for each of its rows and steps. */
typedef float vf4 __attribute__((vector_size(16)));
typedef int32_t vi4 __attribute__((vector_size(16)));

static vf4 vsel(vi4 m, vf4 a, vf4 b)   /* lane by lane m ? a : b (m: -1 or 0) */
{
    return (vf4)((m & (vi4)a) | (~m & (vi4)b));
}

/* x[i..i+4), lanes past n filled with `pad` (a copy of fixed size is one
 * unaligned load; only the row's last vector takes the slow path) */
static vf4 load4(const float *x, int i, int n, float pad)
{
    vf4 v = { pad, pad, pad, pad };
    if (n - i >= 4)
        memcpy(&v, x + i, sizeof v);
    else
        memcpy(&v, x + i, sizeof(float) * (size_t)(n - i));
    return v;
}

/* e^x for x <= 0 (a score minus its row's maximum): Cephes' expf, as the
 * compiled kernels' exp_poly (compiler/codegen/cg_util.c), about 1e-7
 * relative; 0 below -87, NaN for NaN. */
static vf4 exp4(vf4 x)
{
    vi4 nan = x != x, in = x >= -87.0f;   /* NaN compares false: clamped too, then put back */
    vf4 xc = vsel(in, x, (vf4){ 0 } - 87.0f);
    vf4 fx = xc * 1.44269504088896341f + 0.5f;
    vi4 t = __builtin_convertvector(fx, vi4);   /* toward zero; floor below */
    vi4 n = t + (__builtin_convertvector(t, vf4) > fx);
    vf4 nf = __builtin_convertvector(n, vf4);
    vf4 r = xc - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    vf4 y = (vf4){ 0 } + 1.9875691500E-4f;
    y = y * r + 1.3981999507E-3f;
    y = y * r + 8.3334519073E-3f;
    y = y * r + 4.1665795894E-2f;
    y = y * r + 1.6666665459E-1f;
    y = y * r + 5.0000001201E-1f;
    y = y * (r * r) + r + 1.0f;
    vf4 e = y * (vf4)((n + 127) << 23);   /* n >= -126: 2^n is a normal float */
    return vsel(nan, x, vsel(in, e, (vf4){ 0 }));
}

static LogProbs log_probs(const float *x, int n)
{
    /* the largest, the smallest and the sum: a distribution already? */
    vf4 vmx = (vf4){ 0 } - INFINITY, vmn = (vf4){ 0 } + INFINITY, vsum = { 0 };
    for (int i = 0; i < n; i += 4) {
        vf4 v = load4(x, i, n, 0);
        vmx = vsel(v > vmx, v, vmx);   /* NaN never wins, as it did not before */
        vmn = vsel(v < vmn, v, vmn);
        vsum += v;
    }
    float mx = -INFINITY, mn = INFINITY;
    double sum = 0;
    for (int k = 0; k < 4; k++) {
        mx = vmx[k] > mx ? vmx[k] : mx;
        mn = vmn[k] < mn ? vmn[k] : mn;
        sum += vsum[k];
    }
    if (n > 0 && mn >= 0 && mx <= 1 && fabs(sum - 1) < 1e-3)
        return (LogProbs){ x, 0, true };
    vf4 vz = { 0 };
    for (int i = 0; i < n; i += 4)
        vz += exp4(load4(x, i, n, -INFINITY) - mx);
    double z = 0;
    for (int k = 0; k < 4; k++)
        z += vz[k];
    return (LogProbs){ x, mx + log(z), false };
}

static float log_prob(const LogProbs *l, int w)
{
    if (l->dist)
        return l->x[w] > 0 ? logf(l->x[w]) : -INFINITY;
    return (float)(l->x[w] - l->shift);
}

/* The first index of the largest of x[0..n) (n >= 1), NaNs passed over;
 * 0 when x[0] is NaN (as a scan keeping the first strictly larger value
 * gives): the maximum in 4-float vectors, then its first place. */
int vrt_argmax(const float *x, int n)
{
    if (x[0] != x[0])
        return 0;
    vf4 m = { x[0], x[0], x[0], x[0] };
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        vf4 v = load4(x, i, n, 0);
        m = vsel(v > m, v, m);   /* a NaN lane compares false: m stays */
    }
    float best = m[0];
    for (int k = 1; k < 4; k++)
        best = m[k] > best ? m[k] : best;
    for (; i < n; i++)
        best = x[i] > best ? x[i] : best;
    for (i = 0; i < n; i++)
        if (x[i] == best)
            return i;
    return 0;
}

int vrt_run_encoder(vamos_session *s, const Batch *b, int64_t *sym, const void **in,
                       float **mem, vamos_stats *st, char *err, size_t errlen)
{
    const vamos_model *m = s->m;
    int sb = vrt_sym_of(m, VAMOS_SYM_BATCH), sn = vrt_sym_of(m, VAMOS_SYM_SRC_LEN);
    sym[sb] = b->B, sym[sn] = b->N;
    in[0] = b->src;
    in[1 + sn] = b->slen;
    int64_t n;
    double t0 = vrt_now_ms();
    int rc = vamos_run_graph(m, &m->enc, m->run_enc, &s->enc, sym, in, NULL, mem, &n, err, errlen);
    if (st)
        st->enc_ms += vrt_now_ms() - t0;
    in[IN_MEMORY] = *mem;
    return rc;
}

/* The decoder for one batch of `rows` rows: either the derived step
 * (one word per call, key/value caches in states) or, for models without
 * one, the full decoder re-run over each row's prefix. */
typedef struct Dec {
    vamos_session *s;
    int64_t *sym;
    const void **in;
    int rows, start, V;
    int32_t *prefix, *tlen, *pos, *last;   /* pos: each row's position (the step's), tlen = pos + 1 */
    void **states;             /* step: one buffer per state */
    unsigned char *scratch;    /* step: room for the largest state (reordering) */
    bool *source;              /* [rows] reordering: another row continues this one */
} Dec;

static void dec_end(Dec *d)
{
    for (int k = 0; d->states && k < d->s->m->nstates; k++)
        free(d->states[k]);
    free(d->states), free(d->scratch), free(d->prefix), free(d->tlen), free(d->pos), free(d->last), free(d->source);
}

/* The per-sentence states (not caches) that prep wrote for rows / copies
 * sentences, laid out for that many rows, as `rows` rows: sentence i's
 * row becomes rows i * copies .. i * copies + copies - 1 (in place: from
 * the last row back, each read before anything is written over it). */
static void expand_rows(Dec *d, int copies)
{
    const vamos_model *m = d->s->m;
    int n = d->rows / copies;
    for (int k = 0; k < m->nstates; k++) {
        if (m->states[k].cache || m->states[k].batch_axis < 0)
            continue;
        RowRuns r = vrt_row_runs(m, k, d->sym, d->rows, 0);
        unsigned char *p = d->states[k];
        for (size_t o = r.outer; o-- > 0;)
            for (int i = d->rows; i-- > 0;)
                memmove(p + (o * (size_t)d->rows + (size_t)i) * r.block,
                        p + (o * (size_t)n + (size_t)(i / copies)) * r.block, r.block);
    }
}

/* Ready to decode at most `longest` words per row; in holds the memory and
 * source lengths, sym the batch and source length. With copies > 1 (beam
 * search: a sentence's hypotheses are `copies` rows in a row), in holds
 * them for rows / copies sentences: the per-sentence graph (prep) runs
 * once a sentence, and its states are then spread over the rows; the
 * caller points in at the rows' own memory and lengths before the first
 * step. */
static int dec_begin(Dec *d, vamos_session *s, int64_t *sym, const void **in, int rows, int copies, int longest,
                     char *err, size_t errlen)
{
    const vamos_model *m = s->m;
    *d = (Dec){ s, sym, in, rows, m->tgt.bos >= 0 ? m->tgt.bos : m->tgt.eos, m->tgt.n, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    d->tlen = calloc((size_t)rows, sizeof *d->tlen);
    d->pos = calloc((size_t)rows, sizeof *d->pos);
    d->last = calloc((size_t)rows, sizeof *d->last);
    d->source = calloc((size_t)rows + 1, sizeof *d->source);
    if (!m->has_step)
        d->prefix = calloc((size_t)rows * (size_t)(longest + 1), sizeof *d->prefix);
    else
        d->states = calloc((size_t)m->nstates + 1, sizeof *d->states);
    if (!d->tlen || !d->pos || !d->last || !d->source || !(d->prefix || d->states))
        goto oom;
    if (!m->has_step)
        return 0;
    sym[vrt_sym_of(m, VAMOS_SYM_TGT_LEN)] = longest > 0 ? longest : 1;     /* the caches' length */
    size_t largest = 0;
    for (int k = 0; k < m->nstates; k++) {
        size_t bytes = vamos_state_bytes(m, k, sym);
        largest = bytes > largest ? bytes : largest;
        if (!(d->states[k] = calloc(1, bytes + 64)))
            goto oom;
    }
    if (!(d->scratch = malloc(largest + 64)))
        goto oom;
    if (m->prep.n > 0) {
        float *out;
        int64_t n;
        int sb = vrt_sym_of(m, VAMOS_SYM_BATCH);
        sym[sb] = rows / copies;
        int rc = vamos_run_graph(m, &m->prep, m->run_prep, &s->dec, sym, in, d->states, &out, &n, err, errlen);
        sym[sb] = rows;
        if (rc) {
            dec_end(d);
            return -1;
        }
        if (copies > 1)
            expand_rows(d, copies);
    }
    return 0;
oom:
    dec_end(d);
    snprintf(err, errlen, "out of memory for decoding");
    return -1;
}

/* Scores of position t for every row, given each row's words so far
 * (rows past their end get the start word): row i's V scores are at
 * *scores + i * *stride. */
static int dec_scores(Dec *d, int t, int32_t *const *words, const int *len, const float **scores, size_t *stride,
                      char *err, size_t errlen)
{
    const vamos_model *m = d->s->m;
    int sm = vrt_sym_of(m, VAMOS_SYM_TGT_LEN);
    for (int i = 0; i < d->rows; i++)
        d->tlen[i] = t + 1;
    d->in[1 + sm] = d->tlen;
    float *out;
    int64_t n;
    if (m->has_step) {
        int sp = vrt_sym_of(m, VAMOS_SYM_STEP_POS);
        for (int i = 0; i < d->rows; i++) {
            d->last[i] = t > 0 && t - 1 < len[i] ? words[i][t - 1] : d->start;
            d->pos[i] = t;
        }
        d->sym[sp] = t;
        d->in[1 + sp] = d->pos;
        d->in[0] = d->last;
        if (vamos_run_graph(m, &m->step, m->run_step, &d->s->dec, d->sym, d->in, d->states, &out, &n, err, errlen))
            return -1;
        *scores = out;
        *stride = (size_t)d->V;
        return 0;
    }
    fill_prefix(d->prefix, d->rows, t, d->start, words, len);
    d->sym[sm] = t + 1;
    d->in[0] = d->prefix;
    if (vamos_run_graph(m, &m->dec, m->run_dec, &d->s->dec, d->sym, d->in, NULL, &out, &n, err, errlen))
        return -1;
    *scores = out + (size_t)t * (size_t)d->V;
    *stride = (size_t)(t + 1) * (size_t)d->V;
    return 0;
}

RowRuns vrt_row_runs(const vamos_model *m, int k, const int64_t *sym, int rows, int filled)
{
    const vamos_state *st = &m->states[k];
    int st_len = vrt_sym_of(m, VAMOS_SYM_TGT_LEN);
    RowRuns r = { 1, 0, 1, 1, 1, 4 };
    for (int i = 0; i < st->batch_axis; i++)
        r.outer *= (size_t)(st->dsym[i] >= 0 ? sym[st->dsym[i]] : st->dim[i]);
    r.block = vamos_state_bytes(m, k, sym) / r.outer / (size_t)rows;
    int la = -1;   /* a cache's target-length axis */
    for (int i = st->batch_axis + 1; st->cache && la < 0 && i < st->rank; i++)
        if (st->dsym[i] == st_len)
            la = i;
    if (la < 0) {   /* no length axis: the whole row */
        r.inner = r.block;
        return r;
    }
    for (int i = st->batch_axis + 1; i < st->rank; i++) {
        size_t n = (size_t)(st->dsym[i] >= 0 ? sym[st->dsym[i]] : st->dim[i]);
        if (i < la)
            r.mid *= n;
        else if (i == la)
            r.len = n, r.used = filled > 0 && (size_t)filled < n ? (size_t)filled : n;
        else
            r.inner *= n;
    }
    return r;
}

static RowRuns row_runs(const Dec *d, int k, int filled)
{
    return vrt_row_runs(d->s->m, k, d->sym, d->rows, filled);
}

/* Beam search moved hypotheses: row i continues row parent[i]. The caches
 * follow (the full decoder needs nothing: prefixes are rebuilt); of a
 * cache's target-length axis only the first `filled` positions hold
 * anything yet, and only they are copied (the caches are sized for the
 * longest sentence allowed, often three times what is decoded). The rows
 * that others continue go to scratch first, then into their
 * continuations. */
static void dec_reorder(Dec *d, const int *parent, int filled)
{
    const vamos_model *m = d->s->m;
    bool moved = false;
    memset(d->source, 0, (size_t)d->rows);
    for (int i = 0; i < d->rows; i++)
        if (parent[i] != i)
            d->source[parent[i]] = moved = true;
    for (int k = 0; moved && m->has_step && k < m->nstates; k++) {
        const vamos_state *st = &m->states[k];
        if (!st->cache || st->batch_axis < 0)
            continue;
        RowRuns r = row_runs(d, k, filled);
        unsigned char *old = d->scratch, *p = d->states[k];
        for (int pass = 0; pass < 2; pass++)
            for (size_t o = 0; o < r.outer; o++)
                for (int i = 0; i < d->rows; i++) {
                    if (pass ? parent[i] == i : !d->source[i])
                        continue;
                    size_t at = (o * (size_t)d->rows + (size_t)i) * r.block;
                    size_t from = pass ? (o * (size_t)d->rows + (size_t)parent[i]) * r.block : at;
                    for (size_t j = 0; j < r.mid; j++)
                        memcpy((pass ? p : old) + at + j * r.len * r.inner,
                               (pass ? old : p) + from + j * r.len * r.inner, r.used * r.inner);
                }
    }
}

/* Which rows the decoder keeps when alive[r] says row r of `rows` goes
 * on: keep[0..n), n returned, for dec_compact. A kept row among the
 * first n stays where it is; a finished one's place is taken by a kept
 * row from the end, so one row moves per finished row (not every row
 * after it) and a row never moves up. */
int vrt_keep_rows(const bool *alive, int rows, int *keep)
{
    int n = 0;
    for (int r = 0; r < rows; r++)
        n += alive[r];
    for (int i = 0, j = rows - 1; i < n; i++) {
        if (alive[i]) {
            keep[i] = i;
            continue;
        }
        while (!alive[j])
            j--;
        keep[i] = j--;
    }
    return n;
}

/* Rows finished: the decoder goes on with rows keep[0..n) of its
 * d->rows, as rows 0..n), so no step is spent on a finished sentence.
 * Every state with a batch axis (key/value caches, of which only the
 * first `filled` positions are copied, and the prepared cross-attention
 * keys and values), the encoder's memory and the source lengths move down
 * in place: a kept row never moves up (keep[i] >= i) and no row is both
 * read and written, so the copies are safe. */
static void dec_compact(Dec *d, const int *keep, int n, int filled)
{
    const vamos_model *m = d->s->m;
    int sb = vrt_sym_of(m, VAMOS_SYM_BATCH);
    for (int k = 0; m->has_step && k < m->nstates; k++) {
        if (m->states[k].batch_axis < 0)
            continue;
        RowRuns r = row_runs(d, k, filled);
        unsigned char *p = d->states[k];
        for (size_t o = 0; o < r.outer; o++)
            for (int i = 0; i < n; i++) {
                unsigned char *to = p + (o * (size_t)n + (size_t)i) * r.block;
                const unsigned char *from = p + (o * (size_t)d->rows + (size_t)keep[i]) * r.block;
                if (to == from)
                    continue;
                for (size_t j = 0; j < r.mid; j++)
                    memmove(to + j * r.len * r.inner, from + j * r.len * r.inner, r.used * r.inner);
            }
    }
    float *mem = (float *)d->in[IN_MEMORY];
    int32_t *slen = (int32_t *)d->in[1 + vrt_sym_of(m, VAMOS_SYM_SRC_LEN)];
    size_t per = (size_t)d->sym[vrt_sym_of(m, VAMOS_SYM_SRC_LEN)] * (size_t)m->enc.nodes[m->enc.output].dim[2];
    for (int i = 0; i < n; i++) {
        memmove(mem + (size_t)i * per, mem + (size_t)keep[i] * per, per * sizeof *mem);
        slen[i] = slen[keep[i]];
    }
    d->rows = n;
    d->sym[sb] = n;
}

/* Count one decoder step at position t that began at `since`. */
static void time_step(vamos_stats *st, int t, double since)
{
    if (st && t < VAMOS_STAT_POSITIONS) {
        st->step_ms[t] += vrt_now_ms() - since;
        st->steps[t]++;
    }
}

/* Greedy decoding of a batch: each step appends each unfinished row's
 * best word; a finished sentence leaves the batch (dec_compact). Row i of
 * the decoder is sentence row[i]. */
static int greedy_batch(vamos_session *s, Batch *b, vamos_stats *st, char *err, size_t errlen)
{
    const vamos_model *m = s->m;
    int64_t sym[VAMOS_MAX_SYMS] = { 0 };
    const void *in[2 + VAMOS_MAX_SYMS] = { 0 };
    float *mem;
    if (vrt_run_encoder(s, b, sym, in, &mem, st, err, errlen))
        return -1;
    int longest = 0, rc = 0;
    for (int i = 0; i < b->B; i++)
        longest = b->max_len[i] > longest ? b->max_len[i] : longest;
    int *row = malloc(sizeof(int) * (size_t)b->B), *keep = malloc(sizeof(int) * (size_t)b->B);
    int32_t **words = malloc(sizeof(int32_t *) * (size_t)b->B), *slen = malloc(sizeof(int32_t) * (size_t)b->B);
    int *count = malloc(sizeof(int) * (size_t)b->B);
    bool *alive = malloc(sizeof(bool) * (size_t)b->B);
    double t0 = vrt_now_ms();
    Dec d;
    if (!row || !keep || !words || !slen || !count || !alive) {
        snprintf(err, errlen, "out of memory for decoding");
        rc = -1;
        goto out;
    }
    memcpy(slen, b->slen, sizeof(int32_t) * (size_t)b->B);   /* compacted with the rows */
    in[1 + vrt_sym_of(m, VAMOS_SYM_SRC_LEN)] = slen;
    if (dec_begin(&d, s, sym, in, b->B, 1, longest, err, errlen)) {
        rc = -1;
        goto out;
    }
    for (int i = 0; i < b->B; i++)
        row[i] = i;
    for (int t = 0; t < longest && d.rows > 0; t++) {
        const float *scores;
        size_t stride;
        for (int i = 0; i < d.rows; i++)
            words[i] = b->out[row[i]], count[i] = b->count[row[i]];
        double ts = vrt_now_ms();
        if (dec_scores(&d, t, words, count, &scores, &stride, err, errlen)) {
            rc = -1;
            break;
        }
        time_step(st, t, ts);
        bool all = true;
        for (int i = 0; i < d.rows; i++) {
            int r = row[i];
            int w = vrt_argmax(scores + (size_t)i * stride, d.V);
            alive[i] = w != m->tgt.eos && b->count[r] < b->max_len[r];
            if (alive[i])
                b->out[r][b->count[r]++] = w;
            alive[i] = alive[i] && b->count[r] < b->max_len[r];
            all = all && alive[i];
        }
        if (!all) {
            int n = vrt_keep_rows(alive, d.rows, keep);
            for (int i = 0; i < n; i++)
                row[i] = row[keep[i]];
            dec_compact(&d, keep, n, t + 1);
        }
    }
    if (st)
        st->dec_ms += vrt_now_ms() - t0;
    dec_end(&d);
out:
    free(row), free(keep), free(words), free(slen), free(count), free(alive);
    return rc;
}

/* A beam hypothesis; parent: the row it extends. */
typedef struct Hyp { int32_t *words; int len; double score; bool done; int parent; } Hyp;

static double normalised(const Hyp *h, double alpha)
{
    double lp = pow((5.0 + h->len + 1) / 6.0, alpha);   /* GNMT length penalty */
    return h->score / lp;
}

/* Insert row `from` (of hyp) extended by word w (-1: none) with score sc
 * into the top-`beam` list next[0..*nn), kept sorted by normalised score. */
static void offer(Hyp *next, int *nn, int beam, const Hyp *hyp, int from, int w, double sc, bool done, double alpha)
{
    Hyp cand = { hyp[from].words, hyp[from].len + (w >= 0), sc, done, from };
    double key = normalised(&cand, alpha);
    int pos = *nn;
    while (pos > 0 && normalised(&next[pos - 1], alpha) < key)
        pos--;
    if (pos >= beam)
        return;
    int last = *nn < beam ? (*nn)++ : beam - 1;
    int32_t *spare = next[last].words;       /* the dropped entry's storage */
    memmove(&next[pos + 1], &next[pos], sizeof(Hyp) * (size_t)(last - pos));
    memcpy(spare, hyp[from].words, sizeof(int32_t) * (size_t)hyp[from].len);
    if (w >= 0)
        spare[hyp[from].len] = w;
    next[pos] = (Hyp){ spare, cand.len, sc, done, from };
}

/* Word w into the list top[0..*ntop) of the `beam` best words but eos,
 * sorted best first (ties keep the lower id), if it belongs there. */
static void consider_word(const float *x, int w, int eos, int beam, int *top, int *ntop)
{
    if (w == eos || !(*ntop < beam || x[w] > x[top[*ntop - 1]]))
        return;
    int at = *ntop < beam ? (*ntop)++ : beam - 1;
    while (at > 0 && x[top[at - 1]] < x[w]) {
        top[at] = top[at - 1];
        at--;
    }
    top[at] = w;
}

/* Hypothesis k's candidates into sentence list next[0..*nn): <eos> (it
 * ends k at its own length) and the `beam` best other words. Every word
 * but <eos> extends k to the same length, so the same length penalty:
 * only the `beam` best of them can make the list, and the list is the one
 * offering all V words gives, for beam + 1 offers instead of V. */
static void offer_words(Hyp *next, int *nn, int beam, const Hyp *hyp, int k, const LogProbs *lp, int V, int eos,
                        int L, double alpha)
{
    const float *x = lp->x;   /* the words' order is x's */
    int top[VAMOS_MAX_BEAM], ntop = 0, w = 0;
    for (; w < V && ntop < beam; w++)
        consider_word(x, w, eos, beam, top, &ntop);
    /* once `beam` words are in, a word gets in only above the last: 4
     * words a compare, and the rare vector with one above goes word by
     * word (the same list, in the same order, as one word at a time) */
    for (; w + 4 <= V; w += 4) {
        vf4 v;
        memcpy(&v, x + w, sizeof v);
        vi4 above = v > x[top[beam - 1]];
        if (above[0] | above[1] | above[2] | above[3])
            for (int l = 0; l < 4; l++)
                consider_word(x, w + l, eos, beam, top, &ntop);
    }
    for (; w < V; w++)
        consider_word(x, w, eos, beam, top, &ntop);
    if (eos >= 0 && eos < V && isfinite(hyp[k].score + log_prob(lp, eos)))
        offer(next, nn, beam, hyp, k, -1, hyp[k].score + log_prob(lp, eos), true, alpha);
    for (int i = 0; i < ntop; i++) {
        double sc = hyp[k].score + log_prob(lp, top[i]);
        if (isfinite(sc))
            offer(next, nn, beam, hyp, k, top[i], sc, hyp[k].len + 1 >= L, alpha);
    }
}

/* Sentence i's best hypothesis (of its `live`) into b's output. */
static void beam_best(Batch *b, int i, const Hyp *h, int live, double alpha)
{
    if (live <= 0)
        return;
    int best = 0;
    for (int k = 1; k < live; k++)
        if (normalised(&h[k], alpha) > normalised(&h[best], alpha))
            best = k;
    b->count[i] = h[best].len < b->max_len[i] ? h[best].len : b->max_len[i];
    memcpy(b->out[i], h[best].words, sizeof(int32_t) * (size_t)b->count[i]);
}

/* Beam search for the b->B sentences of b together: sentence i's `beam`
 * hypotheses are rows of one decoder batch (its block; rows past its live
 * hypotheses are idle), every block's encoder output is the sentence's,
 * computed once. After each step the caches follow their hypotheses
 * (dec_reorder), and a sentence leaves the batch with its block
 * (dec_compact) once its best hypothesis has ended: as CTranslate2's early
 * exit, it does not wait for the other beam - 1 (on en-es's dev-ood: the
 * same BLEU and chrF, 1 line of 1,254 different, 0.68x the decoder's
 * time). */
static int beam_batch(vamos_session *s, Batch *b, int beam, double alpha, vamos_stats *st, char *err, size_t errlen)
{
    const vamos_model *m = s->m;
    int64_t sym[VAMOS_MAX_SYMS] = { 0 };
    const void *in[2 + VAMOS_MAX_SYMS] = { 0 };
    float *mem1;
    if (vrt_run_encoder(s, b, sym, in, &mem1, st, err, errlen))
        return -1;
    int B = b->B, R = B * beam, V = m->tgt.n, L = 0, rc = 0;
    for (int i = 0; i < B; i++)
        L = b->max_len[i] > L ? b->max_len[i] : L;
    size_t memsz = (size_t)b->N * (size_t)(m->enc.nodes[m->enc.output].dim[2]);
    float *mem = malloc(memsz * (size_t)R * sizeof(float));
    int32_t *slen = malloc(sizeof(int32_t) * (size_t)R), **rows_words = malloc(sizeof(int32_t *) * (size_t)R);
    Hyp *hyp = calloc((size_t)R, sizeof *hyp), *next = calloc((size_t)R, sizeof *next);
    int *rows_len = malloc(sizeof(int) * (size_t)R), *parent = malloc(sizeof(int) * (size_t)R);
    int *keep = malloc(sizeof(int) * (size_t)R), *live = malloc(sizeof(int) * (size_t)B);
    int *sent = malloc(sizeof(int) * (size_t)B);   /* block p holds sentence sent[p] */
    int *kblock = malloc(sizeof(int) * (size_t)B);
    bool *open = malloc(sizeof(bool) * (size_t)B);
    bool began = false;
    Dec d;
    if (!mem || !slen || !rows_words || !hyp || !next || !rows_len || !parent || !keep || !live || !sent || !kblock ||
        !open) {
        rc = -1;
        goto out;
    }
    for (int r = 0; r < R; r++) {
        memcpy(mem + (size_t)r * memsz, mem1 + (size_t)(r / beam) * memsz, memsz * sizeof(float));
        slen[r] = b->slen[r / beam];
        hyp[r].words = calloc((size_t)L + 1, sizeof(int32_t));
        next[r].words = calloc((size_t)L + 1, sizeof(int32_t));
        if (!hyp[r].words || !next[r].words)
            rc = -1;
    }
    for (int i = 0; i < B; i++)
        live[i] = 1, sent[i] = i;
    /* prep once a sentence (in still holds the sentences' memory and
     * lengths), then the rows' own */
    sym[vrt_sym_of(m, VAMOS_SYM_BATCH)] = R;
    double t0 = vrt_now_ms();
    if (rc == 0 && dec_begin(&d, s, sym, in, R, beam, L, err, errlen) == 0)
        began = true;
    else
        rc = -1;
    in[IN_MEMORY] = mem;
    in[1 + vrt_sym_of(m, VAMOS_SYM_SRC_LEN)] = slen;
    int blocks = B;
    for (int t = 0; rc == 0 && t < L && blocks > 0; t++) {
        for (int p = 0; p < blocks; p++) {
            Hyp *h = hyp + (size_t)sent[p] * (size_t)beam;
            for (int k = 0; k < beam; k++) {
                rows_words[p * beam + k] = h[k < live[sent[p]] ? k : 0].words;
                rows_len[p * beam + k] = h[k < live[sent[p]] ? k : 0].len;
            }
        }
        const float *scores;
        size_t stride;
        double ts = vrt_now_ms();
        if (dec_scores(&d, t, rows_words, rows_len, &scores, &stride, err, errlen)) {
            rc = -1;
            break;
        }
        time_step(st, t, ts);
        int kept = 0;
        for (int p = 0; p < blocks; p++) {
            int i = sent[p], nn = 0;
            Hyp *h = hyp + (size_t)i * (size_t)beam, *nx = next + (size_t)i * (size_t)beam;
            for (int k = 0; k < live[i]; k++) {
                if (h[k].done) {   /* a finished hypothesis carries over */
                    offer(nx, &nn, beam, h, k, -1, h[k].score, true, alpha);
                    continue;
                }
                LogProbs lp = log_probs(scores + (size_t)(p * beam + k) * stride, V);
                offer_words(nx, &nn, beam, h, k, &lp, V, m->tgt.eos, b->max_len[i], alpha);
            }
            for (int k = 0; k < beam; k++) {
                parent[p * beam + k] = p * beam + (k < nn ? nx[k].parent : 0);
                Hyp tmp = h[k];   /* the new list becomes the sentence's; the old is the spare */
                h[k] = nx[k], nx[k] = tmp;
            }
            live[i] = nn;
            open[p] = nn > 0 && !h[0].done;   /* ends once its best hypothesis has */
            if (!open[p])
                beam_best(b, i, h, nn, alpha);
            kept += open[p];
        }
        dec_reorder(&d, parent, t + 1);
        if (kept < blocks) {   /* whole blocks leave: keep_rows on blocks, then their rows */
            vrt_keep_rows(open, blocks, kblock);
            for (int q = 0; q < kept; q++) {
                sent[q] = sent[kblock[q]];
                for (int k = 0; k < beam; k++)
                    keep[q * beam + k] = kblock[q] * beam + k;
            }
            dec_compact(&d, keep, kept * beam, t + 1);
        }
        blocks = kept;
    }
    for (int p = 0; rc == 0 && p < blocks; p++)   /* still open at the longest length */
        beam_best(b, sent[p], hyp + (size_t)sent[p] * (size_t)beam, live[sent[p]], alpha);
    if (st)
        st->dec_ms += vrt_now_ms() - t0;
out:
    if (began)
        dec_end(&d);
    for (int r = 0; hyp && next && r < R; r++) {
        free(hyp[r].words);
        free(next[r].words);
    }
    free(mem), free(slen), free(rows_words), free(hyp), free(next), free(rows_len), free(parent);
    free(keep), free(live), free(sent), free(kblock), free(open);
    if (rc && err[0] == 0)
        snprintf(err, errlen, "out of memory for beam search");
    return rc;
}

/* Words joined by spaces (subwords: joined as they were cut), as a
 * malloc'd line. */
char *vrt_detokenize(const vamos_vocab *v, const int32_t *ids, int n)
{
    if (v->bpe)
        return vamos_bpe_decode(v->bpe, ids, n);
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(v->words[ids[i]]) + 1;
    char *line = malloc(len), *p = line;
    for (int i = 0; line && i < n; i++) {
        if (i)
            *p++ = ' ';
        size_t k = strlen(v->words[ids[i]]);
        memcpy(p, v->words[ids[i]], k);
        p += k;
    }
    if (line)
        *p = 0;
    return line;
}

/* Sentence indices idx[0..count) (lengths n[]) by length, then input
 * order. */
typedef struct LenIdx { int len, idx; } LenIdx;

static int by_len_then_idx(const void *a, const void *b)
{
    const LenIdx *x = a, *y = b;
    return x->len != y->len ? (x->len > y->len) - (x->len < y->len) : (x->idx > y->idx) - (x->idx < y->idx);
}

static int by_length(int *idx, int count, const int *n)
{
    LenIdx *t = malloc(sizeof *t * (size_t)(count ? count : 1));
    if (!t)
        return -1;
    for (int i = 0; i < count; i++)
        t[i] = (LenIdx){ n[idx[i]], idx[i] };
    qsort(t, (size_t)count, sizeof *t, by_len_then_idx);
    for (int i = 0; i < count; i++)
        idx[i] = t[i].idx;
    free(t);
    return 0;
}

/* Translate the sentences rows[0..B) (token ids ids[], lengths n[]) as
 * one padded batch; their words go to out[]/count[]. */
static int translate_rows(vamos_session *s, int32_t *const *ids, const int *n, const int *rows, int B,
                          const vamos_opts *o, int beam, vamos_stats *st, int32_t **out, int *count, char *err,
                          size_t errlen)
{
    Batch b = { .B = B };
    int rc = 0;
    b.slen = calloc((size_t)B, sizeof *b.slen);
    b.max_len = calloc((size_t)B, sizeof *b.max_len);
    b.out = calloc((size_t)B, sizeof *b.out);
    b.count = calloc((size_t)B, sizeof *b.count);
    if (!b.slen || !b.max_len || !b.out || !b.count)
        rc = -1;
    for (int r = 0; rc == 0 && r < B; r++) {
        int i = rows[r];
        b.N = n[i] > b.N ? n[i] : b.N;
        b.max_len[r] = o && o->max_len ? o->max_len : 2 * n[i] + 10;
        b.out[r] = out[i] = malloc(sizeof(int32_t) * (size_t)(b.max_len[r] + 1));
        b.slen[r] = n[i];
        if (!b.out[r])
            rc = -1;
    }
    if (rc == 0) {
        b.src = calloc((size_t)B * (size_t)b.N, sizeof *b.src);
        int pad = s->m->src.pad >= 0 ? s->m->src.pad : 0;
        for (int r = 0; b.src && r < B; r++)
            for (int k = 0; k < b.N; k++)
                b.src[(size_t)r * (size_t)b.N + (size_t)k] = k < n[rows[r]] ? ids[rows[r]][k] : pad;
        if (!b.src)
            rc = -1;
        else if (beam == 1)
            rc = greedy_batch(s, &b, st, err, errlen);
        else
            rc = beam_batch(s, &b, beam, o->alpha > 0 ? o->alpha : 0.6, st, err, errlen);
    }
    for (int r = 0; b.count && r < B; r++)
        count[rows[r]] = b.count[r];
    free(b.src), free(b.slen), free(b.max_len), free(b.out), free(b.count);
    return rc;
}

/* Batches side by side: with several batches and threads, each thread (a
 * lane) takes whole batches in turn, its kernels unsplit, instead of every
 * kernel of every batch being split between the threads, which meet at
 * each of a decoder step's hundreds of kernels. A sentence's words do not
 * depend on its batch, so the output is the same either way. */
typedef struct Lanes {
    int32_t *const *ids;
    const int *n, *rows, *first, *size;
    int nb, beam;
    const vamos_opts *o;
    int32_t **out;
    int *words;
    atomic_int next, failed;
} Lanes;

typedef struct Lane {
    Lanes *all;
    vamos_session *s;
    vamos_stats st;
    bool stats;
    int rc;
    char err[256];
} Lane;

static void lane_run(void *ctx, int lane)
{
    Lane *l = (Lane *)ctx + lane;
    Lanes *a = l->all;
    /* the longest batches first (they are sorted by length): the last ones taken are short, so
     * the lanes finish together */
    for (int j; !atomic_load(&a->failed) && (j = a->nb - 1 - atomic_fetch_add(&a->next, 1)) >= 0;)
        if (translate_rows(l->s, a->ids, a->n, a->rows + a->first[j], a->size[j], a->o, a->beam,
                           l->stats ? &l->st : NULL, a->out, a->words, l->err, sizeof l->err)) {
            l->rc = -1;
            atomic_store(&a->failed, 1);
        }
}

static void stats_add(vamos_stats *to, const vamos_stats *x)
{
    to->enc_ms += x->enc_ms, to->dec_ms += x->dec_ms;
    for (int p = 0; p < VAMOS_STAT_POSITIONS; p++)
        to->step_ms[p] += x->step_ms[p], to->steps[p] += x->steps[p];
}

static int translate_lanes(vamos_session *s, Lanes *a, int lanes, vamos_stats *st, char *err, size_t errlen)
{
    Lane lane[MAX_LANES];
    for (int l = 1; l < lanes; l++)
        if (!s->lane[l] && !(s->lane[l] = vamos_session_new(s->m))) {
            lanes = l;   /* the lanes there is memory for */
            break;
        }
    for (int l = 0; l < lanes; l++)
        lane[l] = (Lane){ .all = a, .s = l ? s->lane[l] : s, .stats = st != NULL };
    vamos_lanes(lane_run, lane, lanes);
    int rc = 0;
    for (int l = 0; l < lanes; l++) {
        if (st)
            stats_add(st, &lane[l].st);
        if (lane[l].rc && !rc) {
            rc = -1;
            snprintf(err, errlen, "%s", lane[l].err);
        }
    }
    return rc;
}

int vamos_translate_batch(vamos_session *s, const char *const *texts, int count, const vamos_opts *o,
                          vamos_stats *st, char **outs, char *err, size_t errlen)
{
    const vamos_model *m = s->m;
    if (errlen)
        err[0] = 0;
    int max_src = o && o->max_src ? o->max_src : 1024, beam = o && o->beam > 1 ? o->beam : 1;
    if (beam > VAMOS_MAX_BEAM)
        beam = VAMOS_MAX_BEAM;
    int32_t **ids = calloc((size_t)count, sizeof *ids), **out = calloc((size_t)count, sizeof *out);
    int *n = calloc((size_t)count, sizeof *n), *words = calloc((size_t)count, sizeof *words), rc = 0;
    int *rows = calloc((size_t)count + 1, sizeof *rows), B = 0;
    if (!ids || !out || !n || !words || !rows)
        rc = -1;
    /* tokenise; sentences with no known word are translated as empty */
    for (int i = 0; rc == 0 && i < count; i++) {
        ids[i] = malloc(sizeof(int32_t) * (size_t)max_src);
        n[i] = ids[i] ? vamos_tokenize(&m->src, texts[i], ids[i], max_src) : 0;
        if (st) {
            st->sentences++;
            st->src_tokens += n[i];
        }
        if (n[i] > 0)
            rows[B++] = i;
    }
    /* batches of similar lengths: less padding, and a batch's sentences
     * end at about the same step */
    if (rc == 0 && by_length(rows, B, n))
        rc = -1;
    int max_rows = o && o->batch_rows > 0 ? o->batch_rows : VAMOS_DEFAULT_BATCH, max_tokens = o ? o->batch_tokens : 0;
    int *bfirst = calloc((size_t)B + 1, sizeof *bfirst), *bsize = calloc((size_t)B + 1, sizeof *bsize), nb = 0;
    if (!bfirst || !bsize)
        rc = -1;
    for (int first = 0; rc == 0 && first < B;) {
        int k = 1;   /* sorted: the last row is the longest, so a batch holds k * its length tokens */
        while (first + k < B && k < max_rows && (max_tokens <= 0 || (long)(k + 1) * n[rows[first + k]] <= max_tokens))
            k++;
        bfirst[nb] = first, bsize[nb++] = k;
        first += k;
    }
    /* lanes when each has at least LANE_BATCHES batches: with fewer, one
     * long batch leaves the other lanes idle at the end. en-es on dev-ood,
     * window 256, 2 threads (farm-bench --vs against kernels split): the
     * default --batch 16 (16 batches) 0.90x the time, beam 4 0.78x; --batch
     * 64 (4 batches) was 1.10x slower in lanes taken shortest first, and is
     * level with 2 per lane taken longest first: so 4, to be safe */
    int lanes = vamos_threads() < MAX_LANES ? vamos_threads() : MAX_LANES;
    if (lanes * LANE_BATCHES > nb)
        lanes = nb / LANE_BATCHES;
    if (vamos_parallel_is_inline())   /* the caller is a lane already (vamos serve's workers) */
        lanes = 1;
    if (rc == 0 && lanes > 1) {
        Lanes a = { .ids = ids, .n = n, .rows = rows, .first = bfirst, .size = bsize, .nb = nb, .beam = beam,
                    .o = o, .out = out, .words = words };
        rc = translate_lanes(s, &a, lanes, st, err, errlen);
    }
    for (int j = 0; rc == 0 && lanes <= 1 && j < nb; j++)   /* one batch, or one thread: kernels split */
        rc = translate_rows(s, ids, n, rows + bfirst[j], bsize[j], o, beam, st, out, words, err, errlen);
    free(bfirst), free(bsize);
    for (int i = 0; i < count; i++) {
        outs[i] = rc == 0 ? vrt_detokenize(&m->tgt, out[i], words[i]) : NULL;
        if (st && rc == 0)
            st->tgt_tokens += words[i];
        if (rc == 0 && !outs[i])
            rc = -1;
    }
    for (int i = 0; ids && i < count; i++)
        free(ids[i]), free(out[i]);
    free(ids), free(out), free(n), free(words), free(rows);
    if (rc && !err[0])
        snprintf(err, errlen, "out of memory");
    return rc;
}

char *vamos_translate(vamos_session *s, const char *text, const vamos_opts *o,
                      vamos_stats *st, char *err, size_t errlen)
{
    char *out = NULL;
    return vamos_translate_batch(s, &text, 1, o, st, &out, err, errlen) ? NULL : out;
}
