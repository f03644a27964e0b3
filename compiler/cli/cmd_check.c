/* cmd_check.c - `vamos check`: check a model and print its diagnostics and size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char usage[] =
    "usage: vamos check MODEL.vam\n\n"
    "Parse, resolve, elaborate and shape-check a model. Prints diagnostics as\n"
    "file:line:col: error: message. Exit 0 if the model is valid, 1 if not.\n";


/* Bytes of weights one run of g reads per row (a decoder step's row, an
 * encoder's source token): every weight of g, except tables it only
 * gathers rows of. Each is a multiply-add per row, so twice this over 4 is
 * g's flops per row (less attention's, which grow with the length). */
static int64_t weight_bytes(const Graph *g)
{
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

static int check_cmd(Arena *a, const Opts *o)
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
               "a step reads %.1f MB of weights%s\n",
               m->prep.n, m->step.n, m->nstates, (double)weight_bytes(&m->step) / 1e6,
               m->step_shared ? "; its rows share one position (a position value meets the batch's values "
                                "other than elementwise): no continuous batching" : "");
    printf("each source token is multiplied by %.1f MB of weights in the encoder", (double)weight_bytes(&m->enc) / 1e6);
    if (!m->no_step)
        printf(" and %.1f MB in the per-sentence graph", (double)weight_bytes(&m->prep) / 1e6);
    printf("\n");
    return 0;
}

int cmd_check_main(int argc, char **argv)
{
    return cli_run(argc, argv, usage, "", false, check_cmd);
}
