/* train_graph.c - run the training graph (see train_graph.h).
 *
 * Compiled, the graph is fused like an inference graph (matmul + bias,
 * elementwise chains; attention and layer norm stay unfused because their
 * intermediate values are read by the backward pass) and run node by node
 * through the per-node step function of one KernelJit, on buffers laid out
 * by the memory plan. Gradients are STOREs into per-weight states
 * (autodiff.c), whose memory is the caller's grads[p].
 */
#define _DEFAULT_SOURCE   /* madvise, MADV_HUGEPAGE */
#include "train_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "interp.h"
#include "jit.h"
#include "passes.h"
#include "pipeline.h"
#include "schedule.h"
#include "vamos/parallel.h"

/* The values of one run of the graph: a lane. Lanes share the compiled
 * code and run batches side by side (train_graph_run_lanes). */
typedef struct Lane {
    float **slot_mem;
    int64_t *slot_cap;   /* floats allocated per slot */
    void **buf;          /* per node */
} Lane;

struct TrainGraph {
    const Model *m;
    Graph g;
    bool *has_grad;      /* per weight: the graph stores its gradient */
    /* compiled */
    KernelJit *kj;
    KernelCode *code;
    vamos_step_fn fn;
    int *slot, nslots;
    /* per node: 1 + the weight whose gradient it is, when the kernel
     * writes it there itself (gradients_in_place), else 0 */
    int *direct;
    OutputChunk oc;      /* the output layer, run a few sentences at a time */
    Lane lane[TRAIN_MAX_LANES];
    double *node_s;      /* with VAMOS_PROFILE set: seconds per node, summed */
    double *node_flop;   /* and its floating-point operations, summed (products only) */
    int runs;
};

/* The training graph: derived, and for compiling folded, fused and its
 * output layer chunked (oc). */
static Graph training_graph(Arena *a, const Model *m, float smoothing, bool jit, OutputChunk *oc, char *err,
                            size_t errlen)
{
    Graph g = derive_training(a, m, smoothing, err, errlen);
    if (g.output < 0)
        return g;
#ifndef NDEBUG
    graph_check(m, &g, "autodiff");
#endif
    if (jit) {
        g = pass_fold(a, &g);
        g = pipeline_fuse(a, &g, true);   /* the fusions marked for training */
        g = pass_chunk_output(a, &g, oc);
#ifndef NDEBUG
        graph_check(m, &g, "training fusion");
#endif
    }
    return g;
}

Graph train_graph_compiled_form(Arena *a, const Model *m, float smoothing, char *err, size_t errlen)
{
    OutputChunk oc = { .first = -1 };
    return training_graph(a, m, smoothing, true, &oc, err, errlen);
}

TrainGraph *train_graph_new(Arena *a, const Model *m, float smoothing, bool jit, char *err, size_t errlen)
{
    int tuned, kernels;
    return train_graph_new_tuned(a, m, smoothing, jit, NULL, &tuned, &kernels, err, errlen);
}

/* A weight's gradient is stored whole into its block (a STORE of all of
 * x): when x is a computed value that nothing else reads, and not one
 * that the output layer's chunks move (chunk_output.c), its kernel
 * writes straight into the block instead, and the store does not run
 * (128 stores of en-es, 3.4 ms of a step). */
static bool gradients_in_place(TrainGraph *t)
{
    const Graph *g = &t->g;
    int n = g->n, *readers = calloc((size_t)n + 1, sizeof *readers);
    if (!readers || !(t->direct = calloc((size_t)n + 1, sizeof *t->direct))) {
        free(readers);
        return false;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < op_info[g->nodes[i].op].arity; k++)
            readers[g->nodes[i].in[k]]++;
    const OutputChunk *oc = &t->oc;
    for (int i = 0; i < n; i++) {
        const Node *s = &g->nodes[i];
        if (s->op != OP_STORE || s->attr.store.axis >= 0 || s->attr.store.shared)
            continue;
        int x = s->in[1], own = 0;   /* own: this store's reads of the state (nothing else may read it) */
        for (int k = 0; k < op_info[s->op].arity; k++)
            own += s->in[k] == s->in[0];
        Op op = g->nodes[x].op;
        bool moved = oc->first >= 0 && (x == oc->h || x == oc->labels || x == oc->t_rows ||
                                        (x >= oc->first && x < oc->first + 4));   /* T, the last, adds chunk to chunk */
        if (readers[x] == 1 && op != OP_PARAM && op != OP_INPUT && op != OP_RESHAPE && !is_state(&g->nodes[x]) &&
            !moved && t->slot[x] >= 0 && x != g->output && readers[s->in[0]] == own)
            t->direct[x] = s->attr.store.state + 1;
    }
    free(readers);
    return true;
}

