/* train.c - `vamos train`: optimise a model's weights on a parallel corpus.
 *
 * The step is the training graph (autodiff.c), fused and compiled
 * (train_graph.c). Around it:
 *
 *   data     TSV pairs (tsv.c) encoded with the model's subword vocabularies
 *            (a word-level vocabulary works too); the decoder reads <bos> +
 *            target and is scored on target + <eos>. Pairs longer than
 *            --max-len tokens on either side are left out (counted).
 *   batches  pairs sorted by length (ties in a seeded random order) and cut
 *            into batches of at most --batch-tokens padded tokens, in a
 *            seeded random order each epoch: similar lengths, little padding.
 *   loss     label-smoothed cross entropy, averaged over the target tokens
 *            of the batch.
 *   update   Adam (beta 0.9, 0.98, eps 1e-9), the learning rate warmed up
 *            linearly for --warmup steps then decayed as 1/sqrt(step)
 *            ("Attention is all you need", 5.3, with --lr as the peak);
 *            gradients clipped to a global norm of --clip.
 *   dropout  the model's dropout() calls, with masks drawn from the seed
 *            and the step number (and the part of the batch, below).
 *   lanes    a batch is cut into --lanes parts (shard(): even shares of its
 *            tokens) run side by side, one thread each with its kernels
 *            unsplit (train_graph_run_lanes), their gradients summed.
 *
 * Under `mpirun -np R` (dist.c), a step's batch is cut for R x
 * --batch-tokens tokens into R x lanes parts, rank r taking parts r x
 * lanes and on; dropout's masks are drawn per part; the ranks' gradients,
 * losses and token counts are summed (MPI_Allreduce) and every rank takes
 * the same Adam step, so R ranks at --batch-tokens B train as one process
 * at R x B (bit for bit, with R lanes). Rank 0 alone prints, evaluates and
 * writes files; it sends its weights to the others after each epoch, so
 * that no difference in the last bit of a sum can build up between them.
 *
 * Everything random comes from --seed, the epoch and the step, so a run is
 * deterministic (given --lanes), and a checkpoint taken at the end of an
 * epoch resumes to the very weights the uninterrupted run gives. After
 * each epoch: dev loss (no dropout) and dev chrF (greedy translations), the
 * weights (-o), the checkpoint (-o + .ckpt: weights, Adam's moments, the
 * position) and the loss curve (-o + .loss.svg).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bpe.h"
#include "cli.h"
#include "pipeline.h"
#include "compile.h"
#include "dist.h"
#include "jit.h"
#include "metrics.h"
#include "train_graph.h"
#include "tsv.h"
#include "tunedb.h"
#include "vamos/parallel.h"
#include "vamos/weights.h"

static const char *usage =
    "usage: vamos train MODEL.vam --data TRAIN.tsv --dev DEV.tsv -o W.safetensors [options]\n\n"
    "Train the model's weights on a parallel corpus (lines source<TAB>target).\n"
    "After each epoch it reports dev loss and dev chrF (greedy, first 200 pairs) and\nwrites W.safetensors,"
    " the checkpoint W.safetensors.ckpt and the loss curve W.safetensors.loss.svg.\n"
    "Under `mpirun -np R vamos train ...` R processes train one model, each on its\n"
    "share of every batch (data-parallel, gradients summed over MPI): R ranks at\n"
    "--batch-tokens B train as one process at R x B. Rank 0 alone writes.\n\n"
    "  --data FILE         training pairs\n"
    "  --dev FILE          held-out pairs for dev loss and chrF\n"
    "  -o FILE             the trained weights\n"
    "  --epochs N          passes over the data (default 10)\n"
    "  --time MINUTES      stop after the first step past this time (default: none)\n"
    "  --batch-tokens N    padded tokens per batch, per rank under mpirun (default 4096)\n"
    "  --lr X              peak learning rate (default 0.001)\n"
    "  --warmup N          warm-up steps (default 1000)\n"
    "  --smoothing X       label smoothing (default 0.1)\n"
    "  --clip X            gradient norm clipping (default 1.0)\n"
    "  --max-len N         leave out pairs with more tokens on a side (default 64)\n"
    "  --seed N            initial weights, batch order, dropout (default 1)\n"
    "  --keep N            also keep the weights of the last N epochs, as\n"
    "                      W.safetensors.epochE, for vamos average (default 0)\n"
    "  --resume CKPT       continue from a checkpoint\n"
    "  -w FILE             start from these weights instead of random ones\n"
    "  --threads N         threads (default: every core, shared among the ranks\n"
    "                      of one machine under mpirun)\n"
    "  --lanes N           cut each batch into N parts run side by side, one\n"
    "                      thread each, gradients summed (default: the threads;\n"
    "                      results depend on it as on the batch, not on --threads)\n"
    "  --no-tune           ignore the tuning database (the step's kernels take\n"
    "                      their default schedules; by default, those recorded by\n"
    "                      `vamos tune MODEL.vam --train` on this machine)\n"
    "  --interp            run the step by the reference interpreter (slow; tests)\n";

#define VAMOS_STR_(x) #x
#define VAMOS_STR(x) VAMOS_STR_(x)

typedef struct Args {
    const char *model, *data, *dev, *out, *resume, *init;
    int epochs, batch_tokens, warmup, max_len, threads, keep, lanes;
    double lr, smoothing, clip, minutes;
    uint64_t seed;
    bool interp, no_tune;
} Args;

typedef struct Pair {
    int32_t *src, *tgt;
    int ns, nt;
    const char *ref;   /* dev: the reference text */
} Pair;

typedef struct Set {
    Pair *p;
    int n, too_long;
    int32_t *ids;      /* every pair's ids, one block */
} Set;

typedef struct Range { int from, to, src_len, tgt_len; } Range;


/* splitmix64: every random choice of training. */
static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ------------------------------------------------------------- data */

/* Text to ids with a vocabulary: its BPE, or whitespace-separated words. */
typedef struct Coder {
    const Vocab *v;
    vamos_bpe *bpe;
} Coder;

static int coder_init(Coder *c, const Vocab *v, char *err, size_t errlen)
{
    c->v = v;
    c->bpe = NULL;
    if (v->bpe && !(c->bpe = vamos_bpe_parse(v->bpe, v->bpe_len, err, errlen)))
        return -1;
    if (!v->bpe && v->unk < 0) {
        snprintf(err, errlen, "vocabulary '%s' is neither a subword vocabulary nor has <unk> for unknown words", v->name);
        return -1;
    }
    return 0;
}

static int encode(const Coder *c, const char *text, int32_t *ids, int max, bool *cut)
{
    if (c->bpe)
        return vamos_bpe_encode(c->bpe, text, ids, max, cut);
    char err[64];
    int n = tokenize(c->v, text, ids, max, err, sizeof err);
    *cut = n == max;
    return n < 0 ? 0 : n;
}

