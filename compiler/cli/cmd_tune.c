/* cmd_tune.c - `vamos tune`: search the schedules of a model's kernels and record
 * them (tune.c does the search). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "passes.h"
#include "tune.h"
#include "tunedb.h"

static const char usage[] =
    "usage: vamos tune MODEL.vam [-w W.safetensors] [--budget SECONDS] [--batch N] [--train] [--db FILE]\n"
    "       vamos tune --show [--db FILE]\n\n"
    "Search the schedules (register tile rows; fused attention's query and key\n"
    "blocks; one thread or the pool's) of the model's matmul, linear and attention\n"
    "kernels on this machine, each compiled per candidate, checked against the\n"
    "reference interpreter (a wrong candidate is never chosen) and timed on the\n"
    "model's shapes (batch 1 or --batch, sequence lengths 16 and 64; weights out of\n"
    "cache, as in the model). Ends with a table of each kernel's default and\n"
    "tuned time, and records the results, which `vamos build` and `vamos run` use.\n"
    "Weights are not needed (random inputs); -w only checks them.\n"
    "options:\n"
    "  --budget SECONDS     time for the whole model (default 60; 300 with --train)\n"
    "  --batch N            time the kernels at N sentences a batch (1..256, default\n"
    "                       1): a translator reading many lines decodes batches of\n"
    "                       16; a kernel has one record, so the last tuning wins\n"
    "  --train              the kernels of the training step (vamos train uses\n"
    "                       their records), timed at --batch sentences (default 64)\n"
    "  --db FILE            the tuning database (default:\n"
    "                       $XDG_CACHE_HOME/vamos/tune.db or ~/.cache/vamos/tune.db)\n"
    "  --show               list the records of the database and exit\n"
    "  --exhaustive         try every schedule of every kernel, ignoring the budget\n"
    "                       (slow: for measuring how close the search comes)\n"
    "  --quantize int8      tune the kernels of the int8 build (vamos build --quantize\n"
    "                       int8, or int8w): their own records\n"
    "A record is keyed by the kernel and by this machine's CPU model and features,\n"
    "the LLVM version and the Vamos version: another machine or compiler never\n"
    "reuses it.\n";


static int show_db(const Opts *o)
{
    char buf[4096], err[512];
    const char *path = db_path(o, buf, sizeof buf);
    if (!path) {
        fprintf(stderr, "vamos: error: no tuning database: set HOME or XDG_CACHE_HOME, or give --db\n");
        return 1;
    }
    TuneDB db;
    if (tunedb_load(path, &db, stderr, err, sizeof err)) {
        fprintf(stderr, "vamos: error: %s\n", err);
        return 1;
    }
    const char *machine = tune_machine();
    printf("%s: %d record%s%s\n", path, db.n, db.n == 1 ? "" : "s", db.bad ? " (bad lines skipped: see above)" : "");
    if (db.n)
        printf("%-5s %-3s %-3s %-2s %-2s %10s %10s %7s  %s\n", "here", "qb", "bk", "rb", "th", "default us", "tuned us",
               "speedup", "kernel");
    for (int i = 0; i < db.n; i++) {
        const TuneRecord *r = &db.r[i];
        bool here = tune_key(r->sig, machine) == r->key;
        printf("%-5s %-3d %-3d %-2d %-2d %10.1f %10.1f %6.2fx  %s\n", here ? "yes" : "no", r->sched.qb, r->sched.bk,
               r->sched.rb, r->sched.th, r->default_us, r->tuned_us, r->tuned_us > 0 ? r->default_us / r->tuned_us : 0, r->sig);
    }
    printf("('here': recorded on this machine with this LLVM and Vamos)\n");
    tunedb_free(&db);
    return 0;
}

static int tune_cmd(Arena *a, const Opts *o)
{
    if (o->show)
        return show_db(o);
    Diag d;
    Bound b;
    if (!quantize_ok(o))
        return usage_error(usage, "--quantize takes int8 or int8w, not '%s'", o->quantize);
    if (o->quantize && o->train)
        return usage_error(usage, "%s", "--train and --quantize: training's kernels are f32");
    Opts oo = *o;
    if (o->train)
        oo.after = "train";   /* the model as vamos train compiles it */
    o = &oo;
    Model *m = o->weights ? load_with_weights(a, o, &b) : front_end(a, &d, o);
    if (!m)
        return 1;
    if (!o->weights && o->quantize)
        pass_quantize(m, quantize_a8(o));
    if (o->weights)
        bound_free(&b);
    char buf[4096], err[512];
    TuneOptions to = { .budget = o->budget > 0 ? o->budget : o->train ? 300 : 60, .db = db_path(o, buf, sizeof buf),
                       .progress = stderr, .exhaustive = o->exhaustive, .train = o->train,
                       .batch = o->batch ? o->batch : o->train ? 64 : 0 };
    if (!to.db)
        fprintf(stderr, "vamos: warning: no HOME or XDG_CACHE_HOME and no --db: results are not recorded\n");
    TuneResult *r;
    int n;
    double t0 = now_s();
    if (tune_model(m, &to, &r, &n, err, sizeof err)) {
        fprintf(stderr, "vamos: error: %s\n", err);
        return 1;
    }
    printf("%-8s %5s  %10s %10s %7s  %-22s %s\n", "graph", "nodes", "default us", "tuned us", "speedup", "schedule",
           "kernel");
    int done = 0;
    for (int i = 0; i < n; i++) {
        if (!r[i].done) {
            printf("%-8s %5d  %10s %10s %7s  %-22s %s\n", r[i].graph, r[i].nodes, "-", "-", "-", "(no time)", r[i].sig);
            continue;
        }
        done++;
        char sc[32];
        if (!strncmp(r[i].sig, "attention", 9))
            snprintf(sc, sizeof sc, "qb=%d bk=%d rb=%d th=%d", r[i].best.qb, r[i].best.bk, r[i].best.rb, r[i].best.th);
        else
            snprintf(sc, sizeof sc, "rb=%d th=%d", r[i].best.rb, r[i].best.th);
        printf("%-8s %5d  %10.1f %10.1f %6.2fx  %-22s %s\n", r[i].graph, r[i].nodes, r[i].default_us, r[i].tuned_us,
               r[i].default_us / r[i].tuned_us, sc, r[i].sig);
    }
    printf("tuned %d of %d kernels in %.1f s%s%s\n", done, n, now_s() - t0,
           to.db ? "; recorded in " : "", to.db ? to.db : "");
    free(r);
    return 0;
}

int cmd_tune_main(int argc, char **argv)
{
    return cli_run(argc, argv, usage, "wbBSNXqjRY", false, tune_cmd);
}
