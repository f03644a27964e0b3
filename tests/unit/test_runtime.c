/* test_runtime.c - the runtime's thread pool and memory plan. */
#include <criterion/criterion.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "passes.h"
#include "train_graph.h"
#include "vamos/model.h"
#include "vamos/parallel.h"
#include "vamos/translate.h"

/* Adds 1 to out[i] for i in [lo, hi); fails with 7 on a marked index. */
static int32_t mark(void *out, const void *a, const void *b, const int64_t *dims, int64_t lo, int64_t hi)
{
    (void)a, (void)b;
    int *o = out;
    for (int64_t i = lo; i < hi; i++) {
        if (dims && i == dims[0])
            return 7;
        o[i]++;
    }
    return 0;
}

static void covers_once(int threads)
{
    vamos_set_threads(threads);
    enum { N = 10007 };
    int *o = calloc(N, sizeof *o);
    for (int rep = 0; rep < 200; rep++) {
        int64_t n = 1 + (rep * 7919) % N;
        cr_assert_eq(vamos_parallel(mark, o, NULL, NULL, NULL, n, 1 << 20), 0);
        for (int64_t i = 0; i < N; i++) {
            cr_assert_eq(o[i], i < n, "threads %d, n %ld: [%ld] done %d times", threads, (long)n, (long)i, o[i]);
            o[i] = 0;
        }
    }
    free(o);
}

Test(pool, every_index_once_on_any_thread_count)
{
    covers_once(1);
    covers_once(2);
    covers_once(5);
    covers_once(0);
}

Test(pool, a_failing_chunk_is_reported)
{
    vamos_set_threads(4);
    int *o = calloc(1000, sizeof *o);
    int64_t bad[] = { 999 };
    cr_assert_eq(vamos_parallel(mark, o, NULL, NULL, bad, 1000, 1 << 20), 7);
    bad[0] = 0;
    cr_assert_eq(vamos_parallel(mark, o, NULL, NULL, bad, 1000, 1 << 20), 7);
    /* small work runs inline and fails the same way */
    cr_assert_eq(vamos_parallel(mark, o, NULL, NULL, bad, 1000, 10), 7);
    free(o);
}

/* Lanes: each runs once, with its kernels inline; past the most threads
 * there are, the rest run on the caller, and the caller's inline flag is
 * what it was after. */
typedef struct LaneHit { int calls[80], inl[80]; } LaneHit;

static void hit_lane(void *ctx, int lane)
{
    LaneHit *h = ctx;
    __atomic_add_fetch(&h->calls[lane], 1, __ATOMIC_RELAXED);
    h->inl[lane] = vamos_parallel_is_inline();
}

Test(pool, every_lane_runs_once)
{
    static const int counts[] = { 1, 2, 7, VAMOS_MAX_THREADS, 80 };
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        LaneHit h = { { 0 }, { 0 } };
        vamos_lanes(hit_lane, &h, counts[c]);
        for (int l = 0; l < 80; l++) {
            cr_expect_eq(h.calls[l], l < counts[c], "%d lanes: lane %d ran %d times", counts[c], l, h.calls[l]);
            cr_expect_eq(h.inl[l], l < counts[c], "%d lanes: lane %d's kernels not inline", counts[c], l);
        }
        cr_expect_eq(vamos_parallel_is_inline(), 0);
    }
}

/* Two application threads calling at once: one runs inline, both finish. */
static void *hammer(void *arg)
{
    int *o = arg;
    for (int rep = 0; rep < 300; rep++)
        vamos_parallel(mark, o, NULL, NULL, NULL, 4096, 1 << 20);
    return NULL;
}

Test(pool, concurrent_callers)
{
    vamos_set_threads(2);
    int *a = calloc(4096, sizeof *a), *b = calloc(4096, sizeof *b);
    pthread_t t;
    pthread_create(&t, NULL, hammer, a);
    hammer(b);
    pthread_join(t, NULL);
    for (int i = 0; i < 4096; i++) {
        cr_assert_eq(a[i], 300);
        cr_assert_eq(b[i], 300);
    }
    free(a), free(b);
}

