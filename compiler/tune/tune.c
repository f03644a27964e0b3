/* tune.c - the schedule search of `vamos tune` (see tune.h). */
#include "tune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "interp.h"
#include "jit.h"
#include "passes.h"
#include "schedule.h"
#include "train_graph.h"

#define BUCKETS 2
#define MAX_COPIES 64
#define MAX_TRIED 256          /* schedules of one kernel (attention has 144) */
#define EVICT_BYTES (64 << 20)   /* twice a large last-level cache */
static const int64_t bucket_len[BUCKETS] = { 16, 64 };   /* sequence lengths tried */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------- candidates */

/* The value after (dir 1) or before (dir -1) x in a 0-terminated list;
 * 0 when there is none. */
static unsigned char step_value(const unsigned char *v, unsigned char x, int dir)
{
    for (int i = 0; v[i]; i++)
        if (v[i] == x)
            return dir > 0 ? v[i + 1] : i > 0 ? v[i - 1] : 0;
    return 0;
}

int tune_neighbours(Op op, Sched s, Sched *out, int max)
{
    int n = 0;
    for (int dir = -1; dir <= 1; dir += 2) {
        Sched t = s;
        if ((t.rb = step_value(sched_rb_values, s.rb, dir)) && n < max)
            out[n++] = t;
        t = s;
        if ((t.th = step_value(sched_th_values, s.th, dir)) && n < max)
            out[n++] = t;
        if (op != OP_ATTENTION)
            continue;
        t = s;
        if ((t.qb = step_value(sched_qb_values, s.qb, dir)) && n < max)
            out[n++] = t;
        t = s;
        if ((t.bk = step_value(sched_bk_values, s.bk, dir)) && n < max)
            out[n++] = t;
    }
    return n;
}

/* ------------------------------------------------- one kernel, alone */

typedef struct Bench {
    const Model *m;
    Graph g;                     /* the inputs as PARAMs, then the node */
    Node nodes[MAX_IN + 1];
    int node;                    /* its index in g */
    char name[32];               /* g's name */
    int nbuckets;
    int64_t sym[BUCKETS][MAX_SYMS];
    void *buf[BUCKETS][MAX_IN + 1];   /* what the kernel reads (packed w) and writes */
    float *plain[BUCKETS][MAX_IN];    /* the inputs as the reference reads them */
    float *ref[BUCKETS];
    int64_t out_n[BUCKETS];
    /* copies of the weight (input 1 of a matmul or linear) that timed
     * calls take in turn, so that each call finds it out of cache as it
     * does in the model, where the other weights pass through the cache
     * between two calls: copy[0] is buf[u][1] */
    int ncopies;
    void *copy[MAX_COPIES];
    KernelJit *kj;
    bool (*disturb)(Sched def, Sched s);   /* TuneOptions.disturb */
    Sched def;                   /* the node's default schedule */
    bool rb_only;                /* --train: only the tile's rows vary (a training lane runs its
                                  * kernels on its own thread whatever th says, and th is kept
                                  * for a run of one lane) */
} Bench;

static int64_t numel_at(const Shape *s, const int64_t *sym)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->d[i].sym >= 0 ? sym[s->d[i].sym] : s->d[i].n;
    return n;
}

static bool uses_length(const Model *m, const Graph *g, const Node *n)
{
    const Shape *sh[MAX_IN + 1] = { &n->shape };
    for (int k = 0; k < op_info[n->op].arity; k++)
        sh[k + 1] = &g->nodes[n->in[k]].shape;
    for (int k = 0; k <= op_info[n->op].arity; k++)
        for (int i = 0; i < sh[k]->rank; i++)
            if (sh[k]->d[i].sym >= 0 && m->syms[sh[k]->d[i].sym].role != SYM_BATCH)
                return true;
    return false;
}

