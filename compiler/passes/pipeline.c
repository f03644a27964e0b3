/* pipeline.c - the stage table and the fusion table (see pipeline.h). */
#include "pipeline.h"

#include <string.h>

#include "arena.h"
#include "passes.h"

/* Verify a graph after a stage (debug builds only, like every verifier). */
static void check(const Model *m, const Graph *g, const char *stage)
{
#ifndef NDEBUG
    if (g->n > 0)
        graph_check(m, g, stage);
#else
    (void)m, (void)g, (void)stage;
#endif
}

/* The graphs a stage works on: enc and dec, then (once derived) prep and step. */
static int graphs_of(Model *m, Graph **gs)
{
    gs[0] = &m->enc, gs[1] = &m->dec, gs[2] = &m->prep, gs[3] = &m->step;
    return m->step.n > 0 ? 4 : 2;
}

static void run_elab(struct Arena *a, Model *m, const Pipeline *p)
{
    if (p->training)
        return;
    m->enc = pass_strip_dropout(a, &m->enc);
    m->dec = pass_strip_dropout(a, &m->dec);
}

static void run_fold(struct Arena *a, Model *m, const Pipeline *p)
{
    (void)p;
    m->enc = pass_fold(a, &m->enc);
    m->dec = pass_fold(a, &m->dec);
}

static void run_dce(struct Arena *a, Model *m, const Pipeline *p)
{
    (void)p;
    m->enc = pass_dce(a, &m->enc);
    m->dec = pass_dce(a, &m->dec);
}

static void run_incremental(struct Arena *a, Model *m, const Pipeline *p)
{
    (void)p;
    derive_step(a, m);   /* or m->no_step says why not */
}

static void run_fuse(struct Arena *a, Model *m, const Pipeline *p)
{
    (void)p;
    m->step_out = pass_output_logits(&m->step);
    Graph *gs[4];
    for (int i = 0, n = graphs_of(m, gs); i < n; i++)
        *gs[i] = pipeline_fuse(a, gs[i], false);
}

static void run_pack(struct Arena *a, Model *m, const Pipeline *p)
{
    (void)a, (void)p;
    pass_pack(m);
}

static void run_plan(struct Arena *a, Model *m, const Pipeline *p)
{
    (void)p;
    Graph *gs[4];
    for (int i = 0, n = graphs_of(m, gs); i < n; i++)
        pass_plan(a, gs[i]);
}

const StageInfo stage_info[STAGE_COUNT] = {
    [STAGE_ELAB] = { "elab", run_elab },
    [STAGE_FOLD] = { "fold", run_fold },
    [STAGE_DCE] = { "dce", run_dce },
    [STAGE_INCREMENTAL] = { "incremental", run_incremental },
    [STAGE_FUSE] = { "fuse", run_fuse },
    [STAGE_PACK] = { "pack", run_pack },
    [STAGE_PLAN] = { "plan", run_plan },
};

int stage_by_name(const char *name)
{
    for (int s = 0; s < STAGE_COUNT; s++)
        if (!strcmp(stage_info[s].name, name))
            return s;
    return -1;
}

void pipeline_run(struct Arena *a, Model *m, Stage from, const Pipeline *p)
{
    for (Stage s = from; s <= p->last && s < STAGE_COUNT; s++) {
        stage_info[s].run(a, m, p);
        Graph *gs[4];
        for (int i = 0, n = graphs_of(m, gs); i < n; i++)
            check(m, gs[i], stage_info[s].name);
    }
}

static Graph fork_graph(struct Arena *a, const Graph *g)
{
    Graph c = *g;
    if (g->n > 0) {
        c.nodes = arena_alloc(a, sizeof(Node) * (size_t)g->n);
        memcpy(c.nodes, g->nodes, sizeof(Node) * (size_t)g->n);
        c.cap = g->n;
    }
    return c;
}

Model *model_fork(struct Arena *a, const Model *m)
{
    Model *c = arena_alloc(a, sizeof *c);
    *c = *m;
    c->enc = fork_graph(a, &m->enc), c->dec = fork_graph(a, &m->dec);
    c->prep = fork_graph(a, &m->prep), c->step = fork_graph(a, &m->step);
    if (m->nparams > 0) {
        c->params = arena_alloc(a, sizeof(ParamInfo) * (size_t)m->nparams);
        memcpy(c->params, m->params, sizeof(ParamInfo) * (size_t)m->nparams);
        c->cap_params = m->nparams;
    }
    return c;
}

/* The fusions, in order. Attention before linear (its matmuls are not
 * linears), norm before map (its elementwise ops are its own), transpose
 * last (it looks at the matmuls that are left). */
static const struct {
    Graph (*pass)(struct Arena *a, const Graph *g);
    bool training, inference;   /* run on the training graph, on the translators' */
} fusion_passes[] = {
    { pass_fuse_attention, false, true },
    { pass_fuse_linear, true, true },
    { pass_fuse_norm, false, true },
    { pass_fuse_map, true, true },
    { pass_fuse_transpose, true, true },
    { pass_fuse_heads, true, false },   /* the translators' attention is fused whole */
    { pass_dce, true, true },   /* constants only the fused groups read, transposes left unread */
};

Graph pipeline_fuse(struct Arena *a, const Graph *g, bool training)
{
    Graph r = *g;
    for (size_t i = 0; i < sizeof fusion_passes / sizeof fusion_passes[0]; i++)
        if (training ? fusion_passes[i].training : fusion_passes[i].inference)
            r = fusion_passes[i].pass(a, &r);
    return r;
}