static int load_set(const char *path, const Coder *sc, const Coder *tc, int max_len, bool keep_text, Set *s,
                    Tsv *tsv)
{
    char err[512];
    memset(s, 0, sizeof *s);
    if (tsv_read(path, tsv, stderr, 20, err, sizeof err)) {
        fprintf(stderr, "vamos train: %s\n", err);
        return -1;
    }
    s->p = calloc((size_t)tsv->n + 1, sizeof *s->p);
    s->ids = malloc(sizeof(int32_t) * (size_t)(tsv->n + 1) * 2 * (size_t)(max_len + 1));
    if (!s->p || !s->ids) {
        fprintf(stderr, "vamos train: out of memory for '%s'\n", path);
        return -1;
    }
    int32_t *at = s->ids;
    for (int i = 0; i < tsv->n; i++) {
        bool cut1 = false, cut2 = false;
        Pair p = { .src = at };
        p.ns = encode(sc, tsv->p[i].src, at, max_len + 1, &cut1);
        p.tgt = at + p.ns;
        p.nt = encode(tc, tsv->p[i].tgt, p.tgt, max_len + 1, &cut2);
        if (p.ns > max_len || p.nt > max_len || cut1 || cut2 || p.ns == 0) {
            s->too_long++;
            continue;
        }
        p.ref = keep_text ? tsv->p[i].tgt : NULL;
        at += p.ns + p.nt;
        s->p[s->n++] = p;
    }
    return 0;
}

static void set_free(Set *s)
{
    free(s->p);
    free(s->ids);
}

/* The epoch's batches: order[] sorted by (target, source) length with
 * seeded random ties, cut at batch_tokens, then shuffled. */
static int make_batches(const Set *s, int batch_tokens, uint64_t seed, int epoch, int *order, Range *out)
{
    uint64_t *key = malloc(sizeof(uint64_t) * (size_t)(s->n + 1));
    for (int i = 0; i < s->n; i++) {
        key[i] = (uint64_t)s->p[i].nt << 48 | (uint64_t)s->p[i].ns << 40 |
                 (mix(seed ^ mix((uint64_t)epoch * 7919 + (uint64_t)i)) >> 24);
        order[i] = i;
    }
    /* shell sort by key: deterministic, no qsort context needed */
    for (int gap = s->n / 2; gap > 0; gap /= 2)
        for (int i = gap; i < s->n; i++)
            for (int j = i; j >= gap && key[order[j - gap]] > key[order[j]]; j -= gap) {
                int t = order[j];
                order[j] = order[j - gap], order[j - gap] = t;
            }
    free(key);
    int nb = 0;
    for (int i = 0; i < s->n;) {
        Range r = { .from = i, .src_len = 0, .tgt_len = 0 };
        while (i < s->n) {
            const Pair *p = &s->p[order[i]];
            int sl = p->ns > r.src_len ? p->ns : r.src_len, tl = p->nt + 1 > r.tgt_len ? p->nt + 1 : r.tgt_len;
            int rows = i - r.from + 1, width = sl > tl ? sl : tl;
            if (rows > 1 && (int64_t)rows * width > batch_tokens)
                break;
            r.src_len = sl, r.tgt_len = tl;
            i++;
        }
        r.to = i;
        out[nb++] = r;
    }
    uint64_t z = mix(seed * 31 + (uint64_t)epoch);
    for (int i = nb - 1; i > 0; i--) {
        z = mix(z);
        int j = (int)(z % (uint64_t)(i + 1));
        Range t = out[i];
        out[i] = out[j], out[j] = t;
    }
    return nb;
}

/* Share `part` of `parts` of a batch: the rows whose middle token (of
 * source and target) falls in that even share of the batch's tokens,
 * padded to the longest of them. Rows sorted by length make an even cut
 * of the rows an uneven cut of the work. Empty when the batch has fewer
 * rows than parts. */
static Range shard(const Set *s, const int *order, Range r, int part, int parts)
{
    if (parts == 1)
        return r;
    int64_t total = 0, at = 0;
    for (int i = r.from; i < r.to; i++)
        total += s->p[order[i]].ns + s->p[order[i]].nt;
    Range m = { .from = r.to, .to = r.to };
    for (int i = r.from; i < r.to; i++) {
        const Pair *p = &s->p[order[i]];
        int64_t owner = (2 * at + p->ns + p->nt) * parts / (2 * total);   /* the part of the row's middle token */
        at += p->ns + p->nt;
        if (owner < part)
            continue;
        if (owner > part)
            break;
        if (m.from == r.to)
            m.from = i;
        m.to = i + 1;
        m.src_len = p->ns > m.src_len ? p->ns : m.src_len;
        m.tgt_len = p->nt + 1 > m.tgt_len ? p->nt + 1 : m.tgt_len;
    }
    return m;
}

typedef struct BatchBuf {
    int32_t *src, *sl, *tin, *tl, *lab;
    int cap_rows, cap_tok;
} BatchBuf;

/* The padded arrays of a batch; returns its target token count. */
static int fill_batch(BatchBuf *bb, const Set *s, const int *order, Range r, const Model *m, TrainBatch *b)
{
    int rows = r.to - r.from;
    if (rows > bb->cap_rows || rows * (r.src_len + r.tgt_len) > bb->cap_tok) {
        bb->cap_rows = rows * 2, bb->cap_tok = rows * (r.src_len + r.tgt_len) * 2;
        bb->sl = realloc(bb->sl, sizeof(int32_t) * (size_t)bb->cap_rows);
        bb->tl = realloc(bb->tl, sizeof(int32_t) * (size_t)bb->cap_rows);
        bb->src = realloc(bb->src, sizeof(int32_t) * (size_t)bb->cap_tok);
        bb->tin = realloc(bb->tin, sizeof(int32_t) * (size_t)bb->cap_tok);
        bb->lab = realloc(bb->lab, sizeof(int32_t) * (size_t)bb->cap_tok);
        if (!bb->sl || !bb->tl || !bb->src || !bb->tin || !bb->lab)
            return -1;
    }
    int spad = m->src->pad >= 0 ? m->src->pad : 0, tpad = m->tgt->pad >= 0 ? m->tgt->pad : m->tgt->eos;
    int start = m->tgt->bos >= 0 ? m->tgt->bos : m->tgt->eos, ntok = 0;
    for (int i = 0; i < rows; i++) {
        const Pair *p = &s->p[order[r.from + i]];
        for (int k = 0; k < r.src_len; k++)
            bb->src[i * r.src_len + k] = k < p->ns ? p->src[k] : spad;
        for (int k = 0; k < r.tgt_len; k++) {
            bb->tin[i * r.tgt_len + k] = k == 0 ? start : k <= p->nt ? p->tgt[k - 1] : tpad;
            bb->lab[i * r.tgt_len + k] = k < p->nt ? p->tgt[k] : k == p->nt ? m->tgt->eos : -1;
        }
        bb->sl[i] = p->ns;
        bb->tl[i] = p->nt + 1;
        ntok += p->nt + 1;
    }
    *b = (TrainBatch){ rows, r.src_len, r.tgt_len, bb->src, bb->sl, bb->tin, bb->tl, bb->lab };
    return ntok;
}

