/* cli.h - what the commands of compiler/cli/ share: their options, the
 * option parser that holds each command to the options it takes, and the
 * steps several commands begin with (front end, weights, tuning).
 *
 * A command is one file, cmd_<name>.c, with its usage text and an entry
 *     int cmd_<name>_main(int argc, char **argv)   (argv[0] is its name)
 * returning the exit status: 0 ok, 1 failed, 2 bad usage. main.c
 * dispatches through its table of commands. */
#ifndef VAMOS_CLI_H
#define VAMOS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "compile.h"
#include "diag.h"
#include "jit.h"

typedef struct Opts {
    const char *model, *weights, *out, *dump, *target, *after;
    const char *cpu;    /* build --cpu: "native" or an x86-64 level */
    const char *prefix; /* build --prefix: of a library's symbols */
    bool lib;           /* build --lib */
    const char *langs;  /* build --langs SRC:TGT */
    const char *quantize;   /* run, build, tune --quantize: NULL, "int8", "int8w" */
    const char *sentence;
    unsigned long long seed;
    int max_len, threads;
    int batch;             /* tune --batch: sentences the kernels are timed at (0: 1) */
    bool dot, interp, fused;
    const char *db;        /* tuning database (--db), NULL: the default */
    double budget;         /* tune --budget */
    bool show, no_tune, exhaustive;
    bool train;            /* tune --train: the training step's kernels */
} Opts;

/* Print "vamos: <fmt with arg>" and the usage; returns 2. */
int usage_error(const char *usage, const char *fmt, const char *arg);

/* Parse argv (argv[0]: the command) into o. takes: the option letters
 * (parse_opts's table in options.c) the command accepts; any other is a
 * usage error, not an option silently ignored. sentence: the command
 * takes a second argument (run's sentence). Sets *help for --help.
 * Returns 0, or -1 after a usage message. */
int parse_opts(int argc, char **argv, const char *usage, const char *takes, bool sentence, Opts *o, int *help);

/* A command's main for the usual shape: parse (exit 2 on bad usage),
 * --help (print usage, exit 0), then fn(arena, options). */
int cli_run(int argc, char **argv, const char *usage, const char *takes, bool sentence,
            int (*fn)(Arena *a, const Opts *o));

/* The tuning database's path: --db, else the default (NULL: none). */
const char *db_path(const Opts *o, char *buf, size_t len);
/* Give m's kernels their tuned schedules (build, run) and say how many. */
int apply_tuning(Model *m, const Opts *o);
/* The model of o->model through the pipeline (errors counted on stderr). */
Model *front_end(Arena *a, Diag *d, const Opts *o);
/* --quantize: whether its value is one we know (NULL, int8, int8w), and
 * the bits of int8 activations it asks for (pass_quantize's a8): with
 * int8, those the target multiplies fast (cg_int8_bits), or
 * $VAMOS_INT8_BITS (for developers' comparisons); else 0. */
bool quantize_ok(const Opts *o);
int quantize_a8(const Opts *o);
/* The model of o->model with the weights of o->weights bound to it. */
Model *load_with_weights(Arena *a, const Opts *o, Bound *b);
/* Seconds on a monotonic clock. */
double now_s(void);

/* The commands (cmd_<name>.c; vocab, train, eval and average in train/). */
int cmd_check_main(int argc, char **argv);
int cmd_graph_main(int argc, char **argv);
int cmd_init_main(int argc, char **argv);
int cmd_run_main(int argc, char **argv);
int cmd_build_main(int argc, char **argv);
int cmd_tune_main(int argc, char **argv);
int cmd_vocab_main(int argc, char **argv);
int cmd_train_main(int argc, char **argv);
int cmd_eval_main(int argc, char **argv);
int cmd_average_main(int argc, char **argv);
int cmd_serve_main(int argc, char **argv);   /* serve/serve.c */
int cmd_po_main(int argc, char **argv);      /* serve/po.c */

#endif
