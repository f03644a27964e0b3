/* dist.c - data-parallel training across processes, over Open MPI (see
 * dist.h). Without VAMOS_HAVE_MPI, a world of one process.
 *
 * MPI is joined only when a launcher started this process (mpirun sets
 * OMPI_COMM_WORLD_SIZE, PMIx launchers PMIX_RANK, Hydra PMI_SIZE): a
 * plain `vamos train` never calls MPI_Init, which as a "singleton" would
 * start a helper daemon for nothing.
 *
 * Errors: MPI's default handler (MPI_ERRORS_ARE_FATAL) ends the whole run
 * when a collective fails. When a rank dies, mpirun ends the others with
 * SIGTERM; train.c says so on rank 0 and leaves the checkpoint, which is
 * only ever replaced by a rename, as it was.
 */
#define _GNU_SOURCE
#include "dist.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef VAMOS_HAVE_MPI
#include <mpi.h>
#endif

static struct {
    bool mpi;              /* MPI_Init was called */
    int rank, size;
    double sum_s, wait_s;
    char library[256];
} D = { .size = 1 };

#ifdef VAMOS_HAVE_MPI
static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
#endif

static bool launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

int dist_init(char *err, size_t errlen)
{
    (void)err, (void)errlen;
#ifdef VAMOS_HAVE_MPI
    if (!launched() || D.mpi)
        return 0;
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        snprintf(err, errlen, "MPI_Init failed");
        return -1;
    }
    D.mpi = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &D.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &D.size);
    int len = 0;
    MPI_Get_library_version(D.library, &len);
    char *nl = strchr(D.library, '\n');
    if (nl)
        *nl = 0;
    char *comma = strchr(D.library, ',');
    if (comma)
        *comma = 0;
#else
    if (launched()) {   /* N copies of one run, each writing the same files */
        snprintf(err, errlen, "started by an MPI launcher, but this vamos was built without MPI "
                              "(install libopenmpi-dev and build again)");
        return -1;
    }
#endif
    return 0;
}

void dist_finish(void)
{
#ifdef VAMOS_HAVE_MPI
    if (D.mpi)
        MPI_Finalize();
    D.mpi = false;
#endif
}

void dist_abort(int status)
{
#ifdef VAMOS_HAVE_MPI
    if (D.mpi && D.size > 1)
        MPI_Abort(MPI_COMM_WORLD, status);
#endif
    (void)status;
}

int dist_rank(void) { return D.rank; }
int dist_size(void) { return D.size; }
const char *dist_library(void) { return D.library[0] ? D.library : NULL; }

bool dist_built(void)
{
#ifdef VAMOS_HAVE_MPI
    return true;
#else
    return false;
#endif
}

int dist_default_threads(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int cores = online > 0 ? (int)online : 1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 && CPU_COUNT(&set) < cores)
        cores = CPU_COUNT(&set);   /* mpirun binds each rank to its cores */
    int local = 1;
    const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (D.size > 1 && ls && atoi(ls) > 1)
        local = atoi(ls);
    int share = (int)(online > 0 ? online : 1) / local;
    int n = cores < share ? cores : share;
    return n > 0 ? n : 1;
}

/* The gradients' allreduce goes in parts of 256 Ki floats (1 MB): Open
 * MPI 4.1 sums 9.6 M floats (the en-es model) between two ranks of one
 * machine in 25 ms in one call and in 7.9 ms in parts of this size, whose
 * buffers stay in cache (allreduce_bench, tests/bench/results/mpi_train.txt). A barrier
 * first, so that the time spent waiting for the slowest rank is told apart
 * from the time of the sum itself. */
#define SUM_PART (1 << 18)

int dist_sum_f32(float *x, size_t n)
{
#ifdef VAMOS_HAVE_MPI
    if (D.size > 1) {
        double t0 = mono_s();
        if (MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS)
            return -1;
        double t1 = mono_s();
        for (size_t at = 0; at < n;) {
            int part = n - at > SUM_PART ? SUM_PART : (int)(n - at);
            if (MPI_Allreduce(MPI_IN_PLACE, x + at, part, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
                return -1;
            at += (size_t)part;
        }
        D.wait_s += t1 - t0;
        D.sum_s += mono_s() - t1;
    }
#endif
    (void)x, (void)n;
    return 0;
}

int dist_sum_f64(double *x, int n)
{
#ifdef VAMOS_HAVE_MPI
    if (D.size > 1 && MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
        return -1;
#endif
    (void)x, (void)n;
    return 0;
}

int dist_bcast_f32(float *x, size_t n)
{
#ifdef VAMOS_HAVE_MPI
    for (size_t at = 0; D.size > 1 && at < n;) {
        int part = n - at > (1u << 30) ? 1 << 30 : (int)(n - at);
        if (MPI_Bcast(x + at, part, MPI_FLOAT, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
            return -1;
        at += (size_t)part;
    }
#endif
    (void)x, (void)n;
    return 0;
}

double dist_sum_seconds(void) { return D.sum_s; }
double dist_wait_seconds(void) { return D.wait_s; }
