/* graph.c - the op table, node construction and shape helpers. */
#include "graph.h"

#include <string.h>

#include "arena.h"

const OpInfo op_info[OP_COUNT] = {
#define X(id, text, oper, arity, kind, attr, by, formula) [OP_##id] = { text, oper, arity, kind, attr, by },
    VAMOS_OPS(X)
#undef X
};

/* Append a node; inputs must already exist (topological order). */
int graph_add(Arena *a, Graph *g, Node n)
{
    if (g->n == g->cap) {
        int nc = g->cap ? g->cap * 2 : 64;
        g->nodes = arena_grow(a, g->nodes, sizeof(Node) * (size_t)g->cap,
                              sizeof(Node) * (size_t)nc);
        g->cap = nc;
    }
    g->nodes[g->n] = n;
    return g->n++;
}

bool dim_eq(Dim a, Dim b)
{
    if (a.sym >= 0 || b.sym >= 0)
        return a.sym == b.sym;
    return a.n == b.n;
}

Dim dim_const(int64_t n) { return (Dim){ n, -1 }; }

bool shape_eq(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (!dim_eq(a->d[i], b->d[i]))
            return false;
    return true;
}

const char *shape_str(Arena *a, const Model *m, const Shape *s)
{
    char buf[256];
    int len = snprintf(buf, sizeof buf, "[");
    for (int i = 0; i < s->rank && len < (int)sizeof buf - 32; i++) {
        const Dim *d = &s->d[i];
        const char *sep = i ? ", " : "";
        if (d->sym >= 0)
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%s", sep,
                            m && d->sym < m->nsyms ? m->syms[d->sym].name : "?");
        else
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%lld", sep,
                            (long long)d->n);
    }
    snprintf(buf + len, sizeof buf - (size_t)len, "]");
    return arena_strdup(a, buf);
}

int64_t shape_numel_const(const Shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i].sym >= 0)
            return -1;
        n *= s->d[i].n;
    }
    return n;
}
