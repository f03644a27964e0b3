/* main.c - the `vamos` driver: a table of commands, each in its own file
 * (cli.h). Each command is the pipeline of docs/DESIGN.md cut at a
 * different place:
 *
 *   check   parse -> resolve -> elaborate -> passes       (diagnostics only)
 *   graph   ... and print the graph (text or Graphviz DOT)
 *   init    ... and write initial weights
 *   run     ... bind weights, compile (JIT), greedy-decode
 *   build   ... compile to native code and link a translator
 *   tune    ... search the kernels' schedules, record them
 *   vocab, train, eval, average: the training tools (compiler/train/)
 *
 * Exit codes: 0 success, 1 errors in the input, 2 usage errors.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
#include "vamos/version.h"

static const struct Command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *synopsis;   /* its arguments, then what it does */
    const char *summary;
} commands[] = {
    { "check", cmd_check_main, "MODEL.vam", "check a model; print diagnostics" },
    { "graph", cmd_graph_main, "MODEL.vam [--dot]", "print the model's graph (text or Graphviz DOT)" },
    { "init", cmd_init_main, "MODEL.vam -o W.safetensors [--seed N]", "write deterministic initial weights" },
    { "run", cmd_run_main, "MODEL.vam -w W.safetensors \"SENTENCE\"",
      "translate a sentence (JIT-compiled native code)" },
    { "build", cmd_build_main, "MODEL.vam -w W.safetensors -o TRANSLATOR",
      "build a standalone translator executable" },
    { "tune", cmd_tune_main, "MODEL.vam [--budget SECONDS]", "tune the model's kernels for this machine" },
    { "vocab", cmd_vocab_main, "--data TRAIN.tsv -o PREFIX", "learn subword vocabularies from a corpus" },
    { "train", cmd_train_main, "MODEL.vam --data TRAIN.tsv --dev DEV.tsv -o W.safetensors",
      "train a model's weights" },
    { "eval", cmd_eval_main, "(TRANSLATOR | MODEL.vam -w W.safetensors) DATA.tsv...",
      "score translations (BLEU, chrF)" },
    { "average", cmd_average_main, "-o OUT.safetensors W1.safetensors W2.safetensors...",
      "average weight files (checkpoint averaging)" },
    { "serve", cmd_serve_main, "LIB.so... [--port 5000]", "serve the LibreTranslate HTTP API" },
    { "po", cmd_po_main, "LIB.so CATALOG.po -o OUT.po", "fill a gettext catalog's untranslated entries" },
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *out)
{
    fputs("usage: vamos <command> [options]\n\n"
          "Vamos compiles transformer translation models written in the Vamos language.\n\n"
          "commands:\n", out);
    for (int i = 0; i < NCOMMANDS; i++) {
        const struct Command *c = &commands[i];
        int w = fprintf(out, "  %-5s %s", c->name, c->synopsis);
        if (w <= 31)
            fprintf(out, "%*s%s\n", 31 - w, "", c->summary);
        else
            fprintf(out, "\n%31s%s\n", "", c->summary);
    }
    fputs("\n`vamos COMMAND --help` describes a command. `vamos --version` prints the version.\n", out);
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
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : written(0);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("vamos %s\n%s\n", VAMOS_VERSION,
               dist_built() ? "built with MPI: mpirun -np N vamos train trains data-parallel"
                            : "built without MPI: vamos train runs as one process");
        return written(0);
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return written(commands[i].main(argc - 1, argv + 1));
    fprintf(stderr, "vamos: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