/* --------------------------------------------------------- the state */

typedef struct TState {
    int np;
    int64_t *numel;
    float **w, **g, **m1, **m2;   /* per weight: pointers into the blocks below */
    float *weights, *grad, *mom1, *mom2;   /* one block each: one allreduce, one update loop */
    size_t ngrad;         /* floats in each block */
#define STATE_BLOCK 16384  /* floats of a block one part of a pool job takes (lane sum, Adam) */
    float *lgrad[TRAIN_MAX_LANES], **lg[TRAIN_MAX_LANES];   /* each lane's gradients; lane 0's are grad, g */
    float **eval[2];      /* weights for dev translation, in turn (dev_chrf) */
    int64_t step;
    int epoch;            /* epochs done */
    /* the loss curve: mean training loss per point, dev loss per epoch */
    float *curve;        /* floats, as the checkpoint keeps them */
    int ncurve, cap_curve;
    float dev_loss[256], dev_chrf[256];
} TState;

static int state_alloc(TState *s, const Model *m)
{
    s->np = m->nparams;
    s->numel = calloc((size_t)s->np + 1, sizeof *s->numel);
    s->w = calloc((size_t)s->np + 1, sizeof *s->w);
    s->g = calloc((size_t)s->np + 1, sizeof *s->g);
    s->m1 = calloc((size_t)s->np + 1, sizeof *s->m1);
    s->m2 = calloc((size_t)s->np + 1, sizeof *s->m2);
    if (!s->numel || !s->w || !s->g || !s->m1 || !s->m2)
        return -1;
    for (int i = 0; i < s->np; i++) {
        s->numel[i] = shape_numel_const(&m->params[i].shape);
        s->ngrad += (size_t)s->numel[i];
    }
    size_t bytes = (s->ngrad + 1) * sizeof(float);   /* each block in huge pages where there are */
    if (!(s->weights = train_alloc(bytes)) || !(s->grad = train_alloc(bytes)) || !(s->mom1 = train_alloc(bytes)) ||
        !(s->mom2 = train_alloc(bytes)))
        return -1;
    for (size_t i = 0, at = 0; i < (size_t)s->np; at += (size_t)s->numel[i++])
        s->w[i] = s->weights + at, s->g[i] = s->grad + at, s->m1[i] = s->mom1 + at, s->m2[i] = s->mom2 + at;
    s->lgrad[0] = s->grad, s->lg[0] = s->g;
    return 0;
}

/* Gradient blocks for lanes 1..lanes-1. */
static int lanes_alloc(TState *s, int lanes)
{
    for (int l = 1; l < lanes; l++) {
        if (!(s->lgrad[l] = train_alloc((s->ngrad + 1) * sizeof(float))) || !(s->lg[l] = calloc((size_t)s->np + 1, sizeof(float *))))
            return -1;
        for (size_t i = 0, at = 0; i < (size_t)s->np; at += (size_t)s->numel[i++])
            s->lg[l][i] = s->lgrad[l] + at;
    }
    return 0;
}

/* grad += the other lanes' gradients, in lane order, on the pool. */
typedef struct LaneSum { TState *s; int lanes; } LaneSum;

static int32_t lane_sum(void *out, const void *a, const void *b, const int64_t *dims, int64_t lo, int64_t hi)
{
    (void)a, (void)b, (void)dims;
    const LaneSum *u = out;
    size_t end = (size_t)hi * STATE_BLOCK < u->s->ngrad ? (size_t)hi * STATE_BLOCK : u->s->ngrad;
    for (int l = 1; l < u->lanes; l++) {
        const float *x = u->s->lgrad[l];
        float *y = u->s->grad;
        for (size_t k = (size_t)lo * STATE_BLOCK; k < end; k++)
            y[k] += x[k];
    }
    return 0;
}

static void state_free(TState *s)
{
    for (int k = 0; k < 2; k++) {
        for (int i = 0; s->eval[k] && i < s->np; i++)
            free(s->eval[k][i]);
        free(s->eval[k]);
    }
    free(s->w), free(s->g), free(s->m1), free(s->m2), free(s->numel), free(s->curve);
    free(s->weights), free(s->grad), free(s->mom1), free(s->mom2);
    for (int l = 1; l < TRAIN_MAX_LANES; l++)
        free(s->lgrad[l]), free(s->lg[l]);
}

/* Copy tensors named like the model's params (prefix + name) into dst. */
static int load_named(const Model *m, const vamos_weights *w, const char *prefix, float **dst, const char *path)
{
    for (int i = 0; i < m->nparams; i++) {
        char name[1024];
        snprintf(name, sizeof name, "%s%s", prefix, m->params[i].name);
        const vamos_tensor *t = vamos_weights_find(w, name);
        int64_t n = shape_numel_const(&m->params[i].shape);
        if (!t || t->dtype != VAMOS_F32 || t->nbytes != sizeof(float) * (size_t)n) {
            fprintf(stderr, "vamos train: %s: tensor '%s' is %s\n", path, name, t ? "not the model's shape" : "missing");
            return -1;
        }
        memcpy(dst[i], t->data, t->nbytes);
    }
    return 0;
}

/* A checkpoint's record of the run so far (so a resumed run's curve
 * starts at the beginning): the curve points, dev loss and chrF per epoch. */
static const char *const history_names[] = { "train.curve", "train.dev_loss", "train.dev_chrf" };