TrainGraph *train_graph_new_tuned(Arena *a, const Model *m, float smoothing, bool jit, const struct TuneDB *db,
                                  int *tuned, int *kernels, char *err, size_t errlen)
{
    TrainGraph *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->m = m;
    t->oc.first = -1;
    t->g = training_graph(a, m, smoothing, jit, &t->oc, err, errlen);
    if (t->g.output < 0) {
        free(t);
        return NULL;
    }
    *tuned = sched_apply_graph(m, &t->g, db, kernels);
    t->has_grad = calloc((size_t)m->nparams + 1, sizeof *t->has_grad);
    for (int i = 0; t->has_grad && i < t->g.n; i++)
        if (t->g.nodes[i].op == OP_STORE)
            t->has_grad[t->g.nodes[i].attr.store.state] = true;
    if (!t->has_grad) {
        snprintf(err, errlen, "out of memory");
        train_graph_free(t);
        return NULL;
    }
    if (!jit)
        return t;
    int n = t->g.n;
    t->slot = malloc(sizeof(int) * (size_t)(n + 1));
    bool ok = t->slot && (t->nslots = plan_memory_views(&t->g, true, t->slot)) >= 0;
    for (int l = 0; ok && l < TRAIN_MAX_LANES; l++)
        ok = (t->lane[l].buf = calloc((size_t)n + 1, sizeof(void *))) &&
             (t->lane[l].slot_mem = calloc((size_t)t->nslots + 1, sizeof(float *))) &&
             (t->lane[l].slot_cap = calloc((size_t)t->nslots + 1, sizeof(int64_t)));
    ok = ok && gradients_in_place(t);
    if (!ok) {
        snprintf(err, errlen, "out of memory planning the training graph");
        train_graph_free(t);
        return NULL;
    }
    if (getenv("VAMOS_PROFILE") && (!(t->node_s = calloc((size_t)n + 1, sizeof *t->node_s)) ||
                                    !(t->node_flop = calloc((size_t)n + 1, sizeof *t->node_flop)))) {
        free(t->node_s);
        t->node_s = NULL;   /* no profile */
    }
    if (!(t->kj = kjit_new(err, errlen)) || !(t->code = kjit_add(t->kj, m, &t->g, &t->fn, err, errlen))) {
        train_graph_free(t);
        return NULL;
    }
    return t;
}

void train_graph_free(TrainGraph *t)
{
    if (!t)
        return;
    kjit_drop(t->code);
    kjit_free(t->kj);
    for (int l = 0; l < TRAIN_MAX_LANES; l++) {
        for (int s = 0; t->lane[l].slot_mem && s < t->nslots; s++)
            free(t->lane[l].slot_mem[s]);
        free(t->lane[l].slot_mem);
        free(t->lane[l].slot_cap);
        free(t->lane[l].buf);
    }
    free(t->slot);
    free(t->direct);
    free(t->has_grad);
    free(t->node_s);
    free(t->node_flop);
    free(t);
}

const Graph *train_graph_graph(const TrainGraph *t) { return &t->g; }

static int64_t numel_of(const Shape *s, const int64_t *sym)
{
    int64_t c = 1;
    for (int i = 0; i < s->rank; i++)
        c *= s->d[i].sym >= 0 ? sym[s->d[i].sym] : s->d[i].n;
    return c;
}