static float rnd_unit(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

static void bench_free(Bench *b)
{
    for (int c = 1; c < b->ncopies; c++)
        free(b->copy[c]);
    for (int u = 0; u < BUCKETS; u++) {
        for (int k = 0; k < MAX_IN; k++) {
            if (b->buf[u][k] != b->plain[u][k])
                free(b->buf[u][k]);
            free(b->plain[u][k]);
        }
        free(b->buf[u][MAX_IN]);
        free(b->ref[u]);
    }
}

/* The weight copies of b (see Bench): as many as make EVICT_BYTES, but
 * no more than the model's weights do (a model whose weights fit in the
 * cache keeps them there). False when out of memory. */
static bool make_copies(Bench *b, const Model *m, const Graph *g, const Node *n)
{
    b->ncopies = 1;
    if ((n->op != OP_MATMUL && n->op != OP_LINEAR) || g->nodes[n->in[1]].op != OP_PARAM)
        return true;
    const ParamInfo *w = &m->params[g->nodes[n->in[1]].attr.param];
    int64_t bytes = param_floats(w) * 4, model = 0;
    for (int p = 0; p < m->nparams; p++)
        model += param_floats(&m->params[p]) * 4;
    int64_t want = (model < EVICT_BYTES ? model : EVICT_BYTES) / (bytes ? bytes : 1) + 1;
    b->copy[0] = b->buf[0][1];
    for (b->ncopies = 1; b->ncopies < want && b->ncopies < MAX_COPIES; b->ncopies++) {
        if (!(b->copy[b->ncopies] = malloc((size_t)bytes)))
            return false;
        memcpy(b->copy[b->ncopies], b->copy[0], (size_t)bytes);
    }
    return true;
}

/* Set up node i of graph g: the mini graph, inputs, reference results. */
static int bench_init(Bench *b, const Model *m, const Graph *g, int i, int batch, KernelJit *kj, char *err,
                      size_t errlen)
{
    memset(b, 0, sizeof *b);
    b->m = m, b->kj = kj;
    const Node *n = &g->nodes[i];
    int arity = op_info[n->op].arity;
    for (int k = 0; k < arity; k++) {
        const Node *x = &g->nodes[n->in[k]];
        b->nodes[k] = (Node){ .op = OP_PARAM, .dtype = x->dtype, .shape = x->shape, .loc = x->loc, .site = x->site };
        b->nodes[k].attr.param = k;
    }
    b->nodes[arity] = *n;
    for (int k = 0; k < arity; k++)
        b->nodes[arity].in[k] = k;
    b->nodes[arity].sched = (Sched){ 0 };
    b->def = sched_of(&b->nodes[arity]);   /* the node's defaults (a decoder step's attention has its own) */
    b->node = arity;
    b->g = (Graph){ .name = "tune", .nodes = b->nodes, .n = arity + 1, .cap = arity + 1, .output = arity };
    b->nbuckets = uses_length(m, g, n) ? BUCKETS : 1;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int u = 0; u < b->nbuckets; u++) {
        for (int s = 0; s < m->nsyms; s++)
            b->sym[u][s] = m->syms[s].role == SYM_BATCH ? (batch > 0 ? batch : 1)
                         : m->syms[s].role == SYM_STEP_POS ? bucket_len[u] - 1 : bucket_len[u];
        for (int k = 0; k < arity; k++) {
            int64_t cnt = numel_at(&b->nodes[k].shape, b->sym[u]);
            float *x = malloc((size_t)(cnt ? cnt : 1) * 4);
            if (!x)
                goto oom;
            /* the mask of an attention is 0 (every key visible): its
             * worst case, and one the reference computes alike */
            for (int64_t e = 0; e < cnt; e++)
                x[e] = n->op == OP_ATTENTION && k == 3 ? 0.0f : rnd_unit(&seed);
            b->plain[u][k] = x;
            b->buf[u][k] = x;
            const Node *w = &g->nodes[n->in[k]];
            if (k == 1 && (n->op == OP_MATMUL || n->op == OP_LINEAR) && n->attr.mm.packed && w->op == OP_PARAM) {
                const ParamInfo *p = &m->params[w->attr.param];
                if (p->q8)   /* the reference reads what int8 stands for */
                    param_dequantized(p, x, x);
                float *pk = malloc((size_t)param_floats(p) * 4);
                if (!pk || pack_param(p, x, pk)) {
                    free(pk);
                    goto oom;
                }
                b->buf[u][k] = pk;
            }
        }
        b->out_n[u] = numel_at(&n->shape, b->sym[u]);
        if (!(b->buf[u][MAX_IN] = malloc((size_t)(b->out_n[u] ? b->out_n[u] : 1) * 4)))
            goto oom;
        InterpInputs in = { 0 };
        memcpy(in.sym, b->sym[u], sizeof in.sym);
        Tensor t;
        if (interp_run(m, &b->g, b->plain[u], &in, &t, err, errlen))
            return -1;
        b->ref[u] = t.data;
    }
    return make_copies(b, m, g, n) ? 0 : (snprintf(err, errlen, "out of memory for the tuner's inputs"), -1);
oom:
    snprintf(err, errlen, "out of memory for the tuner's inputs");
    return -1;
}

