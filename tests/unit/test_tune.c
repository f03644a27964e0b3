/* test_tune.c - the tuning database (tunedb.c), the schedules
 * (schedule.c) and the search (tune.c). */
#include <criterion/criterion.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "helpers.h"
#include "passes.h"
#include "schedule.h"
#include "tune.h"
#include "tunedb.h"
#include "train_graph.h"
#include "compile.h"

static TuneRecord record(uint64_t key, int rb, const char *sig)
{
    TuneRecord r = { .key = key, .sched = { 16, 64, (unsigned char)rb, 1 }, .default_us = 12.5, .tuned_us = 10.25 };
    snprintf(r.sig, sizeof r.sig, "%s", sig);
    return r;
}

static char *temp_path(const char *name)
{
    static char buf[4][256];
    static int at;
    char *p = buf[at++ % 4];
    snprintf(p, 256, "/tmp/vamos-test-%d-%s", (int)getpid(), name);
    unlink(p);
    return p;
}

Test(tunedb, a_record_round_trips)
{
    TuneRecord r = record(0x0123456789abcdefull, 3, "matmul [batch,src,512] [512,512] ->[batch,src,512] packed"), back;
    char line[1024];
    int n = tunedb_format(&r, line, sizeof line);
    cr_assert(n > 0 && line[n - 1] == '\n');
    line[n - 1] = 0;
    const char *why;
    cr_assert(tunedb_parse(line, &back, &why), "%s: %s", line, why);
    cr_expect_eq(back.key, r.key);
    cr_expect(back.sched.qb == 16 && back.sched.bk == 64 && back.sched.rb == 3 && back.sched.th == 1);
    cr_expect_eq(back.default_us, 12.5);
    cr_expect_eq(back.tuned_us, 10.25);
    cr_expect_str_eq(back.sig, r.sig);
}

/* th came after the first records were written: a line without it ran
 * its kernel on the pool; one with a value the kernels do not take is
 * damaged. */
Test(tunedb, th_is_optional_and_checked)
{
    TuneRecord r;
    const char *why;
    cr_assert(tunedb_parse("v1 0000000000000001 qb=16 bk=64 rb=2 default=1 tuned=1 linear x", &r, &why), "%s", why);
    cr_expect(r.sched.rb == 2 && r.sched.th == SCHED_TH_DEFAULT);
    cr_assert(tunedb_parse("v1 0000000000000001 qb=16 bk=64 rb=2 th=1 default=1 tuned=1 linear x", &r, &why), "%s",
              why);
    cr_expect(r.sched.th == 1);
    cr_expect(!tunedb_parse("v1 0000000000000001 qb=16 bk=64 rb=2 th=3 default=1 tuned=1 linear x", &r, &why));
    cr_expect(!tunedb_parse("v1 0000000000000001 qb=16 bk=64 rb=2 th= default=1 tuned=1 linear x", &r, &why));
}

