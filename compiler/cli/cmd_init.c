/* cmd_init.c - `vamos init`: write a model's initial weights. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char usage[] =
    "usage: vamos init MODEL.vam -o W.safetensors [--seed N]\n\n"
    "Write initial weights: Xavier/Glorot uniform for matrices, zeros for biases,\n"
    "ones for norm gains, named by their parameter paths. Deterministic for a seed\n"
    "(default 1).\n";


static int init_cmd(Arena *a, const Opts *o)
{
    if (!o->out)
        return usage_error(usage, "%s", "missing -o W.safetensors");
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

int cmd_init_main(int argc, char **argv)
{
    return cli_run(argc, argv, usage, "os", false, init_cmd);
}