/* The multiply-adds of a product node, times 2 (0 for any other op): the
 * profile's GFLOP/s. */
static double node_flop(const Graph *g, const Node *n, const int64_t *sym)
{
    const Shape *a = &g->nodes[n->in[0]].shape;
    if (n->op == OP_MATMUL || n->op == OP_LINEAR)
        return 2.0 * (double)numel_of(&n->shape, sym) * (double)numel_of(&(Shape){ 1, { a->d[a->rank - 1] } }, sym);
    if (n->op == OP_MATMUL_TN)   /* a [.., M]: the sum runs over its leading positions */
        return 2.0 * (double)numel_of(a, sym) * (double)numel_of(&n->shape, sym) /
               (double)numel_of(&(Shape){ 1, { a->d[a->rank - 1] } }, sym);
    return 0;
}

/* The symbols of a batch (and the seed). */
static void batch_syms(const Model *m, const TrainBatch *b, uint64_t seed, int64_t *sym)
{
    for (int s = 0; s < m->nsyms; s++)
        sym[s] = m->syms[s].role == SYM_BATCH ? b->rows : m->syms[s].role == SYM_SRC_LEN ? b->src_len
               : m->syms[s].role == SYM_TGT_LEN ? b->tgt_len : 0;
    sym[SYM_SEED] = (int64_t)seed;
}

double train_graph_flop(const TrainGraph *t, const TrainBatch *b)
{
    int64_t sym[MAX_SYMS] = { 0 };
    batch_syms(t->m, b, 0, sym);
    double f = 0;
    for (int i = 0; i < t->g.n; i++)
        f += node_flop(&t->g, &t->g.nodes[i], sym);
    return f;
}

/* What an INPUT node of the training graph is fed. */
static const void *input_of(const Model *m, const Node *n, const TrainBatch *b, float *const *grads)
{
    /* tokens and lengths: sym is a length symbol; states: a weight's index */
    InputRole r = n->attr.input.role;
    int sym = n->attr.input.sym;
    bool src = (r == IN_TOKENS || r == IN_LENGTHS) && sym >= 0 && sym < m->nsyms && m->syms[sym].role == SYM_SRC_LEN;
    switch (r) {
    case IN_TOKENS: return src ? b->src : b->tgt_in;
    case IN_LENGTHS: return src ? b->src_lengths : b->tgt_lengths;
    case IN_LABELS: return b->labels;
    case IN_STATE: return grads[n->attr.input.sym];
    case IN_TENSOR: return NULL;
    }
    return NULL;
}

static int run_interp(TrainGraph *t, float *const *params, const TrainBatch *b, const int64_t *sym,
                      float *const *grads, double *loss, char *err, size_t errlen)
{
    const Model *m = t->m;
    InterpInputs in = { 0 };
    memcpy(in.sym, sym, sizeof in.sym);
    Tensor *states = calloc((size_t)m->nparams + 1, sizeof *states);
    Tensor **sp = calloc((size_t)m->nparams + 1, sizeof *sp);
    if (!states || !sp) {
        free(states), free(sp);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int p = 0; p < m->nparams; p++) {
        states[p] = (Tensor){ .dtype = DT_F32, .data = grads[p] };
        states[p].shape.rank = m->params[p].shape.rank;
        for (int k = 0; k < m->params[p].shape.rank; k++)
            states[p].shape.dim[k] = m->params[p].shape.d[k].n;
        sp[p] = &states[p];
    }
    in.state = sp;
    for (int i = 0; i < t->g.n; i++) {
        const Node *n = &t->g.nodes[i];
        if (n->op == OP_INPUT && n->attr.input.role == IN_TOKENS)
            in.tokens_of[n->attr.input.sym] = input_of(m, n, b, grads);
        if (n->op == OP_INPUT && n->attr.input.role == IN_LENGTHS)
            in.lengths[n->attr.input.sym] = input_of(m, n, b, grads);
    }
    in.labels = b->labels;
    Tensor out;
    int rc = interp_run(m, &t->g, params, &in, &out, err, errlen);
    if (rc == 0) {
        *loss = ((float *)out.data)[0];
        tensor_free(&out);
    }
    free(states), free(sp);
    return rc;
}