/* The memory plan of a graph: a value's buffer is never shared with a value
 * live at the same time (checked from scratch here), and base's graphs fit
 * in far fewer buffers than nodes. */
static int plan_checked(const Graph *g)
{
    int *slot = malloc(sizeof(int) * (size_t)g->n), *last = malloc(sizeof(int) * (size_t)g->n);
    int nslots = plan_memory(g, true, slot);
    cr_assert_gt(nslots, 0);
    for (int i = 0; i < g->n; i++)
        last[i] = (i == g->output || g->nodes[i].op == OP_INPUT) ? g->n : i;
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < op_info[g->nodes[i].op].arity; k++)
            if (last[g->nodes[i].in[k]] < i)
                last[g->nodes[i].in[k]] = i;
    for (int i = 0; i < g->n; i++) {
        cr_assert_eq(slot[i] < 0, g->nodes[i].op == OP_PARAM, "node %d", i);
        for (int j = i + 1; j < g->n && slot[i] >= 0; j++)
            /* j is written while i is still to be read: they must not share */
            cr_assert(!(slot[j] == slot[i] && j <= last[i]), "%s: nodes %d and %d share buffer %d but %d is read at %d",
                      g->name, i, j, slot[i], i, last[i]);
    }
    free(slot), free(last);
    return nslots;
}

Test(plan, base_shares_buffers_safely)
{
    Arena a = { 0 };
    Diag d;
    diag_init(&d, stderr);
    Model *m = compile_file(&a, &d, "models/base.vam", NULL);
    cr_assert_not_null(m);
    int ne = plan_checked(&m->enc), nd = plan_checked(&m->dec);
    cr_log_info("base: encoder %d nodes in %d buffers, decoder %d nodes in %d buffers", m->enc.n, ne, m->dec.n, nd);
    cr_assert_lt(ne * 4, m->enc.n);
    cr_assert_lt(nd * 4, m->dec.n);
    arena_free(&a);
}

/* The training step's plan, with views: a reshape of a computed value
 * shares its buffer (and runs no kernel), and no buffer is written while
 * a value in it (or a view of it) is still to be read. */
Test(plan, training_views_share_buffers_safely)
{
    Arena a = { 0 };
    Diag d;
    diag_init(&d, stderr);
    Model *m = compile_file(&a, &d, "models/en-es.vam", "train");
    cr_assert_not_null(m);
    char err[256];
    Graph g = train_graph_compiled_form(&a, m, 0.1f, err, sizeof err);
    cr_assert_geq(g.output, 0, "%s", err);
    int n = g.n, *slot = malloc(sizeof(int) * (size_t)n), *root = malloc(sizeof(int) * (size_t)n),
        *last = malloc(sizeof(int) * (size_t)n);
    cr_assert_gt(plan_memory_views(&g, true, slot), 0);
    int views = 0;
    for (int i = 0; i < n; i++) {
        bool view = plan_is_view(&g, slot, i);
        views += view;
        root[i] = view ? root[g.nodes[i].in[0]] : i;
        if (view)
            cr_assert_eq(g.nodes[i].op, OP_RESHAPE);
        last[i] = (i == g.output || g.nodes[i].op == OP_INPUT) ? n : i;
    }
    for (int i = 0; i < n; i++) {
        if (last[root[i]] < i)
            last[root[i]] = i;
        for (int k = 0; k < op_info[g.nodes[i].op].arity; k++)
            if (last[root[g.nodes[i].in[k]]] < i)
                last[root[g.nodes[i].in[k]]] = i;
    }
    if (g.output >= 0)
        last[root[g.output]] = n;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n && slot[i] >= 0 && root[i] == i; j++)
            cr_assert(!(root[j] != i && slot[j] == slot[i] && j <= last[i]),
                      "nodes %d and %d share buffer %d but %d (or a view of it) is read at %d", i, j, slot[i], i, last[i]);
    cr_assert_gt(views, 10, "the heads' reshapes are views (%d)", views);
    free(slot), free(root), free(last);
    arena_free(&a);
}