/* One timed call at bucket u, with the next weight copy. */
static void call_turn(const Bench *b, vamos_step_fn fn, void **bufs, int u, int *turn)
{
    if (b->ncopies > 1)
        bufs[1] = b->copy[(*turn)++ % b->ncopies];
    fn(b->node, bufs, b->sym[u]);
}

/* Median seconds of one run of the compiled step at bucket u. */
static double time_runs(vamos_step_fn fn, Bench *b, int u)
{
    void *bufs[MAX_IN + 1];
    int arity = b->node;
    for (int k = 0; k < arity; k++)
        bufs[k] = b->buf[u][k];
    bufs[arity] = b->buf[u][MAX_IN];
    int turn = 0;
    for (int c = 0; c < b->ncopies; c++)   /* warm-up: the code, and each copy's way out of the cache */
        call_turn(b, fn, bufs, u, &turn);
    double t0 = now();
    call_turn(b, fn, bufs, u, &turn);
    double one = now() - t0;
    int calls = one > 2e-3 ? 1 : (int)(2e-3 / (one + 1e-9)) + 1;
    double s[5];
    for (int r = 0; r < 5; r++) {
        t0 = now();
        for (int c = 0; c < calls; c++)
            call_turn(b, fn, bufs, u, &turn);
        s[r] = (now() - t0) / calls;
    }
    qsort(s, 5, sizeof *s, cmp_double);
    return s[2];
}

/* A candidate schedule, compiled. */
typedef struct Cand {
    Sched s;
    KernelCode *code;
    vamos_step_fn fn;
} Cand;

/* Compile schedule s into *c and check it at every bucket: 0, -1 when its
 * results are wrong (c freed), -2 on an internal error (in err). */
static int compile_cand(Bench *b, Sched s, Cand *c, char *err, size_t errlen)
{
    static int serial;
    snprintf(b->name, sizeof b->name, "tune%d", serial++);   /* unique while alive */
    b->g.name = b->name;
    b->nodes[b->node].sched = s;
    c->s = s;
    if (!(c->code = kjit_add(b->kj, b->m, &b->g, &c->fn, err, errlen)))
        return -2;
    for (int u = 0; u < b->nbuckets; u++) {
        void *bufs[MAX_IN + 1];
        for (int k = 0; k < b->node; k++)
            bufs[k] = b->buf[u][k];
        float *out = b->buf[u][MAX_IN];
        bufs[b->node] = out;
        for (int64_t e = 0; e < b->out_n[u]; e++)
            out[e] = NAN;   /* an element left unwritten fails */
        bool ok = c->fn(b->node, bufs, b->sym[u]) == 0;
        double scale = 0;
        for (int64_t e = 0; ok && e < b->out_n[u]; e++)
            scale = fmax(scale, fabs(b->ref[u][e]));
        if (b->disturb && b->disturb(b->def, s) && b->out_n[u])
            out[b->out_n[u] / 2] += (float)(1e-4 * scale);
        for (int64_t e = 0; ok && e < b->out_n[u]; e++)
            ok = fabs((double)out[e] - b->ref[u][e]) / (scale + 1e-30) <= 1e-5;
        if (!ok) {
            kjit_drop(c->code);
            c->code = NULL;
            return -1;
        }
    }
    return 0;
}

/* Seconds of a run of c: the sum over buckets of the median run. */
static double time_cand(Bench *b, const Cand *c)
{
    double total = 0;
    for (int u = 0; u < b->nbuckets; u++)
        total += time_runs(c->fn, b, u);
    return total;
}

