/* schedule.h - the schedule parameters of the tunable kernels (fused
 * attention, matmul, linear), their defaults and the values the tuner
 * may try. codegen.c reads a node's schedule through sched_of.
 */
#ifndef VAMOS_SCHEDULE_H
#define VAMOS_SCHEDULE_H

#include "graph.h"

#define SCHED_QB_DEFAULT 16
#define SCHED_BK_DEFAULT 64
#define SCHED_BK_STEP 32   /* a decoder step's attention: one query a head */
#define SCHED_TH_DEFAULT 2
#define SCHED_QB_MAX 32
#define SCHED_BK_MAX 128
#define SCHED_RB_MAX 8

/* The values each parameter may take (ascending, 0-terminated). */
extern const unsigned char sched_qb_values[], sched_bk_values[], sched_rb_values[], sched_th_values[];

/* Does op have a schedule? */
static inline bool sched_tunable(Op op)
{
    return op == OP_ATTENTION || op == OP_MATMUL || op == OP_LINEAR;
}

/* The register tile's default rows for the instruction set code is
 * compiled for. AVX-512 (32 vector registers): 6 rows of two 16-float
 * vectors (12 accumulators over a 32-column panel). On a Zen 5, whose
 * FMA units are 512 bits wide, that tile ran the en-es training step's
 * products at 205-260 GFLOP/s on one core (of a 272 peak) where the 4 x 32
 * tile of 8-float vectors it replaced ran at 114-131 (matmul_bench
 * --train); 4 rows of 16-float vectors 175-224, 8 rows 200-253, 10 and
 * 12 rows less. A Zen 4 splits a 512-bit FMA in two, so there 16-float
 * vectors only match 8-float ones (an earlier session measured 8 to 12
 * rows level with 4 x 32). AVX2 (16): 6 rows, which the kernel runs as
 * two passes of 16 columns (12 accumulators, 2 b vectors and the
 * broadcast: a 6x16 tile); but 2 rows of 32 columns (8 accumulators, one
 * pass) for few rows, a decoder step's products (one row per sentence),
 * where 6-row blocks leave partial ones. Measured with x86-64-v3 code on
 * a Zen 4 (VAMOS_JIT_CPU; tests/bench/results/avx2-tile.txt): 3 rows of
 * 32 columns spilled (45-49 GFLOP/s against 66-97 with 2); the training
 * step took 563-580 ms with 6 rows against 630-644 with 2, and an en-es
 * translator decoding with 6-row tiles 1.23x the time of 2-row ones.
 * It follows the target codegen was last asked for (sched_set_target),
 * and before that the host CPU; VAMOS_TILE_ROWS=R (1..SCHED_RB_MAX)
 * overrides it for every kernel, to rerun those measurements. */
int sched_default_rb(bool few_rows);
/* wide: the target has AVX-512 (1), has not (0), or is the host (-1). */
void sched_set_target(int wide);

/* Are n's rows one position per sentence (a decoder step's product or
 * attention: the dim before the last is the constant 1)? */
static inline bool sched_few_rows(const Node *n)
{
    const Shape *s = &n->shape;
    return s->rank >= 2 && s->d[s->rank - 2].sym < 0 && s->d[s->rank - 2].n == 1;
}

/* Is n an attention with one query a head (a decoder step's)? */
static inline bool sched_one_query(const Node *n)
{
    return n->op == OP_ATTENTION && sched_few_rows(n);
}

/* n's schedule with the defaults filled in. A decoder step's attention
 * takes keys in blocks of 32, not 64: its caches are as long as the
 * sentence so far, and `vamos tune` chose 32 on Zen 4 at batch 1 (0.88x
 * the kernel's time) and at batch 16 (0.70x), where the defaults were
 * chosen for the encoder's attention. */
static inline Sched sched_of(const Node *n)
{
    Sched s = n->sched;
    if (!s.qb)
        s.qb = SCHED_QB_DEFAULT;
    if (!s.bk)
        s.bk = sched_one_query(n) ? SCHED_BK_STEP : SCHED_BK_DEFAULT;
    if (!s.rb)
        s.rb = (unsigned char)sched_default_rb(sched_few_rows(n));
    if (!s.th)
        s.th = SCHED_TH_DEFAULT;
    return s;
}

/* Is s one the kernels of op accept? */
bool sched_valid(Op op, Sched s);

/* Node n's signature for the tuning database: op, input and output
 * shapes (symbols by role), attributes. Returns its length. */
int sched_signature(const Model *m, const Graph *g, const Node *n, char *buf, size_t len);

/* The graphs a translator runs (encoder; per-sentence graph and step, or
 * the whole decoder): into out[], returns how many. */
int sched_graphs(Model *m, Graph **out);

struct TuneDB;
/* Give every tunable node of m the schedule db holds for it on this
 * machine (db NULL: the defaults). *kernels: the distinct tunable
 * kernels of the graphs a translator runs; returns how many of them the
 * database had. */
int sched_apply(Model *m, const struct TuneDB *db, int *kernels);

/* The same for one graph of m's (a training graph: vamos tune --train
 * records its kernels): every tunable node gets its record's schedule or
 * the defaults; *kernels: its distinct tunable kernels; returns how many
 * of them db had (db NULL: 0). */
int sched_apply_graph(const Model *m, Graph *g, const struct TuneDB *db, int *kernels);

#endif
