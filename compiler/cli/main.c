/* main.c - the `vamos` driver. Each command is the pipeline of DESIGN.md
 * cut at a different place:
 *
 *   check   parse -> resolve -> elaborate -> passes       (diagnostics only)
 *   graph   ... and print the graph (text or Graphviz DOT)
 *   init    ... and write initial weights
 *   run     ... bind weights, tokenize, interpret, greedy-decode, detokenize
 *   build   ... compile to native code and link a translator
 *   tune    ... search the kernels' schedules, record them (tune.c)
 *
 * Exit codes: 0 success, 1 errors in the input, 2 usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "commands.h"
#include "compile.h"
#include "aot.h"
#include "jit.h"
#include "passes.h"
#include "schedule.h"
#include "tune.h"
#include "tunedb.h"
#include "vamos/parallel.h"
#include <time.h>

#include "vamos/version.h"

typedef struct Opts {
    const char *model, *weights, *out, *dump, *target, *after;
    const char *cpu;    /* build --cpu: "native" or an x86-64 level */
    const char *quantize;   /* run, build --quantize: NULL, "int8" */
    const char *sentence;
    unsigned long long seed;
    int max_len, threads;
    bool dot, interp, fused;
    const char *db;        /* tuning database (--db), NULL: the default */
    double budget;         /* tune --budget */
    bool show, no_tune, exhaustive;
} Opts;

static const char *usage_main =
    "usage: vamos <command> [options]\n"
    "\n"
    "Vamos compiles transformer translation models written in the Vamos language.\n"
    "\n"
    "commands:\n"
    "  check MODEL.vam              check a model; print diagnostics\n"
    "  graph MODEL.vam [--dot]      print the model's graph (text or Graphviz DOT)\n"
    "  init  MODEL.vam -o W.safetensors [--seed N]\n"
    "                               write deterministic initial weights\n"
    "  run   MODEL.vam -w W.safetensors \"SENTENCE\"\n"
    "                               translate a sentence (JIT-compiled native code)\n"
    "  build MODEL.vam -w W.safetensors -o TRANSLATOR\n"
    "                               build a standalone translator executable\n"
    "  tune  MODEL.vam [--budget SECONDS]\n"
    "                               tune the model's kernels for this machine\n"
    "  vocab --data TRAIN.tsv -o PREFIX\n"
    "                               learn subword vocabularies from a corpus\n"
    "  train MODEL.vam --data TRAIN.tsv --dev DEV.tsv -o W.safetensors\n"
    "                               train a model's weights\n"
    "  eval  (TRANSLATOR | MODEL.vam -w W.safetensors) DATA.tsv...\n"
    "                               score translations (BLEU, chrF)\n"
    "  average -o OUT.safetensors W1.safetensors W2.safetensors...\n"
    "                               average weight files (checkpoint averaging)\n"
    "\n"
    "`vamos COMMAND --help` describes a command. `vamos --version` prints the version.\n";

static const char *usage_check =
    "usage: vamos check MODEL.vam\n\n"
    "Parse, resolve, elaborate and shape-check a model. Prints diagnostics as\n"
    "file:line:col: error: message. Exit 0 if the model is valid, 1 if not.\n";

static const char *usage_graph =
    "usage: vamos graph MODEL.vam [--dot] [--after PASS | --fused]\n\n"
    "Print the encoder and decoder graphs, one node a line (%%id = op inputs : type),\n"
    "or with --dot as Graphviz (render: vamos graph m.vam --dot | dot -Tsvg > m.svg).\n"
    "By default the graphs are shown as written, after dead code elimination;\n"
    "--after elab|fold|dce shows them after an earlier pass. --fused shows what is\n"
    "compiled: every pass, fused attention, packed weights, and the derived\n"
    "per-sentence and one-word decoder graphs; --dot draws fused groups as boxes.\n";

static const char *usage_init =
    "usage: vamos init MODEL.vam -o W.safetensors [--seed N]\n\n"
    "Write initial weights: Xavier/Glorot uniform for matrices, zeros for biases,\n"
    "ones for norm gains, named by their parameter paths. Deterministic for a seed\n"
    "(default 1).\n";