/* A graph with nothing in it and no output (the per-sentence graph of a
 * decoder that never reads the encoder's output): no buffers, and no
 * write outside the plan's arrays (ASan build). */
Test(plan, empty_graph_without_output)
{
    Graph g = { .name = "prep", .output = -1 };
    int slot[1] = { 7 };
    cr_assert_eq(plan_memory(&g, true, slot), 0);
    cr_assert_eq(slot[0], 7);
}

static bool lacks_avx512f(const char *f)
{
    return strcmp(f, "avx512f") != 0;
}

static bool has_nothing(const char *f)
{
    (void)f;
    return false;
}

/* A translator checks its CPU can run its code: every '+' feature of a
 * native build, or its x86-64 level; what is missing is named. */
Test(cpu, a_missing_feature_is_named)
{
    char err[512] = "";
    cr_expect_eq(vamos_cpu_check_with("native:+avx2,-avx512bw,+fma", lacks_avx512f, err, sizeof err), 0);
    cr_expect_eq(vamos_cpu_check_with("native:+avx2,+avx512f,-avx512bw,+avx512bw", lacks_avx512f, err, sizeof err), -1);
    cr_expect(strstr(err, "lacks avx512f:") && strstr(err, "--cpu x86-64-v3"), "%s", err);
    cr_expect_eq(vamos_cpu_check_with("native:+avx2,+fma,-avx512f", has_nothing, err, sizeof err), -1);
    cr_expect(strstr(err, "lacks avx2, fma:"), "%s", err);
    cr_expect_eq(vamos_cpu_check_with("x86-64-v3", has_nothing, err, sizeof err), -1);
    cr_expect(strstr(err, "built for x86-64-v3 CPUs"), "%s", err);
    cr_expect_eq(vamos_cpu_check_with("", has_nothing, err, sizeof err), 0);   /* nothing recorded */
    cr_expect_eq(vamos_cpu_check_with("native:", has_nothing, err, sizeof err), 0);
    /* this machine runs what it builds, and the baseline */
    char *features = LLVMGetHostCPUFeatures(), spec[8192];
    snprintf(spec, sizeof spec, "native:%s", features);
    LLVMDisposeMessage(features);
    cr_expect_eq(vamos_cpu_check(spec, err, sizeof err), 0, "%s", err);
    cr_expect_eq(vamos_cpu_check("x86-64", err, sizeof err), 0, "%s", err);
}

/* A word vocabulary looked up by its hash index gives the ids a scan of
 * the words gives: exact match first, then lowercase, a repeated word's
 * first id, <unk> for the rest; on random texts over words, their
 * capitalised forms and unknown words. */
Test(vocab, the_index_finds_what_a_scan_finds)
{
    enum { N = 3000 };
    char *words[N];
    for (int i = 0; i < N; i++) {
        char w[32];
        snprintf(w, sizeof w, i % 7 == 3 ? "W%d" : "w%d", i % 2900);   /* repeats and capitals */
        words[i] = strdup(w);
    }
    vamos_vocab v = { .n = N, .eos = 0, .bos = -1, .unk = 5, .pad = -1, .words = words };
    cr_assert_eq(vamos_vocab_index(&v), 0);
    unsigned seed = 7;
    for (int rep = 0; rep < 500; rep++) {
        char text[512] = "";
        for (int k = 0; k < 12; k++) {
            seed = seed * 1103515245u + 12345u;
            char w[32];
            snprintf(w, sizeof w, (seed >> 16) % 3 == 0 ? " W%u" : " w%u", (seed >> 8) % 3100);
            strcat(text, w);
        }
        int32_t a[32], b[32];
        int na = vamos_tokenize(&v, text, a, 32);
        int nb = vamos_tokenize_words((const char *const *)words, N, v.unk, text, b, 32, false, NULL);
        cr_assert_eq(na, nb, "%s", text);
        for (int i = 0; i < na; i++)
            cr_assert_eq(a[i], b[i], "%s: word %d", text, i);
    }
    free(v.index);
    for (int i = 0; i < N; i++)
        free(words[i]);
}
