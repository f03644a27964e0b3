/* cmd_graph.c - `vamos graph`: print a model's graphs, as text or Graphviz DOT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "passes.h"
#include "pipeline.h"

static const char usage[] =
    "usage: vamos graph MODEL.vam [--dot] [--after STAGE | --fused]\n\n"
    "Print the encoder and decoder graphs, one node a line (%id = op inputs : type),\n"
    "or with --dot as Graphviz (render: vamos graph m.vam --dot | dot -Tsvg > m.svg).\n"
    "By default the graphs are shown as written, after dead code elimination.\n"
    "--after STAGE shows them after that stage of the pipeline (elab, fold, dce,\n"
    "incremental, fuse, pack, plan: docs/DESIGN.md); from incremental on, with the\n"
    "derived per-sentence and one-word decoder graphs. --fused shows what is\n"
    "compiled: every stage; --dot draws fused groups as boxes.\n";


static int graph_cmd(Arena *a, const Opts *o)
{
    Diag d;
    if (o->after && stage_by_name(o->after) < 0)
        return usage_error(usage, "--after takes a stage (elab, fold, dce, incremental, fuse, pack, plan), not '%s'",
                           o->after);
    if (o->after && o->fused)
        return usage_error(usage, "%s", "--after and --fused do not go together");
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
    if (m->step.n > 0) {
        graph_dump_text(stdout, m, &m->prep, a);
        graph_dump_text(stdout, m, &m->step, a);
    }
    return 0;
}

int cmd_graph_main(int argc, char **argv)
{
    return cli_run(argc, argv, usage, "dAF", false, graph_cmd);
}