static const char *usage_run =
    "usage: vamos run MODEL.vam -w W.safetensors \"SENTENCE\" [options]\n\n"
    "Translate SENTENCE (greedy decoding) with native code compiled by LLVM's JIT.\n"
    "options:\n"
    "  -w, --weights FILE   the model's weights (safetensors)\n"
    "  --interp             run the reference interpreter instead of the JIT\n"
    "  --max-len N          stop after N target words (default: 2 * source + 10)\n"
    "  --threads N          run kernels on N threads (default: one per CPU)\n"
    "  --dump FILE          also write the encoder output and the decoder output at\n"
    "                       every target position to FILE (safetensors: tensors\n"
    "                       src, tgt, encoder.output, decoder.output)\n"
    "  --target \"WORDS\"     with --dump: feed these target words to the decoder\n"
    "                       instead of the greedy translation\n"
    "  --db FILE            the tuning database (default: see vamos tune --help)\n"
    "  --no-tune            ignore the tuning database: default schedules\n"
    "  --quantize int8      run the matmul and linear weights as int8, one scale per\n"
    "                       output column (as vamos build --quantize int8 does)\n";

static const char *usage_build =
    "usage: vamos build MODEL.vam -w W.safetensors -o TRANSLATOR\n\n"
    "Compile the model to native code and link it, with its weights and vocabularies,\n"
    "into one executable that needs only libc and libm: `TRANSLATOR \"Let's go\"`, or\n"
    "one sentence per line on standard input (TRANSLATOR --help). Uses the system C\n"
    "compiler (cc, or $CC) to link. The kernels get the schedules `vamos tune` stored\n"
    "for this machine, and the translator carries them.\n"
    "options:\n"
    "  --db FILE            the tuning database (default: see vamos tune --help)\n"
    "  --no-tune            ignore the tuning database: default schedules\n"
    "  --quantize int8      store the matmul and linear weights (the output layer's\n"
    "                       too) as int8 with one scale per output column: a quarter\n"
    "                       of the bytes; embeddings, norms and biases stay f32. The\n"
    "                       kernels widen int8 to f32 and add in f32: nothing saturates\n"
    "  --cpu CPU            the CPUs the translator runs on: native (default: this\n"
    "                       machine's, every feature it has), or an x86-64 level,\n"
    "                       x86-64-v3 (AVX2 and FMA: most machines since 2015),\n"
    "                       x86-64-v2 or x86-64 (any); slower the lower it is. A\n"
    "                       translator started on a CPU it cannot run on says so\n";

static const char *usage_tune =
    "usage: vamos tune MODEL.vam [-w W.safetensors] [--budget SECONDS] [--db FILE]\n"
    "       vamos tune --show [--db FILE]\n\n"
    "Search the schedules (register tile rows; fused attention's query and key\n"
    "blocks; one thread or the pool's) of the model's matmul, linear and attention\n"
    "kernels on this machine, each compiled per candidate, checked against the\n"
    "reference interpreter (a wrong candidate is never chosen) and timed on the\n"
    "model's shapes (batch 1, sequence lengths 16 and 64; weights out of cache, as\n"
    "in the model). Ends with a table of each kernel's default and\n"
    "tuned time, and records the results, which `vamos build` and `vamos run` use.\n"
    "Weights are not needed (random inputs); -w only checks them.\n"
    "options:\n"
    "  --budget SECONDS     time for the whole model (default 60)\n"
    "  --db FILE            the tuning database (default:\n"
    "                       $XDG_CACHE_HOME/vamos/tune.db or ~/.cache/vamos/tune.db)\n"
    "  --show               list the records of the database and exit\n"
    "  --exhaustive         try every schedule of every kernel, ignoring the budget\n"
    "                       (slow: for measuring how close the search comes)\n"
    "  --quantize int8      tune the kernels of the int8 build (vamos build --quantize\n"
    "                       int8): its own records\n"
    "A record is keyed by the kernel and by this machine's CPU model and features,\n"
    "the LLVM version and the Vamos version: another machine or compiler never\n"
    "reuses it.\n";

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "vamos: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

/* Parse a command's options; returns -1 (usage) or 0. */
/* takes: the option letters (as in longs below) the command accepts; any
 * other is a usage error, not an option silently ignored. sentence: the
 * command takes a second argument (run's sentence). */
static int parse_opts(int argc, char **argv, const char *usage, const char *takes, bool sentence, Opts *o,
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
        { "quantize", required_argument, 0, 'q' }, { 0, 0, 0, 0 },
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
        case 'M': {   /* range-checked as a long: 4294967297 is not 1 */
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 1 || v > 100000)
                return usage_error(usage, "--max-len needs an integer in 1..100000, not '%s'", optarg), -1;
            o->max_len = (int)v;
            break;
        }
        case 'j': {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 1 || v > VAMOS_MAX_THREADS)
                return usage_error(usage, "--threads needs an integer in 1..64, not '%s'", optarg), -1;
            o->threads = (int)v;
            vamos_set_threads(o->threads);
            break;
        }
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
static const char *db_path(const Opts *o, char *buf, size_t len)
{
    return o->db ? o->db : tunedb_default_path(buf, len);
}