static void drop(Cand *c)
{
    kjit_drop(c->code);
    c->code = NULL;
}

static bool same_sched(Sched a, Sched b)
{
    return a.qb == b.qb && a.bk == b.bk && a.rb == b.rb && a.th == b.th;
}

/* Every schedule of op (exhaustive search); returns how many. */
static int all_scheds(Op op, Sched *out, int max)
{
    int n = 0;
    bool att = op == OP_ATTENTION;
    for (int q = 0; sched_qb_values[q] && (att || q == 0); q++)
        for (int k = 0; sched_bk_values[k] && (att || k == 0); k++)
            for (int r = 0; sched_rb_values[r]; r++)
                for (int t = 0; sched_th_values[t] && n < max; t++)
                    out[n++] = (Sched){ att ? sched_qb_values[q] : SCHED_QB_DEFAULT,
                                        att ? sched_bk_values[k] : SCHED_BK_DEFAULT, sched_rb_values[r],
                                        sched_th_values[t] };
    return n;
}

/* The search for one kernel until `deadline` (or over every schedule,
 * without a deadline, when exhaustive): the default and the best so far
 * stay compiled, so measuring them again costs no compile. */
static int search(Bench *b, Op op, double deadline, bool exhaustive, TuneResult *r, char *err, size_t errlen)
{
    Cand def, best, c;
    r->def = b->def;
    int rc = compile_cand(b, b->def, &def, err, errlen);
    if (rc) {
        if (rc == -1)
            snprintf(err, errlen, "internal error: the default schedule of '%s' differs from the reference", r->sig);
        return -1;
    }
    double tdef = time_cand(b, &def), tbest = tdef;
    best = def;
    r->done = true;
    r->tried = 1;
    Sched tried[MAX_TRIED];
    int ntried = 0;
    tried[ntried++] = def.s;
    if (exhaustive)
        deadline = INFINITY;
    for (bool moved = true; moved && now() < deadline;) {
        moved = false;
        Sched nb[MAX_TRIED];
        int nn = exhaustive ? all_scheds(op, nb, MAX_TRIED) : tune_neighbours(op, best.s, nb, 8);
        Cand step = best;
        double tstep = tbest;
        for (int k = 0; k < nn && now() < deadline; k++) {
            bool skip = b->rb_only && nb[k].th != b->def.th;   /* --train: rows alone */
            for (int t = 0; t < ntried; t++)
                skip |= same_sched(tried[t], nb[k]);   /* tried already */
            if (skip || ntried == MAX_TRIED)
                continue;
            tried[ntried++] = nb[k];
            r->tried++;
            if ((rc = compile_cand(b, nb[k], &c, err, errlen)) == -2)
                goto fail;
            if (rc == -1) {
                r->wrong++;   /* never chosen */
                continue;
            }
            double t = time_cand(b, &c);
            if (t < tstep * 1.03 && t > tstep * 0.9) {
                /* a near tie, or a win small enough to be noise:
                 * measure both again */
                t = time_cand(b, &c);
                tstep = time_cand(b, &step);
            }
            if (t < tstep) {
                if (step.code != best.code)
                    drop(&step);
                step = c, tstep = t;
            } else {
                drop(&c);
            }
        }
        if (step.code != best.code && tstep < tbest * 0.98) {
            if (best.code != def.code)
                drop(&best);
            best = step, tbest = tstep;
            moved = true;
        } else if (step.code != best.code) {
            drop(&step);
        }
    }
    /* the verdict: default and winner measured in turn, three times each,
     * the medians compared; a win under 2% is noise and the default stays */
    r->best = def.s;
    r->default_us = r->tuned_us = tdef * 1e6;
    if (best.code != def.code) {
        double td[3], tb[3];
        for (int k = 0; k < 3; k++) {
            td[k] = time_cand(b, &def);
            tb[k] = time_cand(b, &best);
        }
        qsort(td, 3, sizeof *td, cmp_double);
        qsort(tb, 3, sizeof *tb, cmp_double);
        r->default_us = r->tuned_us = td[1] * 1e6;
        if (tb[1] < td[1] * 0.98) {
            r->best = best.s;
            r->tuned_us = tb[1] * 1e6;
        }
        drop(&best);
    }
    drop(&def);
    return 0;
fail:
    if (best.code != def.code)
        drop(&best);
    drop(&def);
    return -1;
}