/* 2 MB pages: the kernel's transparent huge pages are given only to
 * memory that asks for them (madvise, Debian's default), and a step
 * streams hundreds of megabytes of values through 4 KB pages otherwise.
 * en-es on 2 lanes: 0.96-0.97x the step's time with its values in huge
 * pages (tests/bench/train_bench, paired runs). */
#define HUGE_PAGE ((size_t)2 << 20)
void *train_alloc(size_t bytes)
{
    if (bytes >= HUGE_PAGE) {
        void *p;
        size_t whole = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        if (posix_memalign(&p, HUGE_PAGE, whole) == 0) {
            madvise(p, whole, MADV_HUGEPAGE);   /* advice: without it, 4 KB pages */
            memset(p, 0, bytes);
            return p;
        }
    }
    return calloc(1, bytes ? bytes : 1);
}

/* Node i's kernel on the values buf, for the symbols sym; timed into
 * node_s when profiling. */
static int32_t run_node(TrainGraph *t, int i, void **buf, const int64_t *sym, double *node_s)
{
    struct timespec t0, t1;
    if (node_s)
        clock_gettime(CLOCK_MONOTONIC, &t0);
    int32_t rc = t->fn(i, buf, sym);
    if (node_s) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        node_s[i] += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        t->node_flop[i] += node_flop(&t->g, &t->g.nodes[i], sym);
    }
    return rc;
}

/* The output layer (chunk_output.c) a few sentences at a time: about
 * OC_ROWS rows (target tokens), so that a chunk's logits and their
 * gradient (OC_ROWS x vocabulary floats: 8 MB for 8,000 subwords) stay in
 * the last-level cache between the kernels that write and read them. Each
 * row value is passed at its chunk's offset; the logits and their
 * gradient are only read within the chunk, so each chunk's are at the
 * start of their buffers; the weight's gradient adds each chunk's
 * products to the last. */
#define OC_NODES 5
#define OC_ROWS 256
static int64_t chunk_sentences(int64_t len) { return len > 0 && len < OC_ROWS ? OC_ROWS / len : 1; }

int train_graph_output_chunks(const TrainGraph *t, int64_t rows, int64_t len)
{
    int64_t per = chunk_sentences(len);
    return t->fn && t->oc.first >= 0 && rows > per ? (int)((rows + per - 1) / per) : 1;
}

static int32_t run_output_chunks(TrainGraph *t, Lane *L, const int64_t *sym, double *node_s)
{
    const OutputChunk *oc = &t->oc;
    const Graph *g = &t->g;
    int64_t B = sym[oc->batch_sym], per = chunk_sentences(sym[oc->len_sym]);
    int32_t rc = 0;
    if (per >= B) {   /* one chunk: the graph as it is */
        for (int k = 0; k < OC_NODES && !rc; k++)
            rc = run_node(t, oc->first + k, L->buf, sym, node_s);
        return rc;
    }
    /* the values passed at an offset, and their floats (or ids) per sentence */
    int off[] = { oc->h, oc->labels, oc->first + 1, oc->first + 3, oc->t_rows };
    enum { NOFF = sizeof off / sizeof *off };
    int64_t one[MAX_SYMS];
    memcpy(one, sym, sizeof one);
    one[oc->batch_sym] = 1;
    int64_t width[NOFF];
    void *base[NOFF];
    for (int k = 0; k < NOFF; k++)
        width[k] = numel_of(&g->nodes[off[k]].shape, one), base[k] = L->buf[off[k]];
    int64_t csym[MAX_SYMS];
    memcpy(csym, sym, sizeof csym);
    for (int64_t s0 = 0; s0 < B && !rc; s0 += per) {
        csym[oc->batch_sym] = B - s0 < per ? B - s0 : per;
        csym[SYM_ACC] = s0 > 0;
        for (int k = 0; k < NOFF; k++)   /* 4-byte elements: floats, or int32 labels */
            L->buf[off[k]] = (char *)base[k] + 4 * (size_t)(s0 * width[k]);
        for (int k = 0; k < OC_NODES && !rc; k++)
            rc = run_node(t, oc->first + k, L->buf, csym, node_s);
    }
    for (int k = 0; k < NOFF; k++)
        L->buf[off[k]] = base[k];
    return rc;
}