/* Give m's kernels their tuned schedules (build, run) and say how many. */
static int apply_tuning(Model *m, const Opts *o)
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

static Model *front_end(Arena *a, Diag *d, const Opts *o)
{
    diag_init(d, stderr);
    Model *m = compile_file(a, d, o->model, o->after);
    if (!m && d->errors)
        fprintf(stderr, "%d error%s\n", d->errors, d->errors == 1 ? "" : "s");
    return m;
}

/* The model of o->model with the weights of o->weights bound to it. */
static Model *load_with_weights(Arena *a, const Opts *o, Bound *b)
{
    Diag d;
    Model *m = front_end(a, &d, o);
    if (m && o->quantize)
        pass_quantize(m);
    return m && bind_weights(m, o->weights, b, stderr) == 0 ? m : NULL;
}

/* Bytes of weights one decoder step reads: every weight of the step
 * graph, except tables it only gathers rows of. */
static int64_t step_weight_bytes(const Model *m)
{
    const Graph *g = &m->step;
    bool *whole = calloc((size_t)g->n + 1, 1);
    int64_t bytes = 0;
    for (int j = 0; whole && j < g->n; j++)
        for (int k = 0; k < op_info[g->nodes[j].op].arity; k++)
            whole[g->nodes[j].in[k]] |= g->nodes[j].op != OP_GATHER;
    for (int i = 0; whole && i < g->n; i++)
        if (g->nodes[i].op == OP_PARAM && whole[i])
            bytes += shape_numel_const(&g->nodes[i].shape) * 4;
    free(whole);
    return bytes;
}

static int cmd_check(Arena *a, const Opts *o)
{
    Diag d;
    Model *m = front_end(a, &d, o);
    if (!m)
        return 1;
    int64_t elems = 0;
    for (int i = 0; i < m->nparams; i++)
        elems += shape_numel_const(&m->params[i].shape);
    printf("%s: model '%s' is valid: %d weights (%lld parameters), encoder %d nodes, decoder %d nodes\n",
           o->model, m->name, m->nparams, (long long)elems, m->enc.n, m->dec.n);
    if (m->no_step)
        printf("incremental decoding: not derived (%s); decoding re-runs the decoder per word\n", m->no_step);
    else
        printf("incremental decoding: per-sentence graph %d nodes, one-word step %d nodes, %d states; "
               "a step reads %.1f MB of weights\n",
               m->prep.n, m->step.n, m->nstates, (double)step_weight_bytes(m) / 1e6);
    return 0;
}

static int cmd_graph(Arena *a, const Opts *o)
{
    Diag d;
    if (o->after && strcmp(o->after, "elab") && strcmp(o->after, "fold") && strcmp(o->after, "dce"))
        return usage_error(usage_graph, "--after takes elab, fold or dce, not '%s'", o->after);
    if (o->after && o->fused)
        return usage_error(usage_graph, "%s", "--after and --fused do not go together");
    Opts shown = *o;
    if (!o->fused && !o->after)
        shown.after = "dce";
    Model *m = front_end(a, &d, &shown);
    if (!m)
        return 1;
    if (o->dot) {
        graph_dump_dot(stdout, m, a, o->fused);
        return 0;
    }
    printf("model %s\nweights:\n", m->name);
    for (int i = 0; i < m->nparams; i++)
        printf("  %s %s%s\n", m->params[i].name, shape_str(a, m, &m->params[i].shape),
               m->params[i].packed     ? " (packed)"
               : m->params[i].packed_t ? " (and its transpose, packed)"
                                       : "");
    graph_dump_text(stdout, m, &m->enc, a);
    graph_dump_text(stdout, m, &m->dec, a);
    if (o->fused && m->step.n > 0) {
        graph_dump_text(stdout, m, &m->prep, a);
        graph_dump_text(stdout, m, &m->step, a);
    }
    return 0;
}

static int cmd_init(Arena *a, const Opts *o)
{
    if (!o->out)
        return usage_error(usage_init, "%s", "missing -o W.safetensors");
    Diag d;
    Model *m = front_end(a, &d, o);
    if (!m)
        return 1;
    char err[512];
    if (init_weights(m, o->out, o->seed, err, sizeof err)) {
        fprintf(stderr, "vamos: error: %s\n", err);
        return 1;
    }
    fprintf(stderr, "wrote %d weights of model '%s' to %s (seed %llu)\n", m->nparams, m->name, o->out, o->seed);
    return 0;
}

