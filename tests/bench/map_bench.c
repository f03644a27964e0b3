/* map_bench.c - fused elementwise chains (MAP, fuse_map.c) against the
 * same ops run one kernel each.
 *
 *     build/tests/bench/map_bench [--reps N] [--threads T]
 *
 * The encoder is the front of a transformer layer's elementwise work, d =
 * 512, batch 1: the scaled embedding plus the positional encoding (its
 * sin/cos chain), then a gelu-like chain, `x * 0.5 * (1 + tanh(0.79788 *
 * (x + 0.044715 * x^3)))`, and a residual. Both compilations are timed on
 * the same inputs over every kernel after the embedding lookup (the
 * lookup itself is the same on both sides). Prints one line per length:
 * milliseconds of each (medians of --reps samples, alternating), the
 * kernels each runs, and unfused / fused.
 */
#include "bench.h"
#include "side.h"
#include "vamos/parallel.h"

static const char *model =
    "model chain {\n"
    "  vocab src = [\"<eos>\", \"a\"]\n"
    "  vocab tgt = [\"<eos>\", \"b\"]\n"
    "  encoder(x: tokens<src>[b, n]) {\n"
    "    h = embed(x, 512) * sqrt(512) + position(n, 512)\n"
    "    g = h * 0.5 * (1.0 + tanh(0.79788 * (h + 0.044715 * h * h * h)))\n"
    "    return g + h\n"
    "  }\n"
    "  decoder(y: tokens<tgt>[b, m], memory: [b, n, 512]) {\n"
    "    return linear(embed(y, 2), len(tgt)) as out\n"
    "  }\n"
    "}\n";

/* Time every node after the gather (sources cost nothing to run). */
static int chain_range(Side *s)
{
    const Graph *g = &s->m->enc;
    int kernels = 0;
    for (int i = 0; i < g->n; i++) {
        OpKind k = op_info[g->nodes[i].op].kind;
        if (g->nodes[i].op == OP_GATHER)
            s->from = i + 1;
        kernels += s->from >= 0 && i >= s->from && k != OPK_SOURCE;
    }
    s->to = g->output;
    return kernels;
}

static int bench(int L, int reps)
{
    Side f = { 0 }, u = { 0 };
    if (side_setup(&f, model, true, L) || side_setup(&u, model, false, L))
        return -1;
    int kf = chain_range(&f), ku = chain_range(&u);
    double mf, mu;
    if (side_time_pair(&f, &u, "chains", reps, &mf, &mu))
        return -1;
    printf("%5d  %9.3f  %9.3f  %4d  %4d  %6.2f\n", L, 1e3 * mf, 1e3 * mu, kf, ku, mu / mf);
    fflush(stdout);
    side_free(&f);
    side_free(&u);
    return 0;
}

int main(int argc, char **argv)
{
    int reps = 7, threads = 2;
    if (bench_args(argc, argv, "map_bench", &reps, &threads))
        return 2;
    vamos_set_threads(threads);
    printf("# elementwise chains, batch 1, d = 512, %d threads: ms, medians of %d; ratio = unfused / fused\n",
           threads, reps);
    printf("# len      fused    unfused  kernels (fused, unfused)  ratio\n");
    static const int lens[] = { 16, 64, 256, 1024 };
    for (int i = 0; i < 4; i++)
        if (bench(lens[i], reps))
            return 1;
    return 0;
}
