/* pipeline.h - the compiler's stages as one table.
 *
 * After the front end (parse, resolve, elaborate: front/compile.c) a
 * model goes through these stages, in this order, each one file's pass
 * (passes.h), the verifier after each in debug builds:
 *
 *   elab         the graphs as the program wrote them; inference graphs
 *                lose their dropout (dropout.c)
 *   fold         constant folding (fold.c)
 *   dce          dead nodes removed (dce.c)
 *   incremental  the per-sentence and one-word decoder graphs derived from
 *                the decoder (incremental.c)
 *   fuse         the fusions of fusion_passes below, per graph
 *   pack         weights read as panels (pack.c)
 *   plan         each graph's memory plan (plan.c), kept on the graph
 *
 * Every user runs this table: `vamos check/graph/run/build/tune` the whole
 * of it (`vamos graph --after NAME` stops early), `vamos train` stops at
 * dce with dropout kept, differentiates (autodiff.c), runs the fusions
 * marked for training on the training graph (train_graph.c) and forks
 * the same compiled model for evaluation and translation. */
#ifndef VAMOS_PIPELINE_H
#define VAMOS_PIPELINE_H

#include "graph.h"

struct Arena;

typedef enum Stage {
    STAGE_ELAB, STAGE_FOLD, STAGE_DCE, STAGE_INCREMENTAL, STAGE_FUSE, STAGE_PACK, STAGE_PLAN,
    STAGE_COUNT
} Stage;

/* What to run: the stages up to and including `last`. */
typedef struct Pipeline {
    Stage last;
    bool training;   /* keep dropout: the graphs autodiff differentiates */
} Pipeline;

typedef struct StageInfo {
    const char *name;   /* --after NAME; the verifier's message */
    void (*run)(struct Arena *a, Model *m, const Pipeline *p);
} StageInfo;

extern const StageInfo stage_info[STAGE_COUNT];

/* The stage named name, or -1. */
int stage_by_name(const char *name);

/* Run stages from..p->last on m. */
void pipeline_run(struct Arena *a, Model *m, Stage from, const Pipeline *p);

/* A copy of m that later stages can change without touching m (its own
 * weight table and graph nodes): to go on from a stage m stopped at. */
Model *model_fork(struct Arena *a, const Model *m);

/* The fusion passes of the fuse stage, in order, on one graph; with
 * `training`, those that also fuse the training graph (no attention or
 * norm fusion there: their backward is unfused). Ends with dce. */
Graph pipeline_fuse(struct Arena *a, const Graph *g, bool training);

#endif
