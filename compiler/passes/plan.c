/* plan.c - the static memory plan: which buffer each node's value lives in.
 *
 * Shapes are symbolic (batch, source and target length), so byte offsets
 * can only be fixed at run time; what is decided here, once, is the
 * sharing. Walking the nodes in execution order, a value takes a free
 * buffer whose size has the same symbolic expression (the same constant
 * times the same symbols), or a new one; a buffer is free again after the
 * last node that reads its value. At run time the runtime sizes each
 * buffer for the current symbols and lays them out in one block
 * (runtime/translate.c). The graph's output and inputs are never shared
 * with anything that runs after them, and weights take no buffer.
 *
 * States (incremental.c) are the runtime's: a state input and the stores
 * into it share the state's memory, which lives across runs.
 *
 * A kernel's output never shares with its own inputs: its buffer is taken
 * before the inputs' buffers are released. The one exception is a view
 * (plan_memory_views, the training step's plan): a reshape of a computed
 * value takes that value's buffer, which stays taken until the last
 * reader of either, and its kernel does not run (a step of en-es had 153
 * reshapes, copies of up to 4 MB).
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "passes.h"

/* A buffer's size as constant x product of symbols (sorted). */
typedef struct Size {
    int64_t c;
    int nsym;
    int sym[MAX_RANK];
} Size;

static Size size_of(const Shape *s)
{
    Size z = { 1, 0, { 0 } };
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i].sym < 0) {
            z.c *= s->d[i].n;
            continue;
        }
        int k = z.nsym++;
        while (k > 0 && z.sym[k - 1] > s->d[i].sym) {
            z.sym[k] = z.sym[k - 1];
            k--;
        }
        z.sym[k] = s->d[i].sym;
    }
    return z;
}

static bool same_size(const Size *a, const Size *b)
{
    return a->c == b->c && a->nsym == b->nsym && !memcmp(a->sym, b->sym, sizeof(int) * (size_t)a->nsym);
}

bool is_state(const Node *n)
{
    return n->op == OP_STORE || (n->op == OP_INPUT && n->attr.input.role == IN_STATE);
}

/* May node i be a view of its input (plan_memory_views)? */
static bool viewable(const Graph *g, int i)
{
    const Node *nd = &g->nodes[i];
    if (nd->op != OP_RESHAPE)
        return false;
    const Node *in = &g->nodes[nd->in[0]];
    Size a = size_of(&nd->shape), b = size_of(&in->shape);
    return in->op != OP_PARAM && in->op != OP_INPUT && !is_state(in) && nd->dtype == in->dtype && same_size(&a, &b);
}

static int plan(const Graph *g, bool reuse, bool views, int *slot)
{
    int n = g->n, nslots = 0;
    int *last = malloc(sizeof(int) * (size_t)(n + 1));
    int *root = malloc(sizeof(int) * (size_t)(n + 1));   /* the value whose buffer node i's is */
    Size *sizes = malloc(sizeof(Size) * (size_t)(n + 1));
    bool *free_ = calloc((size_t)n + 1, sizeof *free_);
    if (!last || !root || !sizes || !free_) {
        free(last), free(root), free(sizes), free(free_);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        root[i] = views && viewable(g, i) ? root[g->nodes[i].in[0]] : i;
        last[i] = g->nodes[i].op == OP_INPUT ? n : i;   /* inputs: filled before the run */
    }
    for (int i = 0; i < n; i++) {
        if (last[root[i]] < i)
            last[root[i]] = i;   /* a view keeps its root's buffer until it is made */
        for (int k = 0; k < op_info[g->nodes[i].op].arity; k++)
            if (last[root[g->nodes[i].in[k]]] < i)
                last[root[g->nodes[i].in[k]]] = i;
    }
    if (g->output >= 0)
        last[root[g->output]] = n;
    for (int i = 0; i < n; i++) {
        const Node *nd = &g->nodes[i];
        slot[i] = -1;
        if (nd->op == OP_PARAM || is_state(nd))
            continue;                      /* weights and states live elsewhere */
        if (root[i] != i) {   /* a view: its root's buffer, held by last[] */
            slot[i] = slot[root[i]];
            if (last[root[i]] == i)   /* nothing reads the view */
                free_[slot[i]] = true;
            continue;
        }
        Size z = size_of(&nd->shape);
        int pick = -1;
        for (int s = 0; reuse && s < nslots && pick < 0; s++)
            if (free_[s] && same_size(&sizes[s], &z))
                pick = s;
        if (pick < 0) {
            pick = nslots++;
            sizes[pick] = z;
        }
        free_[pick] = false;
        slot[i] = pick;
        /* release the buffers whose last reader this is */
        for (int k = 0; k < op_info[nd->op].arity; k++) {
            int in = root[nd->in[k]];
            if (last[in] == i && slot[in] >= 0)
                free_[slot[in]] = true;
        }
        if (last[i] == i)   /* a value nothing reads */
            free_[pick] = true;
    }
    free(last), free(root), free(sizes), free(free_);
    return nslots;
}

int plan_memory(const Graph *g, bool reuse, int *slot) { return plan(g, reuse, false, slot); }
int plan_memory_views(const Graph *g, bool reuse, int *slot) { return plan(g, reuse, true, slot); }

bool plan_is_view(const Graph *g, const int *slot, int i)
{
    const Node *nd = &g->nodes[i];
    return nd->op == OP_RESHAPE && slot[i] >= 0 && slot[i] == slot[nd->in[0]];
}

void pass_plan(struct Arena *a, Graph *g)
{
    int *slot = arena_alloc(a, sizeof(int) * (size_t)(g->n + 1));
    int n = plan_memory(g, true, slot);
    g->slot = n >= 0 ? slot : NULL;   /* out of memory: users plan again, and say so */
    g->nslots = n;
}
