/* attention_bench.c - the fused attention kernel against the unfused
 * compiled kernels of the same graph.
 *
 *     build/tests/bench/attention_bench [--reps N] [--threads T]
 *
 * The model is the standard library's attention over 8 heads of 64 (d =
 * 512), batch 1, with a padding mask, and for "causal" rows the causal
 * mask too. It is compiled twice by the JIT: with fusion (one ATTENTION
 * kernel) and without (matmul, scale, mask, max, sub, exp, sum, div,
 * matmul). Both are timed on the same inputs, kernel calls only, through
 * the thread pool as a graph runs them; the transpose of k that both read
 * is not timed. Prints one line per case: milliseconds of each (medians
 * of --reps samples, the two alternating) and unfused / fused.
 * tests/bench/attention_torch.py runs this with PyTorch in the same run;
 * tests/bench/plot.py draws the figure.
 */
#include "bench.h"
#include "side.h"
#include "vamos/parallel.h"

/* The timed range: the fused node, or q @ kt through p @ v. */
static int attention_range(Side *s, bool fuse)
{
    const Graph *g = &s->m->enc;
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        if (n->op == OP_ATTENTION)
            s->from = s->to = i;
        if (!fuse && n->op == OP_MATMUL && g->nodes[n->in[1]].op == OP_TRANSPOSE && s->from < 0)
            s->from = i;
        if (!fuse && n->op == OP_MATMUL && s->from >= 0 && i > s->from)
            s->to = i;
    }
    if (s->from < 0 || s->to < 0) {
        fprintf(stderr, "internal error: no attention in the %s graph\n", fuse ? "fused" : "unfused");
        return -1;
    }
    return 0;
}

static int bench(int L, bool causal, int reps)
{
    char text[1024];
    snprintf(text, sizeof text,
             "model att {\n"
             "  vocab src = [\"<eos>\", \"a\"]\n"
             "  vocab tgt = [\"<eos>\", \"b\"]\n"
             "  encoder(x: tokens<src>[b, n]) {\n"
             "    h = embed(x, 512) + position(n, 512)\n"
             "    q = split_heads(h, 8)\n"
             "    k = split_heads(h * 0.5, 8)\n"
             "    mask = padding_mask(x)%s\n"
             "    return merge_heads(attention(q, k, q, mask: mask))\n"
             "  }\n"
             "  decoder(y: tokens<tgt>[b, m], memory: [b, n, 512]) {\n"
             "    return linear(embed(y, 2), len(tgt)) as out\n"
             "  }\n"
             "}\n",
             causal ? " + causal_mask(n)" : "");
    Side f = { 0 }, u = { 0 };
    if (side_setup(&f, text, true, L) || side_setup(&u, text, false, L) || attention_range(&f, true) ||
        attention_range(&u, false))
        return -1;
    double mf, mu;
    if (side_time_pair(&f, &u, "attention", reps, &mf, &mu))
        return -1;
    printf("%5d  %-6s  %9.3f  %9.3f  %6.2f\n", L, causal ? "causal" : "full", 1e3 * mf, 1e3 * mu, mu / mf);
    fflush(stdout);
    side_free(&f);
    side_free(&u);
    return 0;
}

int main(int argc, char **argv)
{
    int reps = 7, threads = 2;
    if (bench_args(argc, argv, "attention_bench", &reps, &threads))
        return 2;
    vamos_set_threads(threads);
    printf("# attention, batch 1, 8 heads of 64, %d threads: ms, medians of %d; ratio = unfused / fused\n", threads,
           reps);
    printf("# len  mask       fused    unfused   ratio\n");
    static const int lens[] = { 16, 64, 256, 1024 };
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 4; i++)
            if (bench(lens[i], c == 1, reps))
                return 1;
    return 0;
}
