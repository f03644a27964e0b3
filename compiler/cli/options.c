/* options.c - the commands' shared option parser and first steps (cli.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "codegen.h"
#include "kernels.h"
#include "passes.h"
#include "schedule.h"
#include "tunedb.h"
#include "vamos/parallel.h"

int usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "vamos: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

/* arg as an integer in [lo, hi] (range-checked as a long: 4294967297 is
 * not 1), or false. */
static bool int_in(const char *arg, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || *end || end == arg || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* (cli.h) The options of every command, by letter; a command's `takes`
 * names its own. */
int parse_opts(int argc, char **argv, const char *usage, const char *takes, bool sentence, Opts *o,
                      int *help)
{
    static const struct option longs[] = {
        { "help", no_argument, 0, 'h' }, { "dot", no_argument, 0, 'd' },
        { "weights", required_argument, 0, 'w' }, { "output", required_argument, 0, 'o' },
        { "seed", required_argument, 0, 's' }, { "dump", required_argument, 0, 'D' },
        { "target", required_argument, 0, 'T' }, { "max-len", required_argument, 0, 'M' },
        { "after", required_argument, 0, 'A' }, { "interp", no_argument, 0, 'I' },
        { "threads", required_argument, 0, 'j' }, { "fused", no_argument, 0, 'F' },
        { "db", required_argument, 0, 'B' }, { "budget", required_argument, 0, 'b' },
        { "show", no_argument, 0, 'S' }, { "no-tune", no_argument, 0, 'N' },
        { "exhaustive", no_argument, 0, 'X' }, { "cpu", required_argument, 0, 'C' },
        { "quantize", required_argument, 0, 'q' }, { "lib", no_argument, 0, 'L' },
        { "prefix", required_argument, 0, 'P' }, { "langs", required_argument, 0, 'g' },
        { "batch", required_argument, 0, 'R' }, { "train", no_argument, 0, 'Y' }, { 0, 0, 0, 0 },
    };
    *help = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hw:o:", longs, NULL)) != -1) {
        char *end;
        if (c != ':' && c != '?' && c != 'h' && !strchr(takes, c)) {
            const char *name = "?";
            for (int k = 0; longs[k].name; k++)
                if (longs[k].val == c)
                    name = longs[k].name;
            return usage_error(usage, "this command does not take --%s", name), -1;
        }
        switch (c) {
        case 'h': *help = 1; return 0;
        case 'd': o->dot = true; break;
        case 'w': o->weights = optarg; break;
        case 'o': o->out = optarg; break;
        case 'D': o->dump = optarg; break;
        case 'T': o->target = optarg; break;
        case 'A': o->after = optarg; break;
        case 'I': o->interp = true; break;
        case 'F': o->fused = true; break;
        case 'B': o->db = optarg; break;
        case 'S': o->show = true; break;
        case 'N': o->no_tune = true; break;
        case 'X': o->exhaustive = true; break;
        case 'C': o->cpu = optarg; break;
        case 'q': o->quantize = optarg; break;
        case 'L': o->lib = true; break;
        case 'P': o->prefix = optarg; break;
        case 'g': o->langs = optarg; break;
        case 'Y': o->train = true; break;
        case 'b':
            errno = 0;
            o->budget = strtod(optarg, &end);
            if (errno || *end || !*optarg || !(o->budget > 0 && o->budget <= 86400))
                return usage_error(usage, "--budget needs a number of seconds in (0, 86400], not '%s'", optarg), -1;
            break;
        case 's':
            errno = 0;
            o->seed = strtoull(optarg, &end, 10);   /* strtoull takes "-1" as 2^64 - 1: refuse a sign */
            if (errno || *end || !*optarg || optarg[0] == '-' || optarg[0] == '+')
                return usage_error(usage, "--seed needs a non-negative integer, not '%s'", optarg), -1;
            break;
        case 'M':
            if (!int_in(optarg, 1, 100000, &o->max_len))
                return usage_error(usage, "--max-len needs an integer in 1..100000, not '%s'", optarg), -1;
            break;
        case 'R':
            if (!int_in(optarg, 1, 256, &o->batch))
                return usage_error(usage, "--batch needs an integer in 1..256, not '%s'", optarg), -1;
            break;
        case 'j':
            if (!int_in(optarg, 1, VAMOS_MAX_THREADS, &o->threads))
                return usage_error(usage, "--threads needs an integer in 1..64, not '%s'", optarg), -1;
            vamos_set_threads(o->threads);
            break;
        case ':':
            return usage_error(usage, "option '%s' needs a value", argv[optind - 1]), -1;
        default: {   /* an unknown short option (optopt) may sit in a cluster: name it, not its neighbour */
            char opt[3] = { '-', (char)optopt, 0 };
            const char *what = optopt ? opt : argv[optind - 1];
            fprintf(stderr, "vamos: unknown option '%s'%s\n\n%s", what,
                    optopt ? " (a sentence that begins with '-' goes after --)" : "", usage);
            return -1;
        }
        }
    }
    if (optind < argc)
        o->model = argv[optind++];
    if (optind < argc && sentence)
        o->sentence = argv[optind++];
    if (optind < argc)
        return usage_error(usage, "unexpected argument '%s'", argv[optind]), -1;
    if (!o->model && !o->show)
        return usage_error(usage, "%s", "missing MODEL.vam"), -1;
    return 0;
}