static int save(const Model *m, const TState *s, const Args *a, const char *path, bool ckpt)
{
    int n = m->nparams * (ckpt ? 3 : 1), nh = ckpt ? 3 : 0;
    vamos_tensor *t = calloc((size_t)(n + nh) + 1, sizeof *t);
    int ne = s->epoch < 256 ? s->epoch : 256;
    float *hist[3] = { calloc((size_t)s->ncurve + 1, 4), calloc((size_t)ne + 1, 4), calloc((size_t)ne + 1, 4) };
    int64_t hn[3] = { s->ncurve, ne, ne };
    for (int i = 0; hist[0] && i < s->ncurve; i++)
        hist[0][i] = (float)s->curve[i];
    for (int e = 0; hist[1] && hist[2] && e < ne; e++)
        hist[1][e] = (float)s->dev_loss[e], hist[2][e] = (float)s->dev_chrf[e];
    for (int k = 0; t && k < nh; k++)
        t[n + k] = (vamos_tensor){ .name = history_names[k], .dtype = VAMOS_F32, .rank = 1, .shape = { hn[k] },
                                   .data = hist[k], .nbytes = 4 * (size_t)hn[k] };
    char **names = calloc((size_t)n + 1, sizeof *names);
    if (!t || !names || !hist[0] || !hist[1] || !hist[2]) {
        free(t), free(names), free(hist[0]), free(hist[1]), free(hist[2]);
        return -1;
    }
    for (int k = 0; k < n; k++) {
        int i = k % m->nparams, part = k / m->nparams;
        const ParamInfo *p = &m->params[i];
        names[k] = malloc(strlen(p->name) + 8);
        sprintf(names[k], "%s%s", part == 0 ? "" : part == 1 ? "adam.m." : "adam.v.", p->name);
        t[k] = (vamos_tensor){ .name = names[k], .dtype = VAMOS_F32, .rank = p->shape.rank,
                               .data = part == 0 ? s->w[i] : part == 1 ? s->m1[i] : s->m2[i],
                               .nbytes = sizeof(float) * (size_t)s->numel[i] };
        for (int d = 0; d < p->shape.rank; d++)
            t[k].shape[d] = p->shape.d[d].n;
    }
    char step[32], epoch[32], seed[32];
    snprintf(step, sizeof step, "%lld", (long long)s->step);
    snprintf(epoch, sizeof epoch, "%d", s->epoch);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)a->seed);
    const char *meta[] = { "vamos.model", m->name, "vamos.train.step", step, "vamos.train.epoch", epoch,
                           "vamos.train.seed", seed };
    char err[512];
    int rc = vamos_weights_save(path, t, n + nh, meta, ckpt ? 4 : 1, err, sizeof err);
    if (rc)
        fprintf(stderr, "vamos train: %s\n", err);
    for (int k = 0; k < n; k++)
        free(names[k]);
    free(names), free(t), free(hist[0]), free(hist[1]), free(hist[2]);
    return rc;
}

/* ------------------------------------------------------------ update */

static double lr_at(const Args *a, int64_t step)
{
    double s = (double)step, w = (double)a->warmup;
    return a->lr * fmin(s / w, sqrt(w / s));
}

/* The update runs on the thread pool over blocks of the state: the sum of
 * squares in UPDATE_PARTS fixed parts, added in their order (the same
 * norm whatever the threads), then Adam element by element. One thread
 * took 40 ms a step for en-es's 9.6 M weights. */
#define UPDATE_PARTS 64

typedef struct Adam {
    const TState *s;
    double part[UPDATE_PARTS];
    float scale, b1, b2, step_size, c2, eps;
} Adam;

static int32_t squares(void *out, const void *a, const void *b, const int64_t *dims, int64_t lo, int64_t hi)
{
    (void)a, (void)b, (void)dims;
    Adam *u = out;
    size_t n = u->s->ngrad;
    for (int64_t p = lo; p < hi; p++) {
        double sq = 0;
        const float *g = u->s->grad;
        for (size_t k = n * (size_t)p / UPDATE_PARTS; k < n * (size_t)(p + 1) / UPDATE_PARTS; k++)
            sq += (double)g[k] * g[k];
        u->part[p] = sq;
    }
    return 0;
}

static int32_t adam(void *out, const void *a, const void *b, const int64_t *dims, int64_t lo, int64_t hi)
{
    (void)a, (void)b, (void)dims;
    const Adam *u = out;
    float *w = u->s->weights, *g = u->s->grad, *m1 = u->s->mom1, *m2 = u->s->mom2;
    size_t end = (size_t)hi * STATE_BLOCK < u->s->ngrad ? (size_t)hi * STATE_BLOCK : u->s->ngrad;
    for (size_t k = (size_t)lo * STATE_BLOCK; k < end; k++) {
        float gk = g[k] * u->scale;
        m1[k] = u->b1 * m1[k] + (1 - u->b1) * gk;
        m2[k] = u->b2 * m2[k] + (1 - u->b2) * gk * gk;
        w[k] -= u->step_size * m1[k] / (sqrtf(m2[k] * u->c2) + u->eps);
    }
    return 0;
}

/* Adam on the mean loss (grads hold the sum over ntok tokens). */
static double update(TState *s, const Args *a, int ntok)
{
    Adam u = { .s = s };
    vamos_parallel(squares, &u, NULL, NULL, NULL, UPDATE_PARTS, (int64_t)s->ngrad);
    double sq = 0;
    for (int p = 0; p < UPDATE_PARTS; p++)
        sq += u.part[p];
    double norm = sqrt(sq) / ntok;
    double scale = (1.0 / ntok) * (norm > a->clip ? a->clip / norm : 1.0);
    s->step++;
    const double b1 = 0.9, b2 = 0.98, eps = 1e-9;
    double lr = lr_at(a, s->step);
    double c1 = 1 - pow(b1, (double)s->step), c2 = 1 - pow(b2, (double)s->step);
    u.scale = (float)scale, u.b1 = (float)b1, u.b2 = (float)b2;
    u.step_size = (float)(lr / c1), u.c2 = (float)(1.0 / c2), u.eps = (float)eps;
    vamos_parallel(adam, &u, NULL, NULL, NULL, (int64_t)((s->ngrad + STATE_BLOCK - 1) / STATE_BLOCK),
                   (int64_t)s->ngrad);
    return norm;
}

/* ------------------------------------------------------- evaluation */

/* Dev loss per target token, without dropout (the eval graph). */
static double dev_loss(TrainGraph *eval, TState *s, const Set *dev, const Model *m, int batch_tokens, int *order,
                       Range *ranges, BatchBuf *bb)
{
    int nb = make_batches(dev, batch_tokens * dist_size(), 0, 0, order, ranges);
    double sum[2] = { 0, 0 };   /* loss, tokens: this rank's shares, then all */
    for (int i = 0; i < nb; i++) {
        Range r = shard(dev, order, ranges[i], dist_rank(), dist_size());
        if (r.to == r.from)
            continue;
        TrainBatch b;
        int nt = fill_batch(bb, dev, order, r, m, &b);
        double l;
        char err[512];
        if (nt < 0 || train_graph_run(eval, s->w, &b, 0, s->g, &l, err, sizeof err)) {
            fprintf(stderr, "vamos train: dev loss: %s\n", nt < 0 ? "out of memory" : err);
            dist_abort(1);
            return NAN;
        }
        sum[0] += l, sum[1] += nt;
    }
    if (dist_sum_f64(sum, 2))
        return NAN;
    return sum[1] > 0 ? sum[0] / sum[1] : NAN;
}