Test(tunedb, append_then_load_and_the_last_record_wins)
{
    const char *path = temp_path("dir/sub/tune.db");   /* directories are made */
    char err[256];
    TuneRecord a = record(1, 2, "linear a"), b = record(2, 3, "linear b"), a2 = record(1, 5, "linear a");
    cr_assert_eq(tunedb_append(path, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tunedb_append(path, &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tunedb_append(path, &a2, err, sizeof err), 0, "%s", err);
    TuneDB db;
    cr_assert_eq(tunedb_load(path, &db, stderr, err, sizeof err), 0, "%s", err);
    cr_expect_eq(db.n, 3);
    cr_expect_eq(db.bad, 0);
    cr_expect_eq(tunedb_find(&db, 1)->sched.rb, 5);
    cr_expect_eq(tunedb_find(&db, 2)->sched.rb, 3);
    cr_expect_null(tunedb_find(&db, 3));
    tunedb_free(&db);
    /* a missing file is an empty database */
    cr_assert_eq(tunedb_load("/tmp/vamos-no-such-db", &db, stderr, err, sizeof err), 0);
    cr_expect_eq(db.n, 0);
}

Test(tunedb, keys_are_stable_and_change_with_the_machine)
{
    const char *sig = "attention [batch,8,src,64] [batch,8,64,src] [batch,8,src,64] [batch,1,1,src] ->[batch,8,src,64]";
    const char *m1 = "cpu=znver3 features=+avx2,+fma llvm=19.1.7 vamos=0.1.0";
    uint64_t k = tune_key(sig, m1);
    cr_expect_eq(k, tune_key(sig, m1));
    /* XXH3 is specified, so a key is the same on every build and
     * machine: this value pins the derivation (signature, NUL, machine,
     * NUL) so that a change to it, which orphans every stored record, is
     * made on purpose */
    cr_expect_eq(tune_key("x", "y"), 0xb3a80c2a53ba2868ull);
    cr_expect_neq(k, tune_key(sig, "cpu=znver3 features=+avx2,+fma,+avx512f llvm=19.1.7 vamos=0.1.0"));
    cr_expect_neq(k, tune_key(sig, "cpu=znver4 features=+avx2,+fma llvm=19.1.7 vamos=0.1.0"));
    cr_expect_neq(k, tune_key(sig, "cpu=znver3 features=+avx2,+fma llvm=18.1.8 vamos=0.1.0"));
    cr_expect_neq(k, tune_key(sig, "cpu=znver3 features=+avx2,+fma llvm=19.1.7 vamos=0.2.0"));
    cr_expect_neq(k, tune_key("attention [batch,8,src,32]", m1));
    /* the parts cannot run together: ("ab", "c") is not ("a", "bc") */
    cr_expect_neq(tune_key("ab", "c"), tune_key("a", "bc"));
    /* this machine's string names the CPU, its features and the versions */
    const char *here = tune_machine();
    cr_expect(strstr(here, "cpu=") && strstr(here, "features=") && strstr(here, "llvm=19.") && strstr(here, "vamos="),
              "%s", here);
    cr_expect(!strstr(here, "target="), "%s", here);
    /* code for another CPU level (build --cpu) keys records of its own */
    char native[4096];
    snprintf(native, sizeof native, "%s", here);
    tune_set_target("x86-64-v3");
    cr_expect(strstr(tune_machine(), " target=x86-64-v3"), "%s", tune_machine());
    tune_set_target("native");
    cr_expect_str_eq(tune_machine(), native);
    tune_set_target(NULL);
    cr_expect_str_eq(tune_machine(), native);
}

Test(tunedb, damaged_lines_are_reported_by_number_and_skipped)
{
    const char *path = temp_path("bad.db");
    FILE *f = fopen(path, "wb");
    TuneRecord good = record(0xabcull, 2, "linear good");
    char line[1024];
    tunedb_format(&good, line, sizeof line);
    fputs(line, f);                                                                   /* 1 */
    fputs("# a comment\n", f);                                                        /* 2 */
    fputs("complete garbage\n", f);                                                   /* 3 */
    fputs("v1 00000000000000zz qb=16 bk=64 rb=2 default=1 tuned=1 linear x\n", f);    /* 4 */
    fputs("v1 0000000000000001 qb=16 bk=64 rb=9 default=1 tuned=1 linear x\n", f);    /* 5 */
    fputs("v1 0000000000000001 qb=16 bk=64 rb=2 default=-1 tuned=1 linear x\n", f);   /* 6 */
    fputs("v1 0000000000000001 qb=16 bk=64 rb=2 default=1 tuned=1\n", f);             /* 7 */
    static const char nul[] = "v1 0000000000000002 qb=16 bk=64 rb=2 default=1 tuned=1 lin\0ear\n";
    fwrite(nul, 1, sizeof nul - 1, f);                                                /* 8 */
    fputs(line, f);                                                                   /* 9 */
    fputs("v1 0000000000000003 qb=16 bk=64 rb=2 defa", f);                            /* 10: cut off */
    fclose(f);
    char *warn;
    size_t wlen;
    FILE *w = open_memstream(&warn, &wlen);
    TuneDB db;
    char err[256];
    cr_assert_eq(tunedb_load(path, &db, w, err, sizeof err), 0, "%s", err);
    fclose(w);
    cr_expect_eq(db.n, 2, "%s", warn);
    cr_expect_eq(db.bad, 7, "%s", warn);
    for (int l = 3; l <= 10; l++) {
        char at[300];
        snprintf(at, sizeof at, "%s:%d: warning: skipped", path, l);
        cr_expect(l == 9 || strstr(warn, at), "no warning for line %d in:\n%s", l, warn);
    }
    cr_expect(strstr(warn, "not 16 hex digits") && strstr(warn, "not one the kernels accept") &&
              strstr(warn, "cut off") && strstr(warn, "NUL"), "%s", warn);
    free(warn);
    tunedb_free(&db);
    /* an append after a cut-off line starts a line of its own */
    cr_assert_eq(tunedb_append(path, &good, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tunedb_load(path, &db, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(db.n, 3);
    tunedb_free(&db);
}

/* Two writers appending at once, many records each: every record is
 * there, whole. */
Test(tunedb, concurrent_writers_lose_nothing)
{
    const char *path = temp_path("concurrent.db");
    enum { PER = 300 };
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        if ((kids[k] = fork()) == 0) {
            char err[256], sig[64];
            for (int i = 0; i < PER; i++) {
                snprintf(sig, sizeof sig, "matmul writer %d record %d padded to be a longer line", k, i);
                TuneRecord r = record((uint64_t)(k * PER + i + 1), 1 + i % 6, sig);
                if (tunedb_append(path, &r, err, sizeof err))
                    _exit(1);
            }
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    TuneDB db;
    char err[256];
    cr_assert_eq(tunedb_load(path, &db, stderr, err, sizeof err), 0, "%s", err);
    cr_expect_eq(db.n, 2 * PER);
    cr_expect_eq(db.bad, 0);
    for (int i = 1; i <= 2 * PER; i++)
        cr_expect(tunedb_find(&db, (uint64_t)i), "record %d lost", i);
    tunedb_free(&db);
}

/* A decoder step's attention (one query a head) takes keys in blocks of
 * 32 by default, any other attention in blocks of 64; a tuned schedule
 * is kept as it is. */
Test(schedule, a_decoder_steps_attention_defaults_to_blocks_of_32)
{
    Node step = { .op = OP_ATTENTION, .shape = { 4, { { 0, 0 }, { 4, -1 }, { 1, -1 }, { 64, -1 } } } };
    Node enc = { .op = OP_ATTENTION, .shape = { 4, { { 0, 0 }, { 4, -1 }, { 0, 1 }, { 64, -1 } } } };
    cr_expect_eq(sched_of(&step).bk, SCHED_BK_STEP);
    cr_expect_eq(sched_of(&enc).bk, SCHED_BK_DEFAULT);
    step.sched.bk = 128;
    cr_expect_eq(sched_of(&step).bk, 128);
    Node lin = { .op = OP_LINEAR, .shape = { 3, { { 0, 0 }, { 1, -1 }, { 256, -1 } } } };
    cr_expect_eq(sched_of(&lin).bk, SCHED_BK_DEFAULT);   /* unused by a linear, and unchanged */
}

/* The register tile's default rows follow the instruction set code is
 * compiled for: 6 with AVX-512's 32 vector registers (6 rows of two
 * 16-float vectors); with AVX2's 16, 6 (a 6x16 tile) and 2 for a decoder
 * step's few rows. */
Test(schedule, default_rows_follow_the_target)
{
    Node enc = { .op = OP_LINEAR, .shape = { 3, { { 0, 0 }, { 0, 1 }, { 256, -1 } } } };
    Node step = { .op = OP_LINEAR, .shape = { 3, { { 0, 0 }, { 1, -1 }, { 256, -1 } } } };
    sched_set_target(1);
    cr_expect_eq(sched_default_rb(false), 6);
    cr_expect_eq(sched_of(&enc).rb, 6);
    cr_expect_eq(sched_of(&step).rb, 6);
    sched_set_target(0);
    cr_expect_eq(sched_of(&enc).rb, 6);
    cr_expect_eq(sched_of(&step).rb, 2);
    sched_set_target(-1);   /* the host again */
}

Test(schedule, neighbours_step_one_parameter)
{
    Sched nb[8];
    Sched def = { SCHED_QB_DEFAULT, SCHED_BK_DEFAULT, 4, SCHED_TH_DEFAULT };   /* AVX-512's rows, on any host */
    int n = tune_neighbours(OP_MATMUL, def, nb, 8);
    cr_assert_eq(n, 3);   /* rb one less, one thread, rb one more */
    cr_expect(nb[0].rb == 3 && nb[1].th == 1 && nb[1].rb == 4 && nb[2].rb == 5);
    n = tune_neighbours(OP_ATTENTION, def, nb, 8);
    cr_assert_eq(n, 7);
    for (int i = 0; i < n; i++) {
        cr_expect(sched_valid(OP_ATTENTION, nb[i]));
        int changed = (nb[i].qb != def.qb) + (nb[i].bk != def.bk) + (nb[i].rb != def.rb) + (nb[i].th != def.th);
        cr_expect_eq(changed, 1);
    }
    n = tune_neighbours(OP_MATMUL, (Sched){ 16, 64, 1, 1 }, nb, 8);   /* at the edges */
    cr_expect(n == 2 && nb[0].rb == 2 && nb[1].th == 2);
    cr_expect(!sched_valid(OP_MATMUL, (Sched){ 16, 64, 7, 2 }));
    cr_expect(!sched_valid(OP_MATMUL, (Sched){ 16, 64, 4, 3 }));
    cr_expect(!sched_valid(OP_ATTENTION, (Sched){ 12, 64, 4, 2 }));
    cr_expect(!sched_valid(OP_ADD, def));
}

/* models/statquest.vam, compiled into a (its text kept there too: the
 * model may point into it). */
static Model *model_at(Arena *a, const char *path)
{
    char *file = read_all(path, NULL), *diags;
    cr_assert(file);
    char *text = arena_strdup(a, file);
    free(file);
    int errors;
    Model *m = compile_capture(a, path, text, &diags, &errors);
    cr_assert(m, "%s", diags);
    free(diags);
    return m;
}

static Model *statquest(Arena *a) { return model_at(a, "models/statquest.vam"); }

/* A tiny tuning run on statquest: every kernel measured, none slower
 * than its default, the records applied by sched_apply, and none from
 * another machine. */
Test(tune, statquest_tunes_and_applies, .timeout = 120)
{
    Arena a = { 0 };
    Model *m = statquest(&a);
    const char *path = temp_path("statquest.db");
    TuneOptions o = { .budget = 3, .db = path };
    TuneResult *r;
    int n;
    char err[512];
    cr_assert_eq(tune_model(m, &o, &r, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 6);
    for (int i = 0; i < n; i++) {
        cr_expect(r[i].done, "%s was not measured", r[i].sig);
        cr_expect(r[i].tuned_us <= r[i].default_us, "%s", r[i].sig);
        cr_expect_eq(r[i].wrong, 0, "%s: a candidate gave wrong results", r[i].sig);
    }
    TuneDB db;
    cr_assert_eq(tunedb_load(path, &db, stderr, err, sizeof err), 0, "%s", err);
    cr_expect_eq(db.n, 6);
    int kernels;
    cr_expect_eq(sched_apply(m, &db, &kernels), 6);
    cr_expect_eq(kernels, 6);
    /* the chosen schedules are on the nodes */
    for (int i = 0; i < n; i++)
        for (int k = 0; k < m->enc.n; k++) {
            char sig[TUNE_SIG_MAX];
            if (!sched_tunable(m->enc.nodes[k].op))
                continue;
            sched_signature(m, &m->enc, &m->enc.nodes[k], sig, sizeof sig);
            if (!strcmp(sig, r[i].sig))
                cr_expect(m->enc.nodes[k].sched.rb == r[i].best.rb, "%s", sig);
        }
    /* records of another machine are not used */
    for (int i = 0; i < db.n; i++)
        db.r[i].key = tune_key(db.r[i].sig, "cpu=other features= llvm=0 vamos=0");
    cr_expect_eq(sched_apply(m, &db, &kernels), 0);
    for (int k = 0; k < m->enc.n; k++)
        cr_expect_eq(m->enc.nodes[k].sched.rb, 0);
    tunedb_free(&db);
    free(r);
    arena_free(&a);
}

/* vamos tune --train: the training step's products of statquest (as
 * vamos train compiles it) are measured, only their rows vary, none is
 * wrong or slower than its default, and the records reach the training
 * graph (train_graph_new_tuned) node by node. */
Test(tune, training_kernels_tune_and_apply, .timeout = 300)
{
    Arena a = { 0 };
    Diag d;
    diag_init(&d, stderr);
    Model *m = compile_file(&a, &d, "models/statquest.vam", "train");
    cr_assert(m);
    const char *path = temp_path("train.db");
    TuneOptions o = { .budget = 10, .db = path, .train = true, .batch = 8 };
    TuneResult *r;
    int n;
    char err[512];
    cr_assert_eq(tune_model(m, &o, &r, &n, err, sizeof err), 0, "%s", err);
    cr_assert(n >= 3, "%d training kernels", n);
    int done = 0;
    for (int i = 0; i < n; i++) {
        done += r[i].done;
        cr_expect(strncmp(r[i].sig, "attention", 9), "%s: training attention is not fused", r[i].sig);
        cr_expect(!r[i].done || r[i].tuned_us <= r[i].default_us, "%s", r[i].sig);
        cr_expect_eq(r[i].wrong, 0, "%s: a candidate gave wrong results", r[i].sig);
        cr_expect(!r[i].done || r[i].best.th == r[i].def.th, "%s: th is not the training tuner's", r[i].sig);
    }
    cr_assert(done > 0);
    TuneDB db;
    cr_assert_eq(tunedb_load(path, &db, stderr, err, sizeof err), 0, "%s", err);
    cr_expect_eq(db.n, done);
    int tuned, kernels;
    TrainGraph *t = train_graph_new_tuned(&a, m, 0.1f, true, &db, &tuned, &kernels, err, sizeof err);
    cr_assert(t, "%s", err);
    cr_expect_eq(kernels, n);
    cr_expect_eq(tuned, done);
    const Graph *g = train_graph_graph(t);
    int checked = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; r[i].done && k < g->n; k++) {
            char sig[TUNE_SIG_MAX];
            if (!sched_tunable(g->nodes[k].op))
                continue;
            sched_signature(m, g, &g->nodes[k], sig, sizeof sig);
            if (!strcmp(sig, r[i].sig)) {
                cr_expect_eq(g->nodes[k].sched.rb, r[i].best.rb, "%s", sig);
                checked++;
            }
        }
    cr_expect(checked >= done);
    train_graph_free(t);
    tunedb_free(&db);
    free(r);
    arena_free(&a);
}

static bool all_but_default(Sched def, Sched s)
{
    return s.qb != def.qb || s.bk != def.bk || s.rb != def.rb || s.th != def.th;
}

/* A candidate whose result is wrong, even by 1e-4 of the largest value,
 * is discarded and never chosen: with every schedule but the default
 * made wrong, the search over statquest tries each default's
 * neighbours, counts them all wrong, and keeps the defaults. */
Test(tune, a_wrong_candidate_is_never_chosen, .timeout = 300)
{
    Arena a = { 0 };
    Model *m = statquest(&a);
    TuneOptions o = { .budget = 120, .disturb = all_but_default };   /* it stops when no neighbour wins */
    TuneResult *r;
    int n;
    char err[512];
    cr_assert_eq(tune_model(m, &o, &r, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 6);
    for (int i = 0; i < n; i++) {
        Sched nb[8];
        Op op = !strncmp(r[i].sig, "attention", 9) ? OP_ATTENTION : OP_LINEAR;
        cr_expect_eq(r[i].tried, 1 + tune_neighbours(op, r[i].def, nb, 8), "%s", r[i].sig);
        cr_expect_eq(r[i].wrong, r[i].tried - 1, "%s", r[i].sig);
        cr_expect(!all_but_default(r[i].def, r[i].best), "%s: a wrong schedule was chosen", r[i].sig);
    }
    free(r);
    arena_free(&a);
}

/* The int8 builds' kernels tune too (vamos tune --quantize int8, int8w):
 * en-es with int8 weights, and with int8 activations too, its tied output
 * layer read transposed as well; every product is measured, its
 * candidates checked against the reference on the weights int8 stands
 * for, the activations rounded as the kernels round them (none is
 * wrong), and its records are its own (" int8", or " int8 a8" with 8-bit
 * activations, at the signature's end: a record tuned for the int8
 * weights' kernel before int8 activations came still names it alone). */
Test(tune, int8_kernels_tune, .timeout = 300)
{
    for (int a8 = 0; a8 < 2; a8++) {
        Arena a = { 0 };
        Model *m = model_at(&a, "models/en-es.vam");
        cr_assert_gt(pass_quantize(m, a8 ? 8 : 0), 0);
        TuneOptions o = { .budget = 120 };   /* the search ends when no neighbour wins: ~15 s, more under ASan */
        TuneResult *r;
        int n, int8 = 0;
        char err[512];
        cr_assert_eq(tune_model(m, &o, &r, &n, err, sizeof err), 0, "%s", err);
        const char *mark = a8 ? " int8 a8" : " int8";   /* the signature ends with it */
        bool bt = false;
        for (int i = 0; i < n; i++) {
            cr_expect(r[i].done, "%s was not measured", r[i].sig);
            cr_expect_eq(r[i].wrong, 0, "%s: a candidate gave wrong results", r[i].sig);
            size_t len = strlen(r[i].sig), ml = strlen(mark);
            bool is = len >= ml && !strcmp(r[i].sig + len - ml, mark);
            int8 += is;
            bt |= is && strstr(r[i].sig, " bt ") != NULL;
        }
        cr_expect_geq(int8, 6, "%d %s kernels", int8, mark + 1);
        cr_expect(bt, "the tied output layer's int8 product was tuned");
        free(r);
        arena_free(&a);
    }
}
