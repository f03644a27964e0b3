/* graph_dump.c - the graph as text (one node a line) and as Graphviz DOT. */
#include "arena.h"
#include "graph.h"

/* The inputs a node reads (a MAP's unused slots repeat input 0). */
static int node_arity(const Node *n)
{
    return n->op == OP_MAP ? n->attr.map.nin : op_info[n->op].arity;
}

static const char *dtype_text(DType t) { return t == DT_F32 ? "f32" : "i32"; }

/* Register r of a MAP node's program as an expression of its inputs
 * x0..x3 (each step is read once, so the program is a tree). */
static void map_expr(FILE *out, const Node *n, int r)
{
    if (r < 4) {
        fprintf(out, "x%d", r);
        return;
    }
    const MapStep *st = &n->attr.map.code[r - 4];
    const char *infix = st->op == OP_ADD ? " + " : st->op == OP_SUB ? " - " : st->op == OP_MUL ? " * "
                      : st->op == OP_DIV ? " / " : NULL;
    if (st->op == OP_CONST) {
        fprintf(out, "%g", st->value);
    } else if (infix) {
        fputc('(', out);
        map_expr(out, n, st->a);
        fputs(infix, out);
        map_expr(out, n, st->b);
        fputc(')', out);
    } else {
        fprintf(out, "%s(", op_info[st->op].text);
        map_expr(out, n, st->a);
        if (op_info[st->op].kind == OPK_BINARY) {
            fputs(", ", out);
            map_expr(out, n, st->b);
        }
        fputc(')', out);
    }
}

/* The op's attribute (its AttrKind, ops.h), for dumps: the weight name,
 * the constant, the axis... */
static void node_attr(FILE *out, const Model *m, const Node *n)
{
    switch (op_info[n->op].attr) {
    case AT_NONE: break;
    case AT_INPUT: fprintf(out, " %s", n->attr.input.name); break;
    case AT_PARAM: fprintf(out, " %s", m->params[n->attr.param].name); break;
    case AT_VALUE: fprintf(out, " %g", n->attr.value); break;
    case AT_AXIS: fprintf(out, " axis=%d", n->attr.axis); break;
    case AT_PERM:
        fprintf(out, " perm=");
        for (int k = 0; k < n->shape.rank; k++)
            fprintf(out, "%s%d", k ? "," : "", n->attr.perm[k]);
        break;
    case AT_OFFSET:
        if (n->attr.offset)
            fprintf(out, " from=%s", m->syms[n->attr.offset - 1].name);
        break;
    case AT_STORE:
        if (n->attr.store.axis >= 0)
            fprintf(out, " state=%d axis=%d at=each row's position", n->attr.store.state, n->attr.store.axis);
        else
            fprintf(out, " state=%d", n->attr.store.state);
        break;
    case AT_ATTN: fprintf(out, " scale=%s%g", n->attr.attn.div ? "1/" : "", n->attr.attn.scale); break;
    case AT_MM:
        if (n->attr.mm.packed)
            fprintf(out, " packed");
        if (n->attr.mm.bt)
            fprintf(out, " bt");
        if (n->attr.mm.q8)
            fprintf(out, " int8");
        if (n->attr.mm.relu)
            fprintf(out, " relu");
        if (n->attr.mm.at)
            fprintf(out, " at");
        if (n->attr.mm.heads)
            fprintf(out, " heads");
        break;
    case AT_EPS: fprintf(out, " eps=%g", n->attr.eps); break;
    case AT_XENT:
        fprintf(out, " smoothing=%g", n->attr.xent.eps);
        if (n->attr.xent.peer)
            fprintf(out, n->op == OP_XENT ? " (written by %%%d)" : " (also writes %%%d)", n->attr.xent.peer - 1);
        break;
    case AT_DROP: fprintf(out, " p=%g salt=%u", n->attr.drop.p, (unsigned)n->attr.drop.salt); break;
    case AT_MAP:
        fputc(' ', out);
        map_expr(out, n, 4 + n->attr.map.nstep - 1);
        break;
    }
}

void graph_dump_text(FILE *out, const Model *m, const Graph *g, Arena *a)
{
    fprintf(out, "%s: %d nodes\n", g->name, g->n);
    if (g == &m->step && m->step_out != STEP_OUT_AS_WRITTEN)
        fprintf(out, "  (returns the logits; the decoder's %s of them is left to decoding)\n",
                m->step_out == STEP_OUT_LOGITS_OF_SOFTMAX ? "softmax" : "log_softmax");
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        fprintf(out, "  %%%d = %s", i, op_info[n->op].text);
        node_attr(out, m, n);
        for (int k = 0; k < node_arity(n); k++)
            fprintf(out, "%s%%%d", k ? ", " : " ", n->in[k]);
        fprintf(out, " : %s%s%s\n", dtype_text(n->dtype), shape_str(a, m, &n->shape),
                i == g->output ? "   <- output" : "");
    }
}