/* Greedy decoding here recomputes the decoder for every word (the
 * translator's incremental step needs the weights packed into a model
 * blob), so the per-epoch chrF uses the first pairs of the dev set only;
 * `vamos eval` scores all of it. */
#define DEV_CHRF_PAIRS 200

/* Dev chrF of greedy translations by the inference model (fused, compiled),
 * on a copy of the weights in one of two sets, used in turn: the JIT packs
 * a weight again only when it is given another array than the last time. */
static double dev_chrf(Jit *jit, const Model *inf, TState *s, const Set *dev, const Coder *tc, int max_len)
{
    float **w = s->eval[s->epoch % 2];
    if (!w)
        w = s->eval[s->epoch % 2] = calloc((size_t)s->np + 1, sizeof *w);
    for (int i = 0; w && i < s->np; i++) {
        if (!w[i])
            w[i] = malloc(sizeof(float) * (size_t)(s->numel[i] ? s->numel[i] : 1));
        if (!w[i]) {
            fprintf(stderr, "vamos train: out of memory for the dev translations\n");
            return NAN;
        }
        memcpy(w[i], s->w[i], sizeof(float) * (size_t)s->numel[i]);
    }
    vamos_metrics *mt = vamos_metrics_new();
    int32_t *out = malloc(sizeof(int32_t) * (size_t)(2 * max_len + 8));
    Engine eng = { jit };
    double score = NAN;
    bool ok = w && mt && out;
    for (int i = 0; ok && i < dev->n && i < DEV_CHRF_PAIRS; i++) {
        char err[512];
        int n = greedy_decode(&eng, inf, w, dev->p[i].src, dev->p[i].ns, 2 * dev->p[i].ns + 10, out, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "vamos train: dev translation: %s\n", err);
            ok = false;
            break;
        }
        char *hyp = tc->bpe ? vamos_bpe_decode(tc->bpe, out, n) : detokenize_ids(inf->tgt, out, n);
        ok = hyp && vamos_metrics_add(mt, hyp, dev->p[i].ref) == 0;
        free(hyp);
    }
    if (ok)
        score = vamos_metrics_chrf(mt);
    vamos_metrics_free(mt);
    free(out);
    return score;
}

/* --------------------------------------------------------- the curve */

static void write_svg(const TState *s, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    const int W = 640, H = 400, L = 60, R = 20, T = 30, Bm = 50;
    double ymax = 0, ymin = 1e9;
    for (int i = 0; i < s->ncurve; i++)
        ymax = fmax(ymax, s->curve[i]), ymin = fmin(ymin, s->curve[i]);
    for (int e = 0; e < s->epoch && e < 256; e++)
        if (isfinite(s->dev_loss[e]))
            ymax = fmax(ymax, s->dev_loss[e]), ymin = fmin(ymin, s->dev_loss[e]);
    if (ymin > ymax)
        ymin = 0, ymax = 1;
    ymin = fmax(0, floor(ymin)), ymax = ceil(ymax);
    double xmax = s->ncurve > 1 ? s->ncurve - 1 : 1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"18\">training loss (blue, per %d%% of an epoch) and dev loss (red, per epoch)"
               "</text>\n", L, 10);
    for (int k = 0; k <= 4; k++) {
        double v = ymin + (ymax - ymin) * k / 4, y = H - Bm - (H - T - Bm) * (double)k / 4;
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", L, W - R, y, y, L - 6, y + 4, v);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">epochs (%d done, %lld steps)</text>\n", (L + W - R) / 2,
            H - 15, s->epoch, (long long)s->step);
#define PX(i) (L + (W - L - R) * (double)(i) / xmax)
#define PY(v) (H - Bm - (H - T - Bm) * ((v) - ymin) / (ymax - ymin))
    fprintf(f, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"");
    for (int i = 0; i < s->ncurve; i++)
        fprintf(f, "%.1f,%.1f ", PX(i), PY(s->curve[i]));
    fprintf(f, "\"/>\n<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"");
    for (int e = 0; e < s->epoch && e < 256; e++)
        if (isfinite(s->dev_loss[e]))
            fprintf(f, "%.1f,%.1f ", PX((e + 1) * 10 - 1 < s->ncurve ? (e + 1) * 10 - 1 : s->ncurve - 1), PY(s->dev_loss[e]));
    fprintf(f, "\"/>\n</svg>\n");
#undef PX
#undef PY
    fclose(f);
}

/* ------------------------------------------------------------ driver */

static int parse_args(int argc, char **argv, Args *a)
{
    static const struct option opts[] = {
        { "help", no_argument, 0, 'h' }, { "data", required_argument, 0, 'd' }, { "dev", required_argument, 0, 'D' },
        { "output", required_argument, 0, 'o' }, { "epochs", required_argument, 0, 'e' },
        { "batch-tokens", required_argument, 0, 'b' }, { "lr", required_argument, 0, 'l' },
        { "warmup", required_argument, 0, 'W' }, { "smoothing", required_argument, 0, 'S' },
        { "clip", required_argument, 0, 'c' }, { "max-len", required_argument, 0, 'M' },
        { "seed", required_argument, 0, 's' }, { "resume", required_argument, 0, 'r' },
        { "weights", required_argument, 0, 'w' }, { "threads", required_argument, 0, 'j' },
        { "time", required_argument, 0, 't' }, { "interp", no_argument, 0, 'I' },
        { "keep", required_argument, 0, 'k' }, { "lanes", required_argument, 0, 'L' },
        { "no-tune", no_argument, 0, 'N' }, { 0, 0, 0, 0 },
    };
    *a = (Args){ .epochs = 10, .batch_tokens = 4096, .warmup = 1000, .max_len = 64, .lr = 1e-3, .smoothing = 0.1,
                 .clip = 1.0, .seed = 1 };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:w:", opts, NULL)) != -1) {
        char *end = NULL;
        double v = 0;
        if (strchr("ebWMjlSctskL", c)) {
            errno = 0;
            v = strtod(optarg, &end);
            const char *name = NULL;
            for (int i = 0; opts[i].name; i++)
                if (opts[i].val == c)
                    name = opts[i].name;
            bool integer = strchr("ebWMjskL", c) != NULL;
            double lo = c == 'S' || c == 's' || c == 'j' || c == 'k' ? 0 : c == 'L' ? 1 : 1e-12;
            double hi = c == 'S' ? 0.999 : c == 'L' ? TRAIN_MAX_LANES : 1e15;
            if (!*optarg || *end || errno || !(v >= lo && v <= hi) || (integer && v != floor(v))) {
                fprintf(stderr, "vamos train: --%s wants %s, not '%s'\n", name,
                        c == 'S'   ? "a number from 0 to 0.999"
                        : c == 'L' ? "a whole number from 1 to " VAMOS_STR(TRAIN_MAX_LANES)
                        : integer  ? "a positive whole number"
                                   : "a positive number",
                        optarg);
                return 2;
            }
        }
        switch (c) {
        case 'h': fputs(usage, stdout); return 1;
        case 'd': a->data = optarg; break;
        case 'D': a->dev = optarg; break;
        case 'o': a->out = optarg; break;
        case 'e': a->epochs = (int)fmin(v, 255); break;
        case 'b': a->batch_tokens = (int)fmin(v, 1 << 24); break;
        case 'W': a->warmup = (int)fmin(v, 1e9); break;
        case 'M': a->max_len = (int)fmin(v, 1024); break;
        case 'j': a->threads = (int)fmin(v, VAMOS_MAX_THREADS); break;
        case 'k': a->keep = (int)fmin(v, 1000); break;
        case 'L': a->lanes = (int)fmin(v, TRAIN_MAX_LANES); break;
        case 'l': a->lr = v; break;
        case 'S': a->smoothing = v; break;
        case 'c': a->clip = v; break;
        case 't': a->minutes = v; break;
        case 's': a->seed = (uint64_t)v; break;
        case 'r': a->resume = optarg; break;
        case 'w': a->init = optarg; break;
        case 'I': a->interp = true; break;
        case 'N': a->no_tune = true; break;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind == argc - 1)
        a->model = argv[optind];
    const char *missing = !a->model ? "a MODEL.vam" : !a->data ? "--data" : !a->dev ? "--dev" : !a->out ? "-o" : NULL;
    if (missing || optind < argc - 1) {
        fprintf(stderr, "vamos train: %s%s\n\n%s", missing ? "missing " : "", missing ? missing : "more than one model given",
                usage);
        return 2;
    }
    /* the output path, checked now rather than after the whole run */
    struct stat st;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", a->out);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir] = 0;   /* "/x" -> "/" */
    if (stat(a->out, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "vamos train: -o %s: is a directory; give the weights' file name\n", a->out);
        return -1;
    }
    if (access(slash ? dir : ".", W_OK)) {
        fprintf(stderr, "vamos train: -o %s: cannot write in %s: %s\n", a->out, slash ? dir : ".", strerror(errno));
        return -1;
    }
    return 0;
}