/* One batch on lane ln's values. Lane 0 keeps the profile. */
static int run_lane(TrainGraph *t, int ln, float *const *params, const TrainBatch *b, uint64_t seed,
                    float *const *grads, double *loss, char *err, size_t errlen)
{
    const Model *m = t->m;
    Lane *L = &t->lane[ln];
    int64_t sym[MAX_SYMS] = { 0 };
    batch_syms(m, b, seed, sym);
    for (int p = 0; p < m->nparams; p++)
        if (!t->has_grad[p])
            memset(grads[p], 0, sizeof(float) * (size_t)shape_numel_const(&m->params[p].shape));
    if (!t->fn)
        return run_interp(t, params, b, sym, grads, loss, err, errlen);
    const Graph *g = &t->g;
    double *node_s = ln == 0 ? t->node_s : NULL;
    /* size the slots for this batch */
    for (int i = 0; i < g->n; i++) {
        int s = t->slot[i];
        if (s < 0)
            continue;
        int64_t want = numel_of(&g->nodes[i].shape, sym);
        if (want > L->slot_cap[s]) {
            float *p = train_alloc(sizeof(float) * (size_t)(want ? want : 1));   /* scratch: nothing to keep */
            if (p)
                free(L->slot_mem[s]);
            if (!p) {
                snprintf(err, errlen, "out of memory for the training step's values");
                return -1;
            }
            L->slot_mem[s] = p, L->slot_cap[s] = want;
        }
    }
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        if (n->op == OP_PARAM)
            L->buf[i] = params[n->attr.param];
        else if (n->op == OP_STORE)
            L->buf[i] = grads[n->attr.store.state];
        else if (n->op == OP_INPUT)
            L->buf[i] = (void *)input_of(m, n, b, grads);
        else if (t->direct[i])
            L->buf[i] = grads[t->direct[i] - 1];   /* a gradient made in its block */
        else
            L->buf[i] = L->slot_mem[t->slot[i]];   /* inputs are read in place, above */
    }
    for (int i = 0; i < g->n; i++) {
        Op op = g->nodes[i].op;
        /* a view's value is in place, and so is a store's whose x was made in its block */
        if (op == OP_INPUT || op == OP_PARAM || plan_is_view(g, t->slot, i) ||
            (op == OP_STORE && t->direct[g->nodes[i].in[1]]))
            continue;
        int32_t rc = i == t->oc.first ? run_output_chunks(t, L, sym, node_s) : run_node(t, i, L->buf, sym, node_s);
        if (rc) {
            snprintf(err, errlen, "a token id at position %d of a batch is outside its embedding table", rc - 1);
            return -1;
        }
        if (i == t->oc.first)
            i += OC_NODES - 1;
    }
    *loss = ((float *)L->buf[g->output])[0];
    if (ln == 0)
        t->runs++;
    return 0;
}

int train_graph_run(TrainGraph *t, float *const *params, const TrainBatch *b, uint64_t seed, float *const *grads,
                    double *loss, char *err, size_t errlen)
{
    return run_lane(t, 0, params, b, seed, grads, loss, err, errlen);
}

typedef struct LaneJob {
    TrainGraph *t;
    int lane, rc;
    float *const *params, *const *grads;
    const TrainBatch *b;
    uint64_t seed;
    double loss;
    char err[512];
} LaneJob;

static void lane_run(void *ctx, int lane)
{
    LaneJob *j = (LaneJob *)ctx + lane;
    j->rc = run_lane(j->t, j->lane, j->params, j->b, j->seed, j->grads, &j->loss, j->err, sizeof j->err);
}

