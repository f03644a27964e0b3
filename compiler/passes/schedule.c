/* schedule.c - kernel schedules: their values, the signature that names
 * a tunable kernel in the tuning database, and applying the database to
 * a model (see schedule.h, tunedb.h). */
#include "schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tunedb.h"

const unsigned char sched_qb_values[] = { 4, 8, 16, 32, 0 };
const unsigned char sched_bk_values[] = { 32, 64, 128, 0 };
const unsigned char sched_rb_values[] = { 1, 2, 3, 4, 5, 6, 8, 0 };
const unsigned char sched_th_values[] = { 1, 2, 0 };

static int target_wide = -1;

void sched_set_target(int wide) { target_wide = wide; }

int sched_default_rb(bool few_rows)
{
    /* for developers: VAMOS_TILE_ROWS=R gives every kernel a default of R
     * rows (1..SCHED_RB_MAX), so the defaults' measurements can be rerun */
    const char *rows = getenv("VAMOS_TILE_ROWS");
    if (rows && atoi(rows) >= 1 && atoi(rows) <= SCHED_RB_MAX)
        return atoi(rows);
    int wide = target_wide;
#if defined(__x86_64__) && defined(__GNUC__)
    if (wide < 0)
        wide = __builtin_cpu_supports("avx512f");
#endif
    return few_rows && wide <= 0 ? 2 : 6;   /* AVX2's decoder steps take 2 rows */
}

static bool one_of(const unsigned char *v, int x)
{
    for (; *v; v++)
        if (*v == x)
            return true;
    return false;
}

bool sched_valid(Op op, Sched s)
{
    if (!sched_tunable(op))
        return false;
    return one_of(sched_qb_values, s.qb) && one_of(sched_bk_values, s.bk) && one_of(sched_rb_values, s.rb) &&
           one_of(sched_th_values, s.th);
}

/* A shape in a signature: constants as numbers, symbols by role (the
 * names are the model's, the roles are what the kernel sees). */
static int put_shape(char *buf, size_t len, const Model *m, const Shape *s)
{
    static const char *role[] = { "batch", "src", "tgt", "pos" };
    int at = snprintf(buf, len, "[");
    for (int i = 0; i < s->rank && (size_t)at < len; i++) {
        Dim d = s->d[i];
        if (d.sym >= 0)
            at += snprintf(buf + at, len - (size_t)at, "%s%s", i ? "," : "", role[m->syms[d.sym].role]);
        else
            at += snprintf(buf + at, len - (size_t)at, "%s%lld", i ? "," : "", (long long)d.n);
    }
    if ((size_t)at < len)
        at += snprintf(buf + at, len - (size_t)at, "]");
    return at;
}

int sched_signature(const Model *m, const Graph *g, const Node *n, char *buf, size_t len)
{
    int at = snprintf(buf, len, "%s", op_info[n->op].text);
    for (int k = 0; k < op_info[n->op].arity && (size_t)at < len; k++) {
        at += snprintf(buf + at, len - (size_t)at, " ");
        if ((size_t)at < len)
            at += put_shape(buf + at, len - (size_t)at, m, &g->nodes[n->in[k]].shape);
    }
    if ((size_t)at < len)
        at += snprintf(buf + at, len - (size_t)at, " ->");
    if ((size_t)at < len)
        at += put_shape(buf + at, len - (size_t)at, m, &n->shape);
    if ((size_t)at < len && (n->op == OP_MATMUL || n->op == OP_LINEAR))
        at += snprintf(buf + at, len - (size_t)at, "%s%s%s%s", n->attr.mm.packed ? " packed" : "",
                       n->op == OP_LINEAR && n->attr.mm.relu ? " relu" : "",
                       n->op == OP_MATMUL && n->attr.mm.bt ? " bt" : "", n->attr.mm.q8 ? " int8" : "");
    if ((size_t)at < len && n->op == OP_MATMUL && n->attr.mm.heads)
        at += snprintf(buf + at, len - (size_t)at, " heads");
    if ((size_t)at < len && n->op == OP_MATMUL && n->attr.mm.at)
        at += snprintf(buf + at, len - (size_t)at, " at");
    if ((size_t)at < len && n->attr.mm.a8 && (n->op == OP_MATMUL || n->op == OP_LINEAR))
        at += snprintf(buf + at, len - (size_t)at, " a%d", n->attr.mm.a8);   /* int8 activations of that many bits */
    if ((size_t)at < len && n->op == OP_ATTENTION)
        at += snprintf(buf + at, len - (size_t)at, " scale=%s%a", n->attr.attn.div ? "1/" : "",
                       (double)n->attr.attn.scale);
    return at;
}

/* The graphs a translator runs: encoder, then the step and its
 * per-sentence graph, or the whole decoder when there is no step. */
int sched_graphs(Model *m, Graph **out)
{
    int n = 0;
    out[n++] = &m->enc;
    if (m->step.n > 0) {
        out[n++] = &m->prep;
        out[n++] = &m->step;
    } else {
        out[n++] = &m->dec;
    }
    return n;
}

/* The distinct kernels met so far, by key, and how many of them the
 * database had: each counted once however many nodes share it. */
typedef struct Kernels {
    uint64_t seen[1024];
    int n, tuned;
} Kernels;

/* Every tunable node of g takes db's record for it on this machine, or
 * the defaults (db NULL or no record); with `count`, its kernels go into k. */
static void apply_graph(const Model *m, Graph *g, const TuneDB *db, bool count, Kernels *k)
{
    const char *machine = tune_machine();
    for (int i = 0; i < g->n; i++) {
        Node *n = &g->nodes[i];
        if (!sched_tunable(n->op))
            continue;
        char sig[TUNE_SIG_MAX];
        sched_signature(m, g, n, sig, sizeof sig);
        uint64_t key = tune_key(sig, machine);
        const TuneRecord *r = db ? tunedb_find(db, key) : NULL;
        n->sched = r && sched_valid(n->op, r->sched) ? r->sched : (Sched){ 0 };
        bool fresh = count && k->n < 1024;
        for (int s = 0; s < k->n && fresh; s++)
            fresh = k->seen[s] != key;
        if (fresh) {
            k->seen[k->n++] = key;
            k->tuned += r != NULL;
        }
    }
}

int sched_apply(Model *m, const TuneDB *db, int *kernels)
{
    Graph *graphs[4];
    int ng = sched_graphs(m, graphs);
    Kernels k = { .n = 0 };
    /* every graph is set (the full decoder too: vamos run may use it);
     * the kernels counted are those of the graphs a translator runs */
    Graph *all[] = { &m->enc, &m->dec, &m->prep, &m->step };
    for (int gi = 0; gi < 4; gi++) {
        bool runs = false;
        for (int g2 = 0; g2 < ng; g2++)
            runs |= graphs[g2] == all[gi];
        apply_graph(m, all[gi], db, runs, &k);
    }
    *kernels = k.n;
    return k.tuned;
}

int sched_apply_graph(const Model *m, Graph *g, const TuneDB *db, int *kernels)
{
    Kernels k = { .n = 0 };
    apply_graph(m, g, db, true, &k);
    *kernels = k.n;
    return k.tuned;
}