static Model *compile_model(Arena *a, const char *path, const char *after)
{
    Diag d;
    diag_init(&d, stderr);
    Model *m = compile_file(a, &d, path, after);
    return d.errors ? NULL : m;
}

static void progress(const TState *s, int epoch, int epochs, int b, int nb, double loss, double tps, double left, bool tty)
{
    int h = (int)(left / 3600), mnt = (int)(fmod(left, 3600) / 60), sec = (int)fmod(left, 60);
    char ranks[32] = "";
    if (dist_size() > 1)
        snprintf(ranks, sizeof ranks, " (%d ranks)", dist_size());
    fprintf(stderr, "%sepoch %d/%d  batch %d/%d  step %lld  loss %.3f  %.0f tok/s%s  left %d:%02d:%02d%s",
            tty ? "\r" : "", epoch + 1, epochs, b, nb, (long long)s->step, loss, tps, ranks, h, mnt, sec,
            tty ? "   " : "\n");
}

/* Rank 0 of an MPI run, ended by mpirun because another rank died (or
 * by the user): say so, and where the last whole checkpoint is. */
static char stopped_msg[4200];
static size_t stopped_len;

static void on_stop(int sig)
{
    (void)sig;
    ssize_t n = write(2, stopped_msg, stopped_len);
    (void)n;
    _exit(1);
}

