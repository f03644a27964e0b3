/* fuse_map.c - chains of elementwise ops fused into one loop (MAP).
 *
 * After the attention, linear and layer-norm passes have taken their
 * patterns, what is left of elementwise work is chains such as the
 * positional encoding, `embed * c + position`, or softmax's
 * `exp(x - max)`. Run op by op, each link reads and writes a whole tensor.
 * This pass turns each maximal chain into one MAP node whose small program
 * (graph.h: MapStep) computes every link per element, in registers.
 *
 * A group grows backwards from its end, a unary or binary node, through
 * inputs that are unary or binary nodes of the end's shape read by nothing
 * else. Scalar constants become steps of the program; any other input is a
 * leaf, broadcast to the end's shape by the kernel. A group has at most 4
 * leaves and MAP_MAX_STEPS steps: when it would have more, its earliest
 * member becomes a leaf instead, until it fits. A group of one op is left
 * alone (its kernel is already one loop). The reference is the op-by-op
 * evaluation in interp.c.
 */
#include "arena.h"
#include "fuse_util.h"
#include "passes.h"

typedef struct Match {
    int member[MAP_MAX_STEPS];   /* ascending ids; the last is the end */
    int nmember;
    int leaf[4];
    int nleaf;
    int konst[MAP_MAX_STEPS];    /* CONST inputs, each a step */
    int nkonst;
} Match;

static bool elementwise(const Node *n)
{
    OpKind k = op_info[n->op].kind;
    return (k == OPK_UNARY || k == OPK_BINARY) && n->dtype == DT_F32;
}

static bool in_list(const int *list, int n, int x)
{
    for (int k = 0; k < n; k++)
        if (list[k] == x)
            return true;
    return false;
}

/* Collect the group ending at `end` whose members avoid `blocked`, in
 * *mt. Returns false when it does not fit (too many members, steps or
 * leaves); mt->member then still holds members found, ascending. */
static bool collect(const Graph *g, const int *uses, const bool *gone, const int *blocked, int nblocked, int end,
                    Match *mt)
{
    const Shape *shape = &g->nodes[end].shape;
    int stack[MAP_MAX_STEPS * 2 + 1], top = 0, n = 0;
    int found[MAP_MAX_STEPS * 2 + 1];
    bool fits = true;
    stack[top++] = end;
    while (top > 0) {
        int j = stack[--top];
        if (n == MAP_MAX_STEPS) {
            fits = false;   /* the members found so far still go to *mt */
            break;
        }
        found[n++] = j;
        const Node *nj = &g->nodes[j];
        for (int k = 0; k < op_info[nj->op].arity; k++) {
            int x = nj->in[k];
            const Node *nx = &g->nodes[x];
            if (nx->op == OP_CONST || in_list(found, n, x) || in_list(stack, top, x))
                continue;
            if (uses[x] == 1 && !gone[x] && !in_list(blocked, nblocked, x) && elementwise(nx) &&
                shape_eq(&nx->shape, shape))
                stack[top++] = x;
        }
    }
    /* ids ascending: the graph's order is a topological one */
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && found[b - 1] > found[b]; b--) {
            int t = found[b];
            found[b] = found[b - 1];
            found[b - 1] = t;
        }
    mt->nmember = n;
    mt->nleaf = mt->nkonst = 0;
    for (int m = 0; m < n; m++)
        mt->member[m] = found[m];
    if (!fits)
        return false;
    for (int m = 0; m < n; m++) {
        const Node *nm = &g->nodes[found[m]];
        for (int k = 0; k < op_info[nm->op].arity; k++) {
            int x = nm->in[k];
            if (in_list(found, n, x))
                continue;
            if (g->nodes[x].op == OP_CONST) {
                if (!in_list(mt->konst, mt->nkonst, x)) {
                    if (mt->nkonst == MAP_MAX_STEPS)
                        return false;
                    mt->konst[mt->nkonst++] = x;
                }
            } else if (!in_list(mt->leaf, mt->nleaf, x)) {
                if (mt->nleaf == 4)
                    return false;
                mt->leaf[mt->nleaf++] = x;
            }
        }
    }
    return mt->nmember + mt->nkonst <= MAP_MAX_STEPS;
}

/* (FuseMatch) Is node i the end of a chain of two or more ops? */
static bool match(const Graph *g, const int *uses, int i, void *match, bool *gone)
{
    Match *mt = match;
    if (!elementwise(&g->nodes[i]))
        return false;
    enum { MAX_BLOCKED = 64 };
    int blocked[MAX_BLOCKED], nblocked = 0;
    /* shrink from the earliest member until it fits */
    while (!collect(g, uses, gone, blocked, nblocked, i, mt)) {
        if (mt->nmember <= 1 || nblocked == MAX_BLOCKED)
            return false;
        blocked[nblocked++] = mt->member[0];
    }
    if (mt->nmember < 2 || mt->nleaf == 0)
        return false;
    for (int m = 0; m < mt->nmember - 1; m++)
        gone[mt->member[m]] = true;
    return true;
}

static int emit(Arena *a, Graph *out, const Graph *g, int end, const void *match, const int *remap)
{
    const Match *mt = match;
    const Node *e = &g->nodes[end];
    int nstep = mt->nkonst + mt->nmember;
    MapStep *code = arena_alloc(a, sizeof *code * (size_t)nstep);
    int reg[MAP_MAX_STEPS * 2];   /* the register of konst[k], then of member[k] */
    for (int k = 0; k < mt->nkonst; k++) {
        code[k] = (MapStep){ .op = OP_CONST, .value = (float)g->nodes[mt->konst[k]].attr.value };
        reg[k] = 4 + k;
    }
    for (int m = 0; m < mt->nmember; m++) {
        const Node *nm = &g->nodes[mt->member[m]];
        unsigned char r[2] = { 0, 0 };
        for (int k = 0; k < op_info[nm->op].arity; k++) {
            int x = nm->in[k];
            for (int l = 0; l < mt->nleaf; l++)
                if (mt->leaf[l] == x)
                    r[k] = (unsigned char)l;
            for (int l = 0; l < mt->nkonst; l++)
                if (mt->konst[l] == x)
                    r[k] = (unsigned char)reg[l];
            for (int l = 0; l < m; l++)
                if (mt->member[l] == x)
                    r[k] = (unsigned char)reg[mt->nkonst + l];
        }
        code[mt->nkonst + m] = (MapStep){ .op = nm->op, .a = r[0], .b = r[1] };
        reg[mt->nkonst + m] = 4 + mt->nkonst + m;
    }
    Node f = { .op = OP_MAP, .dtype = DT_F32, .shape = e->shape, .loc = e->loc, .site = e->site };
    for (int k = 0; k < MAX_IN; k++)
        f.in[k] = remap[mt->leaf[k < mt->nleaf ? k : 0]];
    f.attr.map.code = code;
    f.attr.map.nstep = nstep;
    f.attr.map.nin = mt->nleaf;
    return graph_add(a, out, f);
}

Graph pass_fuse_map(Arena *a, const Graph *g)
{
    return fuse_run(a, g, sizeof(Match), match, emit);
}