/* ------------------------------------------------------------ model */

static void progress(FILE *f, int done, int total, double left)
{
    if (!f)
        return;
    int w = 30, fill = total ? done * w / total : w;
    fprintf(f, "\rtuning [%.*s%*s] %d/%d kernels, %3.0f s left ", fill, "==============================", w - fill, "",
            done, total, left > 0 ? left : 0);
    if (done == total)
        fputc('\n', f);
    fflush(f);
}

int tune_model(Model *m, const TuneOptions *o, TuneResult **res, int *nres, char *err, size_t errlen)
{
    Graph *graphs[4], train;
    Arena ta = { 0 };   /* the training graph's */
    int ng;
    if (o->train) {
        train = train_graph_compiled_form(&ta, m, 0.1f, err, errlen);
        if (train.output < 0) {
            arena_free(&ta);
            return -1;
        }
        graphs[0] = &train, ng = 1;
    } else {
        ng = sched_graphs(m, graphs);
    }
    /* the distinct kernels: (graph, node) of their first node */
    int cap = 16, n = 0;
    TuneResult *r = calloc((size_t)cap, sizeof *r);
    int (*where)[2] = malloc(sizeof *where * (size_t)cap);
    if (!r || !where)
        goto oom;
    for (int gi = 0; gi < ng; gi++)
        for (int i = 0; i < graphs[gi]->n; i++) {
            const Node *nd = &graphs[gi]->nodes[i];
            if (!sched_tunable(nd->op))
                continue;
            char sig[TUNE_SIG_MAX];
            sched_signature(m, graphs[gi], nd, sig, sizeof sig);
            int k = 0;
            while (k < n && strcmp(r[k].sig, sig))
                k++;
            if (k < n) {
                r[k].nodes++;
                continue;
            }
            if (n == cap) {
                cap *= 2;
                TuneResult *nr = realloc(r, sizeof *r * (size_t)cap);
                if (!nr)
                    goto oom;
                r = nr;
                int (*nw)[2] = realloc(where, sizeof *where * (size_t)cap);
                if (!nw)
                    goto oom;
                where = nw;
            }
            memset(&r[n], 0, sizeof r[n]);
            snprintf(r[n].sig, sizeof r[n].sig, "%s", sig);
            r[n].graph = o->train ? "train" : graphs[gi]->name;
            r[n].nodes = 1;
            where[n][0] = gi, where[n][1] = i;
            n++;
        }
    KernelJit *kj = kjit_new(err, errlen);
    if (!kj) {
        free(r), free(where);
        arena_free(&ta);
        return -1;
    }
    double t0 = now();
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        progress(o->progress, k, n, o->budget - (now() - t0));
        double deadline = t0 + o->budget * (k + 1) / n;
        if (now() >= t0 + o->budget && !o->exhaustive)
            break;   /* no budget left: the rest keep their defaults */
        Bench b;
        const Graph *g = graphs[where[k][0]];
        const Node *nd = &g->nodes[where[k][1]];
        rc = bench_init(&b, m, g, where[k][1], o->batch, kj, err, errlen);
        b.disturb = o->disturb;
        b.rb_only = o->train;
        if (rc == 0)
            rc = search(&b, nd->op, deadline, o->exhaustive, &r[k], err, errlen);
        bench_free(&b);
        if (rc == 0 && o->db) {
            TuneRecord rec = { .key = tune_key(r[k].sig, tune_machine()), .sched = r[k].best,
                               .default_us = r[k].default_us, .tuned_us = r[k].tuned_us };
            snprintf(rec.sig, sizeof rec.sig, "%s", r[k].sig);
            rc = tunedb_append(o->db, &rec, err, errlen);
        }
    }
    if (rc == 0)
        progress(o->progress, n, n, o->budget - (now() - t0));
    kjit_free(kj);
    free(where);
    arena_free(&ta);
    if (rc) {
        free(r);
        return -1;
    }
    *res = r;
    *nres = n;
    return 0;
oom:
    free(r), free(where);
    arena_free(&ta);
    snprintf(err, errlen, "out of memory");
    return -1;
}