int cmd_train_main(int argc, char **argv)
{
    Args A;
    int rc = parse_args(argc, argv, &A);
    if (rc)
        return rc == 1 ? 0 : rc < 0 ? 1 : rc;   /* 1: --help; -1: a bad output path */
    char err[1024];
    if (dist_init(err, sizeof err)) {
        fprintf(stderr, "vamos train: %s\n", err);
        return 1;
    }
    bool rank0 = dist_rank() == 0;
    if (A.threads || dist_size() > 1)
        vamos_set_threads(A.threads ? A.threads : dist_default_threads());
    if (!A.lanes)   /* the interpreter runs one batch at a time */
        A.lanes = A.interp ? 1 : vamos_threads() < TRAIN_MAX_LANES ? vamos_threads() : TRAIN_MAX_LANES;
    if (dist_size() > 1 && rank0) {
        snprintf(stopped_msg, sizeof stopped_msg,
                 "\nvamos train: stopped by a signal (mpirun ends the run when a rank fails); "
                 "the last checkpoint, %s.ckpt (if an epoch ended), is whole\n", A.out);
        stopped_len = strlen(stopped_msg);
        signal(SIGTERM, on_stop);
        signal(SIGINT, on_stop);
        fprintf(stderr, "%d ranks (%s), %d thread%s each\n", dist_size(), dist_library() ? dist_library() : "MPI",
                vamos_threads(), vamos_threads() == 1 ? "" : "s");
    }
    Arena ar = { 0 };
    /* compiled once: the training graphs (dropout kept), then forks of
     * them that go on through the stages: without dropout for the dev
     * loss, and all the way for translating */
    Model *m = compile_model(&ar, A.model, "train"), *mev = NULL, *inf = NULL;
    if (m) {
        mev = model_fork(&ar, m);
        pipeline_run(&ar, mev, STAGE_ELAB, &(Pipeline){ .last = STAGE_DCE });
        inf = model_fork(&ar, mev);
        pipeline_run(&ar, inf, STAGE_INCREMENTAL, &(Pipeline){ .last = STAGE_COUNT - 1 });
    }
    if (!inf) {
        arena_free(&ar);
        return 1;
    }
    Coder sc, tc;
    if (coder_init(&sc, m->src, err, sizeof err) || coder_init(&tc, m->tgt, err, sizeof err)) {
        fprintf(stderr, "vamos train: %s\n", err);
        arena_free(&ar);
        return 1;
    }
    Set train, dev;
    Tsv ttsv, dtsv;
    TState S = { 0 };
    TrainGraph *tg = NULL, *eg = NULL;
    Jit *jit = NULL;
    int *order = NULL;
    Range *ranges = NULL;
    BatchBuf bb = { 0 }, lbb[TRAIN_MAX_LANES] = { { 0 } };
    rc = 1;
    if (load_set(A.data, &sc, &tc, A.max_len, false, &train, &ttsv) ||
        load_set(A.dev, &sc, &tc, A.max_len, true, &dev, &dtsv))
        goto done;
    if (train.n == 0 || dev.n == 0) {   /* an empty dev set gives a dev loss of nan every epoch */
        fprintf(stderr, "vamos train: %s has no usable pairs\n", train.n == 0 ? A.data : A.dev);
        goto done;
    }
    if (rank0)
        fprintf(stderr, "train: %d pairs (%d malformed, %d longer than %d tokens, left out); dev: %d pairs\n",
                train.n, ttsv.skipped, train.too_long, A.max_len, dev.n);
    if (state_alloc(&S, m) || lanes_alloc(&S, A.lanes)) {
        fprintf(stderr, "vamos train: out of memory for the weights\n");
        goto done;
    }
    if (A.resume || A.init) {
        const char *path = A.resume ? A.resume : A.init;
        vamos_weights *w = vamos_weights_load(path, 0, err, sizeof err);
        if (!w) {
            fprintf(stderr, "vamos train: %s\n", err);
            goto done;
        }
        int bad = load_named(m, w, "", S.w, path);
        if (!bad && A.resume) {
            bad = load_named(m, w, "adam.m.", S.m1, path) || load_named(m, w, "adam.v.", S.m2, path);
            const char *st = vamos_weights_meta(w, "vamos.train.step"), *ep = vamos_weights_meta(w, "vamos.train.epoch");
            const char *sd = vamos_weights_meta(w, "vamos.train.seed");
            if (!bad && (!st || !ep || !sd)) {
                fprintf(stderr, "vamos train: %s is not a checkpoint (no vamos.train.step)\n", path);
                bad = 1;
            }
            if (!bad) {
                S.step = atoll(st), S.epoch = atoi(ep);
                A.seed = strtoull(sd, NULL, 10);
                const vamos_tensor *c = vamos_weights_find(w, history_names[0]);
                const vamos_tensor *dl = vamos_weights_find(w, history_names[1]);
                const vamos_tensor *dc = vamos_weights_find(w, history_names[2]);
                if (c && c->dtype == VAMOS_F32 && c->nbytes && (S.curve = malloc(c->nbytes))) {
                    S.ncurve = S.cap_curve = (int)(c->nbytes / 4);
                    for (int i = 0; i < S.ncurve; i++)
                        S.curve[i] = ((const float *)c->data)[i];
                }
                for (int e = 0; dl && dc && dl->dtype == VAMOS_F32 && dc->dtype == VAMOS_F32 && e < 256 &&
                                (size_t)e < dl->nbytes / 4 && (size_t)e < dc->nbytes / 4; e++)
                    S.dev_loss[e] = ((const float *)dl->data)[e], S.dev_chrf[e] = ((const float *)dc->data)[e];
            }
        }
        vamos_weights_free(w);
        if (bad)
            goto done;
    } else if (rank0) {   /* the others get these weights below */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.init", A.out);
        if (init_weights(m, tmp, A.seed, err, sizeof err)) {
            fprintf(stderr, "vamos train: %s\n", err);
            goto done;
        }
        vamos_weights *w = vamos_weights_load(tmp, 0, err, sizeof err);
        int bad = !w || load_named(m, w, "", S.w, tmp);
        vamos_weights_free(w);
        remove(tmp);
        if (bad)
            goto done;
    }
    if (dist_bcast_f32(S.weights, S.ngrad))   /* every rank starts from rank 0's weights */
        goto done;
    double t0 = now_s();
    /* the schedules vamos tune --train recorded on this machine */
    char dbbuf[4096];
    const char *dbpath = A.no_tune || A.interp ? NULL : tunedb_default_path(dbbuf, sizeof dbbuf);
    TuneDB db = { 0 };
    if (dbpath && tunedb_load(dbpath, &db, rank0 ? stderr : NULL, err, sizeof err)) {
        if (rank0)
            fprintf(stderr, "vamos train: warning: %s: the step's kernels take their default schedules\n", err);
        dbpath = NULL;
    }
    int tuned = 0, kernels = 0, etuned, ekernels;
    tg = train_graph_new_tuned(&ar, m, (float)A.smoothing, !A.interp, &db, &tuned, &kernels, err, sizeof err);
    eg = tg ? train_graph_new_tuned(&ar, mev, 0.0f, !A.interp, &db, &etuned, &ekernels, err, sizeof err) : NULL;
    tunedb_free(&db);
    if (!tg || !eg || (rank0 && !(jit = jit_compile(inf, err, sizeof err)))) {   /* rank 0 alone translates dev */
        fprintf(stderr, "vamos train: %s\n", err);
        goto done;
    }
    if (rank0) {
        fprintf(stderr, "compiled the training step (%d nodes) in %.1f s\n", train_graph_graph(tg)->n, now_s() - t0);
        if (!A.interp)
            fprintf(stderr, "tuning: %d of %d kernels of the step tuned%s%s%s\n", tuned, kernels,
                    dbpath ? " (" : "", dbpath ? dbpath : "", dbpath ? (tuned ? ")" : "; run vamos tune --train)") : "");
    }
    order = malloc(sizeof(int) * (size_t)(train.n + dev.n + 1));
    ranges = malloc(sizeof(Range) * (size_t)(train.n + dev.n + 1));
    if (!order || !ranges)
        goto done;
    bool tty = isatty(2);
    double start = now_s(), last_print = 0, sum_s0 = dist_sum_seconds(), wait_s0 = dist_wait_seconds();
    int64_t step0 = S.step;
    long tok_run = 0;
    bool out_of_time = false;
    for (int epoch = S.epoch; epoch < A.epochs && !out_of_time; epoch++) {
        int nb = make_batches(&train, A.batch_tokens * dist_size(), A.seed, epoch, order, ranges);
        double ep_loss = 0, pt_loss = 0;
        long ep_tok = 0, pt_tok = 0;
        int next_point = 1;
        for (int i = 0; i < nb; i++) {
            /* this rank's shares of the batch, one per lane: their loss and target tokens, and whether
             * rank 0 is out of time; then summed over the lanes, then over the ranks */
            double sum[3] = { 0, 0, 0 };
            TrainBatch lb[TRAIN_MAX_LANES];
            uint64_t seed[TRAIN_MAX_LANES];
            double lloss[TRAIN_MAX_LANES];
            int nl = 0;
            for (int l = 0; l < A.lanes; l++) {
                int part = dist_rank() * A.lanes + l, parts = dist_size() * A.lanes;
                Range r = shard(&train, order, ranges[i], part, parts);
                if (r.to == r.from)
                    continue;
                int ntok = fill_batch(&lbb[nl], &train, order, r, m, &lb[nl]);
                if (ntok < 0) {
                    fprintf(stderr, "\nvamos train: out of memory for a batch\n");
                    dist_abort(1);
                    goto done;
                }
                seed[nl++] = mix(A.seed * 1000003 + (uint64_t)S.step) ^ (part ? mix((uint64_t)part) : 0);
                sum[1] += ntok;
            }
            if (nl == 0)
                memset(S.grad, 0, sizeof(float) * S.ngrad);
            else if (train_graph_run_lanes(tg, nl, vamos_threads() >= nl && !A.interp,   /* interp: in turn */
                                           S.w, lb, seed, S.lg, lloss, err, sizeof err)) {
                fprintf(stderr, "\nvamos train: step %lld: %s\n", (long long)S.step + 1, err);
                dist_abort(1);
                goto done;
            }
            for (int l = 0; l < nl; l++)
                sum[0] += lloss[l];
            if (nl > 1)
                vamos_parallel(lane_sum, &(LaneSum){ &S, nl }, NULL, NULL, NULL,
                               (int64_t)((S.ngrad + STATE_BLOCK - 1) / STATE_BLOCK), (int64_t)S.ngrad * nl);
            sum[2] = rank0 && A.minutes > 0 && now_s() - start > A.minutes * 60;
            if (dist_sum_f32(S.grad, S.ngrad) || dist_sum_f64(sum, 3)) {
                fprintf(stderr, "\nvamos train: step %lld: the gradients' allreduce failed\n", (long long)S.step + 1);
                goto done;
            }
            double loss = sum[0];
            int ntok = (int)sum[1];
            if (!isfinite(loss)) {
                if (rank0)
                    fprintf(stderr, "\nvamos train: the loss became %g at step %lld; try a lower --lr\n", loss,
                            (long long)S.step + 1);
                goto done;
            }
            update(&S, &A, ntok);
            ep_loss += loss, ep_tok += ntok, pt_loss += loss, pt_tok += ntok, tok_run += ntok;
            if (i + 1 >= next_point * nb / 10) {   /* a curve point per tenth of an epoch */
                if (S.ncurve == S.cap_curve) {
                    S.cap_curve = S.cap_curve ? 2 * S.cap_curve : 64;
                    S.curve = realloc(S.curve, sizeof(float) * (size_t)S.cap_curve);
                }
                if (S.curve)
                    S.curve[S.ncurve++] = (float)(pt_loss / (double)pt_tok);
                pt_loss = 0, pt_tok = 0, next_point++;
            }
            double t = now_s(), el = t - start;
            if (rank0 && (t - last_print > (tty ? 0.5 : 30) || i + 1 == nb)) {
                double tps = tok_run / el;
                double left = tps > 0 ? ((double)(A.epochs - epoch) * (double)ep_tok * nb / (i + 1) - (double)ep_tok) / tps : 0;
                if (A.minutes > 0)
                    left = fmin(left, A.minutes * 60 - el);
                progress(&S, epoch, A.epochs, i + 1, nb, ep_loss / (double)ep_tok, tps, fmax(left, 0), tty);
                last_print = t;
            }
            if (sum[2] > 0) {   /* rank 0's clock decides, for all */
                out_of_time = i + 1 < nb;
                if (out_of_time) {
                    if (rank0)
                        fprintf(stderr, "%sstopped at the time limit (%.0f minutes) in epoch %d\n", tty ? "\n" : "",
                                A.minutes, epoch + 1);
                    break;
                }
            }
        }
        if (tty && rank0)
            fputc('\n', stderr);
        if (out_of_time)
            break;
        S.epoch = epoch + 1;
        double dl = dev_loss(eg, &S, &dev, mev, A.batch_tokens, order, ranges, &bb);
        /* the ranks' weights are equal but for the last bits of sums; rank 0's become everyone's */
        if (dist_bcast_f32(S.weights, S.ngrad))
            goto done;
        if (epoch < 256)
            S.dev_loss[epoch] = (float)dl;
        if (!rank0)
            continue;
        double dc = dev_chrf(jit, inf, &S, &dev, &tc, A.max_len);
        if (epoch < 256)
            S.dev_chrf[epoch] = (float)dc;
        fprintf(stderr, "epoch %d: train loss %.3f  dev loss %.3f  dev chrF %.1f (first %d pairs)  (%.0f s)\n",
                epoch + 1, ep_loss / (double)ep_tok, dl, dc, dev.n < DEV_CHRF_PAIRS ? dev.n : DEV_CHRF_PAIRS,
                now_s() - start);
        char path[4096];
        snprintf(path, sizeof path, "%s.ckpt", A.out);
        if (save(m, &S, &A, A.out, false) || save(m, &S, &A, path, true))
            goto done;
        if (A.keep > 0) {   /* the last --keep epochs' weights, for checkpoint averaging */
            snprintf(path, sizeof path, "%s.epoch%d", A.out, epoch + 1);
            if (save(m, &S, &A, path, false))
                goto done;
            snprintf(path, sizeof path, "%s.epoch%d", A.out, epoch + 1 - A.keep);
            if (epoch + 1 - A.keep >= 1 && remove(path) && errno != ENOENT)
                fprintf(stderr, "vamos train: warning: cannot remove %s: %s\n", path, strerror(errno));
        }
        snprintf(path, sizeof path, "%s.loss.svg", A.out);
        write_svg(&S, path);
    }
    if (out_of_time && rank0) {   /* keep what was learnt; the checkpoint stays at the last whole epoch */
        if (save(m, &S, &A, A.out, false))
            goto done;
    }
    if (rank0) {
        double el = now_s() - start;
        fprintf(stderr, "wrote %s after %lld steps (%.0f s)\n", A.out, (long long)S.step, el);
        if (dist_size() > 1 && S.step > step0) {
            double sum = dist_sum_seconds() - sum_s0, wait = dist_wait_seconds() - wait_s0;
            double steps = (double)(S.step - step0);
            fprintf(stderr, "allreduce of the gradients (%.1f MB): %.1f ms per step, %.1f%% of the time; "
                            "waiting for the slowest rank: %.1f ms per step, %.1f%%\n", 4e-6 * (double)S.ngrad,
                    1e3 * sum / steps, 100 * sum / el, 1e3 * wait / steps, 100 * wait / el);
        }
        train_graph_profile(tg, stderr);
    }
    rc = 0;
done:
    free(order), free(ranges);
    free(bb.src), free(bb.sl), free(bb.tin), free(bb.tl), free(bb.lab);
    for (int l = 0; l < TRAIN_MAX_LANES; l++)
        free(lbb[l].src), free(lbb[l].sl), free(lbb[l].tin), free(lbb[l].tl), free(lbb[l].lab);
    train_graph_free(tg);
    train_graph_free(eg);
    jit_free(jit);
    state_free(&S);
    set_free(&train), set_free(&dev);
    tsv_free(&ttsv), tsv_free(&dtsv);
    vamos_bpe_free(sc.bpe), vamos_bpe_free(tc.bpe);
    arena_free(&ar);
    if (rc == 0)   /* a failed rank leaves without it: mpirun then ends the others */
        dist_finish();
    return rc;
}