/* Words of ids, space-separated. */
static void print_words(FILE *out, const Vocab *v, const int32_t *ids, int n)
{
    char *s = detokenize_ids(v, ids, n);
    fprintf(out, "%s\n", s ? s : "");
    free(s);
}

/* --dump: encoder output and decoder output for the given target ids. */
static int dump(const Engine *eng, const Model *m, float *const *params, const char *path, const int32_t *src, int n,
                const int32_t *tgt_words, int t)
{
    char err[512];
    int32_t *tgt = malloc(sizeof(int32_t) * (size_t)(t + 1));
    if (!tgt)
        return 1;
    tgt[0] = m->tgt->bos >= 0 ? m->tgt->bos : m->tgt->eos;
    memcpy(tgt + 1, tgt_words, sizeof(int32_t) * (size_t)t);
    int32_t sl = n, tl = t + 1;
    Tensor enc = { 0 }, dec = { 0 };
    int rc = run_batch(eng, m, params, 1, src, &sl, n, tgt, &tl, t + 1, &enc, &dec, err, sizeof err);
    if (rc == 0) {
        vamos_tensor ts[4] = {
            { .name = "src", .dtype = VAMOS_I32, .rank = 2, .shape = { 1, n }, .data = src, .nbytes = 4 * (size_t)n },
            { .name = "tgt", .dtype = VAMOS_I32, .rank = 2, .shape = { 1, t + 1 }, .data = tgt, .nbytes = 4 * (size_t)(t + 1) },
            { .name = "encoder.output", .dtype = VAMOS_F32, .rank = enc.shape.rank, .data = enc.data,
              .nbytes = 4 * (size_t)rt_numel(&enc.shape) },
            { .name = "decoder.output", .dtype = VAMOS_F32, .rank = dec.shape.rank, .data = dec.data,
              .nbytes = 4 * (size_t)rt_numel(&dec.shape) },
        };
        memcpy(ts[2].shape, enc.shape.dim, sizeof enc.shape.dim);
        memcpy(ts[3].shape, dec.shape.dim, sizeof dec.shape.dim);
        const char *meta[] = { "vamos.model", m->name };
        rc = vamos_weights_save(path, ts, 4, meta, 1, err, sizeof err);
    }
    if (rc)
        fprintf(stderr, "vamos: error: %s\n", err);
    tensor_free(&enc);
    tensor_free(&dec);
    free(tgt);
    return rc ? 1 : 0;
}

