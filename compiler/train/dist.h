/* dist.h - data-parallel training across processes, over Open MPI.
 *
 * `mpirun -np N vamos train ...` starts N copies of the same run. Each one
 * (a rank) computes the gradient of its share of every batch; dist_sum
 * adds them up (MPI_Allreduce), so every rank holds the whole batch's
 * gradient and takes the same Adam step. This file is the only one that
 * knows MPI: built without it (no libopenmpi-dev, or -DVAMOS_MPI=OFF),
 * or run without mpirun, every call below is that of a world of one
 * process and nothing else changes.
 */
#ifndef VAMOS_DIST_H
#define VAMOS_DIST_H

#include <stdbool.h>
#include <stddef.h>

/* Join the run's world when started by mpirun (MPI_Init); otherwise, and
 * when Vamos was built without MPI, a world of one. 0, or -1 with a
 * message. */
int dist_init(char *err, size_t errlen);
/* Leave the world (MPI_Finalize) after a run that succeeded everywhere. */
void dist_finish(void);
/* End every rank's run now, with this status (MPI_Abort): for a failure
 * one rank meets alone, which would leave the others waiting forever. */
void dist_abort(int status);

int dist_rank(void);
int dist_size(void);
/* Built with MPI (else mpirun runs are refused). */
bool dist_built(void);
/* In an MPI run: the MPI library's name and version, else NULL. */
const char *dist_library(void);

/* The threads a rank should use by default: the cores it may run on,
 * shared with the ranks on the same machine. */
int dist_default_threads(void);

/* Sum x[0..n) over the ranks, in place, on every rank. 0 or -1. */
int dist_sum_f32(float *x, size_t n);
int dist_sum_f64(double *x, int n);
/* Copy rank 0's x[0..n) to every rank. 0 or -1. */
int dist_bcast_f32(float *x, size_t n);

/* The seconds spent in dist_sum_f32 so far (the gradients' allreduce):
 * summing, and before that waiting for the slowest rank to get there. */
double dist_sum_seconds(void);
double dist_wait_seconds(void);

#endif
