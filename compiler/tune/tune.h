/* tune.h - `vamos tune`: search the schedules of a model's tunable
 * kernels (fused attention, matmul, linear) on this machine.
 *
 * Each distinct kernel of the graphs a translator runs is tuned alone: a
 * graph of its inputs and itself, compiled per candidate schedule in a
 * resource tracker of its own (kjit_add), run on random inputs at the
 * model's real shapes (batch 1, or TuneOptions.batch sentences; sequence
 * lengths at a few buckets), its
 * weight out of cache as in the model (copies taken in turn), and
 * checked against the reference interpreter: a candidate whose result
 * differs by more than 1e-5 (relative to the largest value) is discarded.
 * The search starts at the default schedule and walks to the best of the
 * neighbours (one parameter one step up or down) while that is more than
 * 2% faster; times are medians of repeated runs, and a candidate within
 * 10% of the best (either way) is measured again with it. At the end the
 * default and the winner are measured in turn, three times each, and the
 * winner is kept only if its median is more than 2% below the default's
 * (the times reported are those). Every kernel gets an equal share of
 * the budget; what a kernel leaves unused goes to the next.
 */
#ifndef VAMOS_TUNE_H
#define VAMOS_TUNE_H

#include <stdio.h>

#include "graph.h"
#include "tunedb.h"

typedef struct TuneOptions {
    double budget;       /* seconds for the whole model */
    const char *db;      /* where records are appended; NULL: none */
    FILE *progress;      /* progress line, or NULL */
    bool exhaustive;     /* every schedule of every kernel, no budget (benchmarks) */
    bool train;          /* the kernels of the training step (vamos train), not a translator's */
    int batch;           /* sentences of a batch the kernels are timed at (0: 1): a
                          * translator's batched decoding runs its step's
                          * products on that many rows */
    /* tests: when it returns true for a candidate s of a kernel whose
     * default schedule is def, one element of the candidate's result is
     * moved by 1e-4 of the largest before the check (a wrong kernel, to
     * show it is discarded); NULL in use */
    bool (*disturb)(Sched def, Sched s);
} TuneOptions;

typedef struct TuneResult {
    char sig[TUNE_SIG_MAX];
    const char *graph;   /* the graph it was found in first */
    int nodes;           /* how many nodes share it */
    Sched def, best;     /* the kernel's default schedule (sched_of), and the one chosen */
    double default_us, tuned_us;
    int tried, wrong;    /* candidates measured, and discarded as wrong */
    bool done;           /* measured at all (false: no budget left) */
} TuneResult;

/* Tune the kernels of m (compiled with fusion, weights not needed).
 * *res gets one entry per distinct kernel (free it). -1 with a message
 * on an internal error. */
int tune_model(Model *m, const TuneOptions *o, TuneResult **res, int *nres, char *err, size_t errlen);

/* The search's candidates for op: the default's neighbours, used by tests. */
int tune_neighbours(Op op, Sched s, Sched *out, int max);

#endif