static int cmd_run(Arena *a, const Opts *o)
{
    if (!o->weights)
        return usage_error(usage_run, "%s", "missing -w W.safetensors");
    if (!o->sentence)
        return usage_error(usage_run, "%s", "missing the sentence to translate");
    if (o->target && !o->dump)
        return usage_error(usage_run, "%s", "--target needs --dump");
    if (o->quantize && strcmp(o->quantize, "int8"))
        return usage_error(usage_run, "--quantize takes int8, not '%s'", o->quantize);
    if (o->quantize && o->interp)
        return usage_error(usage_run, "%s", "--quantize int8 runs compiled kernels; the interpreter has none");
    Bound b;
    Model *m = load_with_weights(a, o, &b);
    if (!m)
        return 1;
    if (!o->interp && apply_tuning(m, o)) {
        bound_free(&b);
        return 1;
    }
    char err[512];
    Engine eng = { 0 };
    if (!o->interp && !(eng.jit = jit_compile(m, err, sizeof err))) {
        fprintf(stderr, "vamos: error: %s\n", err);
        bound_free(&b);
        return 1;
    }
    enum { MAX_WORDS = 4096 };
    int32_t *src = arena_alloc(a, sizeof(int32_t) * MAX_WORDS), *out = arena_alloc(a, sizeof(int32_t) * MAX_WORDS);
    int rc = 0, n = tokenize(m->src, o->sentence, src, MAX_WORDS, err, sizeof err), t = 0;
    if (n < 0) {
        fprintf(stderr, "vamos: error: %s\n", err);
        rc = 1;
    } else if (n > 0) {
        int max_len = o->max_len ? o->max_len : 2 * n + 10;
        if (max_len > MAX_WORDS)
            max_len = MAX_WORDS;
        if (o->target)
            t = tokenize(m->tgt, o->target, out, MAX_WORDS, err, sizeof err);
        else
            t = greedy_decode(&eng, m, b.params, src, n, max_len, out, err, sizeof err);
        if (t < 0) {
            fprintf(stderr, "vamos: error: %s\n", err);
            rc = 1;
        }
    }
    if (rc == 0) {
        print_words(stdout, m->tgt, out, t);
        if (o->dump && n > 0)
            rc = dump(&eng, m, b.params, o->dump, src, n, out, t);
    }
    jit_free(eng.jit);
    bound_free(&b);
    return rc;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmd_build(Arena *a, const Opts *o)
{
    if (!o->weights)
        return usage_error(usage_build, "%s", "missing -w W.safetensors");
    if (!o->out)
        return usage_error(usage_build, "%s", "missing -o TRANSLATOR");
    bool cpu_ok = !o->cpu || !strcmp(o->cpu, "native");
    for (int k = 0; cg_cpu_levels[k] && !cpu_ok; k++)
        cpu_ok = !strcmp(o->cpu, cg_cpu_levels[k]);
    if (!cpu_ok)
        return usage_error(usage_build, "--cpu takes native, x86-64, x86-64-v2, x86-64-v3 or x86-64-v4, not '%s'",
                           o->cpu);
    if (o->quantize && strcmp(o->quantize, "int8"))
        return usage_error(usage_build, "--quantize takes int8, not '%s'", o->quantize);
    double t0 = now_s();
    Bound b;
    Model *m = load_with_weights(a, o, &b);
    if (!m)
        return 1;
    if (apply_tuning(m, o)) {
        bound_free(&b);
        return 1;
    }
    char err[512];
    int rc = aot_build(m, &b, o->out, o->cpu, err, sizeof err);
    bound_free(&b);
    if (rc) {
        fprintf(stderr, "vamos: error: %s\n", err);
        return 1;
    }
    fprintf(stderr, "built %s from model '%s' in %.2f s\n", o->out, m->name, now_s() - t0);
    return 0;
}

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

static int cmd_tune(Arena *a, const Opts *o)
{
    if (o->show)
        return show_db(o);
    Diag d;
    Bound b;
    if (o->quantize && strcmp(o->quantize, "int8"))
        return usage_error(usage_tune, "--quantize takes int8, not '%s'", o->quantize);
    Model *m = o->weights ? load_with_weights(a, o, &b) : front_end(a, &d, o);
    if (!m)
        return 1;
    if (!o->weights && o->quantize)
        pass_quantize(m);
    if (o->weights)
        bound_free(&b);
    char buf[4096], err[512];
    TuneOptions to = { .budget = o->budget > 0 ? o->budget : 60, .db = db_path(o, buf, sizeof buf),
                       .progress = stderr, .exhaustive = o->exhaustive };
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

/* A command's exit status, once what it printed has reached standard
 * output: a full disk or a closed pipe is an error, not exit 0. */
static int written(int rc)
{
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "vamos: error: cannot write to standard output: %s\n", strerror(errno));
        return rc ? rc : 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    /* each command's options, as parse_opts's letters */
    static const struct {
        const char *name;
        int (*fn)(Arena *, const Opts *);
        const char **usage;
        const char *takes;
        bool sentence;
    } cmds[] = {
        { "check", cmd_check, &usage_check, "", false },
        { "graph", cmd_graph, &usage_graph, "dAF", false },
        { "init", cmd_init, &usage_init, "os", false },
        { "run", cmd_run, &usage_run, "wIMjDTBNq", true },
        { "build", cmd_build, &usage_build, "woBNCq", false },
        { "tune", cmd_tune, &usage_tune, "wbBSNXqj", false },
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "vocab"))
        return written(cmd_vocab_main(argc - 1, argv + 1));
    if (!strcmp(argv[1], "train"))
        return written(cmd_train_main(argc - 1, argv + 1));
    if (!strcmp(argv[1], "eval"))
        return written(cmd_eval_main(argc - 1, argv + 1));
    if (!strcmp(argv[1], "average"))
        return written(cmd_average_main(argc - 1, argv + 1));
    if (!strcmp(argv[1], "--version")) {
        printf("vamos %s\n", VAMOS_VERSION);
        return written(0);
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name))
            continue;
        Opts o = { .seed = 1 };
        int help;
        if (parse_opts(argc - 1, argv + 1, *cmds[i].usage, cmds[i].takes, cmds[i].sentence, &o, &help))
            return 2;
        if (help) {
            fputs(*cmds[i].usage, stdout);
            return written(0);
        }
        Arena a = { 0 };
        int rc = cmds[i].fn(&a, &o);
        arena_free(&a);
        return written(rc);
    }
    fprintf(stderr, "vamos: unknown command '%s'\n\n%s", argv[1], usage_main);
    return 2;
}