int train_graph_run_lanes(TrainGraph *t, int lanes, bool together, float *const *params, const TrainBatch *b,
                          const uint64_t *seeds, float **const *grads, double *loss, char *err,
                          size_t errlen)
{
    if (lanes < 1 || lanes > TRAIN_MAX_LANES) {
        snprintf(err, errlen, "internal error: %d lanes", lanes);
        return -1;
    }
    LaneJob job[TRAIN_MAX_LANES];
    for (int l = 0; l < lanes; l++)
        job[l] = (LaneJob){ .t = t, .lane = l, .params = params, .grads = grads[l], .b = &b[l], .seed = seeds[l] };
    if (lanes == 1 || !together)   /* one after another, each with every thread */
        for (int l = 0; l < lanes; l++)
            lane_run(job, l);
    else
        vamos_lanes(lane_run, job, lanes);
    for (int l = 0; l < lanes; l++) {
        if (job[l].rc) {
            snprintf(err, errlen, "%s", job[l].err);
            return -1;
        }
        loss[l] = job[l].loss;
    }
    return 0;
}

void train_graph_profile(const TrainGraph *t, FILE *out)
{
    if (!t->node_s || !t->runs)
        return;
    double by_op[OP_COUNT] = { 0 }, flop[OP_COUNT] = { 0 }, total = 0;
    int count[OP_COUNT] = { 0 };
    for (int i = 0; i < t->g.n; i++) {
        by_op[t->g.nodes[i].op] += t->node_s[i];
        flop[t->g.nodes[i].op] += t->node_flop[i];
        count[t->g.nodes[i].op]++;
        total += t->node_s[i];
    }
    fprintf(out, "training step profile, %d runs, %.1f ms per step:\n", t->runs, 1e3 * total / t->runs);
    for (int k = 0; k < 12; k++) {
        int best = -1;
        for (int op = 0; op < OP_COUNT; op++)
            if (by_op[op] > 0 && (best < 0 || by_op[op] > by_op[best]))
                best = op;
        if (best < 0)
            break;
        fprintf(out, "  %-12s %4d nodes %8.1f ms/step %5.1f%%", op_info[best].text, count[best],
                1e3 * by_op[best] / t->runs, 100 * by_op[best] / total);
        if (flop[best] > 0)
            fprintf(out, " %7.1f GFLOP/s", flop[best] / by_op[best] * 1e-9);
        fputc('\n', out);
        by_op[best] = 0;
    }
    if (strcmp(getenv("VAMOS_PROFILE"), "nodes"))
        return;
    /* VAMOS_PROFILE=nodes: the slowest nodes, with their operands' shapes */
    double *left = malloc(sizeof(double) * (size_t)(t->g.n + 1));
    Arena a = { 0 };
    for (int i = 0; left && i < t->g.n; i++)
        left[i] = t->node_s[i];
    fprintf(out, "slowest nodes:\n");
    for (int k = 0; left && k < (getenv("VAMOS_PROFILE_N") ? atoi(getenv("VAMOS_PROFILE_N")) : 30); k++) {
        int best = 0;
        for (int i = 1; i < t->g.n; i++)
            if (left[i] > left[best])
                best = i;
        if (left[best] <= 0)
            break;
        const Node *n = &t->g.nodes[best];
        fprintf(out, "  %%%-5d %8.2f ms  %-11s", best, 1e3 * left[best] / t->runs, op_info[n->op].text);
        for (int j = 0; j < op_info[n->op].arity; j++)
            fprintf(out, " %s", shape_str(&a, t->m, &t->g.nodes[n->in[j]].shape));
        fprintf(out, " -> %s", shape_str(&a, t->m, &n->shape));
        if (t->node_flop[best] > 0)
            fprintf(out, "  %.1f GFLOP/s", t->node_flop[best] / t->node_s[best] * 1e-9);
        fputc('\n', out);
        left[best] = 0;
    }
    free(left);
    arena_free(&a);
}