/* What a fused node's kernel does, for its box; NULL for other nodes. */
static const char *fused_ops(const Node *n)
{
    switch (n->op) {
    case OP_ATTENTION: return "matmul(q, kt) → scale → + mask → softmax → matmul(·, v)";
    case OP_LINEAR: return n->attr.mm.relu ? "x @ w + bias → relu" : "x @ w + bias";
    case OP_LAYER_NORM: return "x + residual → mean → variance → normalise → * gain + bias";
    case OP_MAP: return "";
    case OP_INPUT: case OP_PARAM: case OP_CONST: case OP_ARANGE:
    case OP_CAUSAL_MASK: case OP_PAD_MASK: case OP_GATHER: case OP_MATMUL:
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAXIMUM:
    case OP_POW: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT:
    case OP_RSQRT: case OP_TANH: case OP_ERF: case OP_SIN: case OP_COS:
    case OP_FLOOR: case OP_ABS: case OP_SUM: case OP_MAX: case OP_MEAN:
    case OP_RESHAPE: case OP_TRANSPOSE: case OP_STORE: case OP_COUNT:
    case OP_GE: case OP_DROPOUT: case OP_XENT: case OP_XENT_GRAD: case OP_SCATTER_ADD: case OP_MATMUL_TN:
        break;
    }
    return NULL;
}

static void dot_graph(FILE *out, const Model *m, const Graph *g, Arena *a)
{
    fprintf(out, "  subgraph cluster_%s {\n    label=\"%s\"; style=rounded; color=gray50;\n", g->name, g->name);
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        const char *style = n->op == OP_PARAM ? "shape=box, style=filled, fillcolor=\"#fff2cc\""
                          : n->op == OP_INPUT ? "shape=box, style=filled, fillcolor=\"#d9ead3\""
                          : n->op == OP_CONST ? "shape=plaintext"
                          : "shape=ellipse";
        const char *what = fused_ops(n);
        if (what) {
            /* a fused group: drawn as a box of its own, its ops listed */
            fprintf(out, "    subgraph cluster_%s_fused%d {\n      label=\"fused\"; style=\"rounded,filled\"; "
                         "fillcolor=\"#dae8fc\"; color=\"#6c8ebf\";\n", g->name, i);
            fprintf(out, "      %s%d [shape=box, style=filled, fillcolor=white, label=\"%s\\n%s",
                    g->name, i, op_info[n->op].text, what);
            if (n->op == OP_MAP)
                map_expr(out, n, 4 + n->attr.map.nstep - 1);
            fprintf(out, "\\n%s\"%s];\n    }\n", shape_str(a, m, &n->shape), i == g->output ? ", peripheries=2" : "");
            for (int k = 0; k < node_arity(n); k++)
                fprintf(out, "    %s%d -> %s%d [label=\"%s\"];\n", g->name, n->in[k], g->name, i,
                        n->op == OP_ATTENTION ? (const char *[]){ "q", "kt", "v", "mask" }[k]
                        : n->op == OP_LINEAR ? (const char *[]){ "x", "w", "bias", "" }[k]
                        : n->op == OP_LAYER_NORM ? (const char *[]){ "x", "residual", "gain", "bias" }[k]
                        : (const char *[]){ "x0", "x1", "x2", "x3" }[k]);
            continue;
        }
        fprintf(out, "    %s%d [%s, label=\"%s", g->name, i, style, op_info[n->op].text);
        if (n->op == OP_PARAM || n->op == OP_INPUT || n->op == OP_CONST) {
            fputs("\\n", out);
            node_attr(out, m, n);
        }
        fprintf(out, "\\n%s\"%s];\n", shape_str(a, m, &n->shape), i == g->output ? ", peripheries=2" : "");
        for (int k = 0; k < op_info[n->op].arity; k++)
            fprintf(out, "    %s%d -> %s%d;\n", g->name, n->in[k], g->name, i);
    }
    fputs("  }\n", out);
}

void graph_dump_dot(FILE *out, const Model *m, Arena *a, bool all)
{
    fprintf(out, "digraph \"%s\" {\n  rankdir=TB; node [fontname=\"Helvetica\", fontsize=10];\n", m->name);
    dot_graph(out, m, &m->enc, a);
    dot_graph(out, m, &m->dec, a);
    if (all && m->step.n > 0) {
        dot_graph(out, m, &m->prep, a);
        dot_graph(out, m, &m->step, a);
    }
    if (m->enc.output >= 0)
        for (int i = 0; i < m->dec.n; i++)
            if (m->dec.nodes[i].op == OP_INPUT && m->dec.nodes[i].attr.input.role == IN_TENSOR)
                fprintf(out, "  encoder%d -> decoder%d [style=dashed, label=\"memory\"];\n", m->enc.output, i);
    fputs("}\n", out);
}