/* The tuning database's path: --db, else the default (NULL: none). */
const char *db_path(const Opts *o, char *buf, size_t len)
{
    return o->db ? o->db : tunedb_default_path(buf, len);
}

/* Give m's kernels their tuned schedules (build, run) and say how many. */
int apply_tuning(Model *m, const Opts *o)
{
    int kernels;
    if (o->no_tune) {
        sched_apply(m, NULL, &kernels);
        fprintf(stderr, "tuning: ignored (--no-tune); %d kernels use default schedules\n", kernels);
        return 0;
    }
    char buf[4096], err[512];
    const char *path = db_path(o, buf, sizeof buf);
    TuneDB db = { 0 };
    if (path && tunedb_load(path, &db, stderr, err, sizeof err)) {
        fprintf(stderr, "vamos: error: %s\n", err);
        return -1;
    }
    int tuned = sched_apply(m, &db, &kernels);
    if (tuned > 0)
        fprintf(stderr, "tuning: %d of %d kernels tuned (%s)\n", tuned, kernels, path);
    else
        fprintf(stderr, "tuning: none of %d kernels tuned for this machine (run vamos tune)\n", kernels);
    tunedb_free(&db);
    return 0;
}

bool quantize_ok(const Opts *o)
{
    return !o->quantize || !strcmp(o->quantize, "int8") || !strcmp(o->quantize, "int8w");
}

int quantize_a8(const Opts *o)
{
    if (!o->quantize || strcmp(o->quantize, "int8"))
        return 0;
    const char *force = getenv("VAMOS_INT8_BITS");   /* for developers: 0 (int8w), 7 or 8 on any CPU */
    if (force && *force)
        return atoi(force) == 7 || atoi(force) == 8 ? atoi(force) : 0;
    return cg_int8_bits(o->cpu);
}

Model *front_end(Arena *a, Diag *d, const Opts *o)
{
    diag_init(d, stderr);
    Model *m = compile_file(a, d, o->model, o->after);
    if (!m && d->errors)
        fprintf(stderr, "%d error%s\n", d->errors, d->errors == 1 ? "" : "s");
    return m;
}

/* The model of o->model with the weights of o->weights bound to it. */
Model *load_with_weights(Arena *a, const Opts *o, Bound *b)
{
    Diag d;
    Model *m = front_end(a, &d, o);
    if (m && o->quantize) {
        int bits = quantize_a8(o), n = pass_quantize(m, bits), with = 0;
        for (int i = 0; i < m->nparams; i++)
            with += m->params[i].a8 != 0;
        if (bits && with == n)
            fprintf(stderr, "int8: %d weights and the activations they multiply, %d bits (%s)\n", n, bits,
                    bits == 8 ? "VNNI" : "AVX2 without VNNI: 8 would saturate vpmaddubsw");
        else if (bits)
            fprintf(stderr, "int8: %d weights, the activations of %d of them %d bits; %d with K over %d keep f32 "
                    "activations\n", n, with, bits, n - with, A8_MAX_K);
        else
            fprintf(stderr, "int8: %d weights; activations f32 (%s)\n", n,
                    !strcmp(o->quantize, "int8w") ? "--quantize int8w" : "no AVX2 on the target");
    }
    return m && bind_weights(m, o->weights, b, stderr) == 0 ? m : NULL;
}

int cli_run(int argc, char **argv, const char *usage, const char *takes, bool sentence,
            int (*fn)(Arena *a, const Opts *o))
{
    Opts o = { .seed = 1 };
    int help;
    if (parse_opts(argc, argv, usage, takes, sentence, &o, &help))
        return 2;
    if (help) {
        fputs(usage, stdout);
        return 0;
    }
    Arena a = { 0 };
    int rc = fn(&a, &o);
    arena_free(&a);
    return rc;
}

double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
