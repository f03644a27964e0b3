/* incremental.c - derive one-token decoding from the full decoder graph.
 *
 * The decoder as written maps a whole target prefix [b, m] to scores
 * [b, m, V]; decoding re-running it for every new word costs O(m) per word.
 * This pass derives, from the same graph, two graphs:
 *
 *   prep  every node that does not depend on the target words (the
 *         encoder-decoder attention's key/value projections of the memory,
 *         constants): run once per batch, its values stored as states;
 *   step  the scores [b, 1, V] of one new position t from the last word
 *         alone, reading the prep states and the key/value caches.
 *
 * It tags every dim whose size is the target length m with a role: Q (the
 * position being computed: one row in the step) or K (every position so
 * far: the cache length in the step). The target words' m is Q; so are
 * arange(m) and a causal mask's rows; a causal mask's columns and a padding
 * mask over m are K. Roles flow through every op. Where a matmul would put
 * two Q dims in one value (q @ transpose(k)) or contract a K dim with a Q
 * dim (weights @ v), the operand's Q dim must be K: that operand is cached.
 * In the step it becomes store(cache, x, positions) - x, one row per
 * sentence, written at that row's position of a state whose dim is the
 * cache length - and the consumer reads the whole cache.
 *
 * Every row has a position of its own (an input, int32 [b]), so sentences
 * that began at different steps decode side by side (continuous batching,
 * vamos serve). What depends on the target length alone (arange, the
 * causal mask, a position encoding made of them) is read per row: the
 * causal mask becomes a padding mask of each row's position + 1 keys, a
 * position encoding a table prep computes at the full length, gathered
 * at each row's position (ref_rows). Cache positions past a row's own
 * hold zeros or an earlier sentence's keys, and are masked.
 *
 * Anything the roles cannot express (a reduction over Q, a reshape that
 * merges m with another dim, ...) leaves the model without a step: the
 * runtime then re-runs the full decoder, which is always right.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "passes.h"

enum { R_NONE, R_Q, R_K };

typedef struct Info {
    unsigned char role[MAX_RANK];
    bool dep;                  /* depends on the target words or length */
    bool pos;                  /* depends on the target length alone (a position encoding, the causal mask) */
} Info;

typedef struct Derive {
    Arena *a;
    Model *m;
    const Graph *g;
    int msym, bsym, pos;       /* target length, batch, step position symbols */
    Info *info;
    int (*conv)[2];            /* per node and input: the dim to read as K, or -1 */
    int *in_step, *in_prep, *cache;
    int lengths;               /* the step's input of each row's length (its position + 1), or -1 */
    bool shared;               /* every row at one position (derive_step) */
    int ids[MAX_RANK + 1];     /* the positions as gather ids [b, 1, ...] of each rank */
    const char *why;
} Derive;

static bool fail(Derive *d, const char *fmt, ...)
{
    if (!d->why) {
        char buf[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        d->why = arena_strdup(d->a, buf);
    }
    return false;
}

static bool is_m(const Derive *d, Dim x) { return x.sym == d->msym; }

/* Roles of an elementwise result from its inputs aligned right. */
static bool roles_bcast(Derive *d, const Node *n, const Node *const *ins, const Info *const *ii, int nin, Info *o)
{
    for (int k = 0; k < n->shape.rank; k++) {
        int r = R_NONE;
        for (int j = 0; j < nin; j++) {
            int kk = ins[j]->shape.rank - n->shape.rank + k;
            int rj = kk >= 0 ? ii[j]->role[kk] : R_NONE;
            if (rj && r && rj != r)
                return fail(d, "a value mixes the current position with earlier ones");
            r = rj ? rj : r;
        }
        o->role[k] = (unsigned char)r;
    }
    return true;
}

/* Tag node i; record which operand dims must be read as K. */
static bool tag(Derive *d, int i)
{
    const Graph *g = d->g;
    const Node *n = &g->nodes[i];
    Info *o = &d->info[i];
    memset(o, 0, sizeof *o);
    d->conv[i][0] = d->conv[i][1] = -1;
    int ar = op_info[n->op].arity;
    const Node *na = ar > 0 ? &g->nodes[n->in[0]] : NULL, *nb = ar > 1 ? &g->nodes[n->in[1]] : NULL;
    const Info *ia = ar > 0 ? &d->info[n->in[0]] : NULL, *ib = ar > 1 ? &d->info[n->in[1]] : NULL;
    o->dep = (ia && ia->dep) || (ib && ib->dep);
    switch (n->op) {
    case OP_INPUT:
        if (n->attr.input.role == IN_STATE)
            return fail(d, "the decoder already has states");
        for (int k = 0; k < n->shape.rank; k++)
            if (is_m(d, n->shape.d[k]))
                o->role[k] = R_Q;
        o->dep = n->attr.input.role == IN_TOKENS ||
                 (n->attr.input.role == IN_LENGTHS && n->attr.input.sym == d->msym);
        if (n->attr.input.role == IN_TENSOR && o->dep)
            return fail(d, "the decoder's memory has the target length");
        return true;
    case OP_PARAM: case OP_CONST:
        return true;
    case OP_ARANGE:
        if (is_m(d, n->shape.d[0]))
            o->role[0] = R_Q, o->dep = true;
        return true;
    case OP_CAUSAL_MASK:
        if (is_m(d, n->shape.d[0]) != is_m(d, n->shape.d[1]))
            return fail(d, "a causal mask over the target length and another");
        if (is_m(d, n->shape.d[0]))
            o->role[0] = R_Q, o->role[1] = R_K, o->dep = true;
        return true;
    case OP_PAD_MASK:
        if (is_m(d, n->shape.d[n->shape.rank - 1]))
            o->role[n->shape.rank - 1] = R_K;
        return true;
    case OP_GATHER:
        if (ia->role[0] || ia->role[1])
            return fail(d, "an embedding table sized by the target length");
        memcpy(o->role, ib->role, sizeof ib->role);
        return true;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_POW: case OP_GE:
        return roles_bcast(d, n, (const Node *const[]){ na, nb }, (const Info *const[]){ ia, ib }, 2, o);
    case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH:
    case OP_ERF: case OP_SIN: case OP_COS: case OP_FLOOR: case OP_ABS:
        memcpy(o->role, ia->role, sizeof ia->role);
        return true;
    case OP_SUM: case OP_MAX: case OP_MEAN:
        if (ia->role[n->attr.axis] == R_Q)
            return fail(d, "a reduction over target positions");
        memcpy(o->role, ia->role, sizeof ia->role);
        o->role[n->attr.axis] = R_NONE;
        return true;
    case OP_TRANSPOSE:
        for (int k = 0; k < n->shape.rank; k++)
            o->role[k] = ia->role[n->attr.perm[k]];
        return true;
    case OP_RESHAPE: {
        int from = -1, to = -1, nfrom = 0, nto = 0;
        for (int k = 0; k < na->shape.rank; k++)
            if (ia->role[k])
                from = k, nfrom++;
        for (int k = 0; k < n->shape.rank; k++)
            if (is_m(d, n->shape.d[k]))
                to = k, nto++;
        if (nfrom == 0 && nto == 0)
            return true;
        if (nfrom != 1 || nto != 1)
            return fail(d, "a reshape that merges or splits the target length");
        o->role[to] = ia->role[from];
        return true;
    }
    case OP_MATMUL: {
        int ra = na->shape.rank, rb = nb->shape.rank, r = n->shape.rank;
        int row = ia->role[ra - 2], col = ib->role[rb - 1], ka = ia->role[ra - 1], kb = ib->role[rb - 2];
        if (row == R_Q && col == R_Q)          /* q @ transpose(k): k over every position */
            d->conv[i][1] = rb - 1, col = R_K;
        if (ka == R_K && kb == R_Q)            /* weights @ v: v over every position */
            d->conv[i][1] = rb - 2, kb = R_K;
        if (ka != kb || ka == R_Q)
            return fail(d, "a matmul over target positions that is not attention");
        if (d->conv[i][1] >= 0 && (ib->role[rb - 1] == R_Q) + (ib->role[rb - 2] == R_Q) != 1)
            return fail(d, "a cached value with two target-length dims");
        for (int k = 0; k < rb - 2; k++)
            if (ib->role[k])
                return fail(d, "a matmul batched over target positions");
        Shape bo = n->shape;
        bo.rank -= 2;
        Node ta = *na, tb = *nb;
        ta.shape.rank -= 2, tb.shape.rank -= 2;
        Node tn = *n;
        tn.shape = bo;
        if (!roles_bcast(d, &tn, (const Node *const[]){ &ta, &tb }, (const Info *const[]){ ia, ib }, 2, o))
            return false;
        o->role[r - 2] = (unsigned char)row;
        o->role[r - 1] = (unsigned char)col;
        return true;
    }
    case OP_STORE: case OP_ATTENTION: case OP_LINEAR: case OP_LAYER_NORM: case OP_MAP: case OP_COUNT:   /* made after this pass */
    case OP_DROPOUT: case OP_XENT: case OP_XENT_GRAD: case OP_SCATTER_ADD: case OP_MATMUL_TN:   /* training graphs only */
        break;
    }
    return fail(d, "op %s", op_info[n->op].text);
}

/* Whether node i (tagged) depends on the target length alone: arange
 * and the causal mask over target positions, and what is made of them
 * and of constants, with no batch dim. The step computes none of these:
 * each row has its own position (continuous batching puts sentences
 * that began at different steps side by side), so ref_rows reads them
 * per row. */
static void tag_pos(Derive *d, int i)
{
    const Node *n = &d->g->nodes[i];
    Info *o = &d->info[i];
    if (n->op == OP_ARANGE || n->op == OP_CAUSAL_MASK) {
        o->pos = o->role[0] == R_Q;
        return;
    }
    o->pos = o->dep;
    for (int k = 0; k < op_info[n->op].arity; k++)
        if (d->info[n->in[k]].dep && !d->info[n->in[k]].pos)
            o->pos = false;
    for (int k = 0; k < n->shape.rank; k++)
        if (n->shape.d[k].sym == d->bsym)
            o->pos = false;
}

/* The step's shape of a full-decoder value: Q dims 1, K dims the cache. */
static Shape step_shape(const Node *n, const Info *inf)
{
    Shape s = n->shape;
    for (int k = 0; k < s.rank; k++)
        if (inf->role[k] == R_Q)
            s.d[k] = dim_const(1);
    return s;
}

static int add(Derive *d, Graph *g, Node n) { return graph_add(d->a, g, n); }

static int new_state(Derive *d, Shape s, bool cache)
{
    State st = { s, -1, cache };
    for (int k = 0; k < s.rank; k++)
        if (s.d[k].sym == d->bsym)
            st.batch_axis = k;
    d->m->states[d->m->nstates] = st;      /* room for one per node: derive_step */
    return d->m->nstates++;
}

static int state_input(Derive *d, Graph *g, const Node *like, Shape s, int k)
{
    Node in = { .op = OP_INPUT, .dtype = DT_F32, .shape = s, .loc = like->loc, .site = like->site };
    in.attr.input.role = IN_STATE;
    in.attr.input.sym = k;
    in.attr.input.name = "state";
    return add(d, g, in);
}

/* Node x of the full graph in the prep graph. */
static int ref_prep(Derive *d, int x)
{
    return d->in_prep[x];
}

/* Node x of the full graph as the step reads it: its step node, a weight
 * or constant, or (computed in prep) a state. */
static int ref_step(Derive *d, int x)
{
    if (d->in_step[x] >= 0)
        return d->in_step[x];
    const Node *n = &d->g->nodes[x];
    if (n->op == OP_PARAM || n->op == OP_CONST)   /* cheaper to repeat than to keep */
        return d->in_step[x] = add(d, &d->m->step, *n);
    if (n->op == OP_TRANSPOSE && d->g->nodes[n->in[0]].op == OP_PARAM && n->shape.rank == 2) {
        /* a matrix weight's transpose (a tied output layer): repeated too,
         * since fuse_transpose.c folds it into the matmul that reads it; a
         * state would copy the whole weight for every sentence */
        Node t = *n;
        t.in[0] = ref_step(d, n->in[0]);
        return d->in_step[x] = add(d, &d->m->step, t);
    }
    /* a per-sentence value: prep stores it whole, step reads the state */
    int k = new_state(d, n->shape, false);
    int s = state_input(d, &d->m->prep, n, n->shape, k);
    Node st = { .op = OP_STORE, .in = { s, ref_prep(d, x), s }, .dtype = DT_F32, .shape = n->shape,
                .loc = n->loc, .site = n->site };
    st.attr.store.state = k, st.attr.store.axis = -1;
    d->m->prep.output = add(d, &d->m->prep, st);
    return d->in_step[x] = state_input(d, &d->m->step, n, n->shape, k);
}

/* A per-row input of the step: symbol sym's lengths (int32), shaped
 * [b, 1, ...] of the given rank. */
static int rows_input(Derive *d, int sym, int rank, const Node *like)
{
    Node in = { .op = OP_INPUT, .dtype = DT_I32, .shape = { rank, { { 0, d->bsym } } }, .loc = like->loc,
                .site = like->site };
    for (int k = 1; k < rank; k++)
        in.shape.d[k] = dim_const(1);
    in.attr.input.role = IN_LENGTHS;
    in.attr.input.sym = sym;
    in.attr.input.name = sym == d->pos ? "positions" : "lengths";
    return add(d, &d->m->step, in);
}

/* Each row's position, as gather ids [b, 1, ...] of the given rank. */
static int positions(Derive *d, int rank, const Node *like)
{
    if (d->ids[rank] < 0)
        d->ids[rank] = rows_input(d, d->pos, rank, like);
    return d->ids[rank];
}

/* Position-only node x (tag_pos) and what it is made of, at full length,
 * in the prep graph. */
static int prep_cone(Derive *d, int x)
{
    if (d->in_prep[x] >= 0)
        return d->in_prep[x];
    const Node *n = &d->g->nodes[x];
    Node c = *n;
    for (int k = 0; k < op_info[n->op].arity; k++)
        c.in[k] = prep_cone(d, n->in[k]);
    return d->in_prep[x] = add(d, &d->m->prep, c);
}

/* Position-only node x as a step node of rank R (batch first) reads it,
 * aligned right: each row's own value, [b, 1, ..., x's last dim].
 *   - the causal mask [m, m]: row r sees keys 0..position[r], which is a
 *     padding mask of length position + 1 (the rows' lengths);
 *   - anything else [1, ..., 1, m, D] (a position encoding): prep
 *     computes it at the full length as a table [m, D] (a state), and the
 *     step gathers each row's position from it. */
static int ref_rows(Derive *d, int x, int R)
{
    const Node *n = &d->g->nodes[x];
    Node like = *n;
    int r = n->shape.rank;
    if (R < 3) {
        fail(d, "a target-position value read without a batch dim");
        return -1;
    }
    if (n->op == OP_CAUSAL_MASK) {
        if (d->lengths < 0)
            d->lengths = rows_input(d, d->msym, 1, n);
        Node pm = { .op = OP_PAD_MASK, .in = { d->lengths }, .dtype = DT_F32, .shape = { R, { { 0, d->bsym } } },
                    .loc = n->loc, .site = n->site };
        for (int k = 1; k < R - 1; k++)
            pm.shape.d[k] = dim_const(1);
        pm.shape.d[R - 1] = n->shape.d[1];
        return add(d, &d->m->step, pm);
    }
    bool rows = r >= 2 && d->info[x].role[r - 2] == R_Q && d->info[x].role[r - 1] != R_Q;
    for (int k = 0; rows && k < r - 2; k++)
        rows = n->shape.d[k].sym < 0 && n->shape.d[k].n == 1;
    if (!rows) {
        fail(d, "a target-position value that is not [positions, width] (after dims of 1)");
        return -1;
    }
    Shape ts = { 2, { n->shape.d[r - 2], n->shape.d[r - 1] } };
    if (d->in_step[x] < 0) {   /* the table: its state in prep, read by the step */
        int k = new_state(d, ts, false);
        int s = state_input(d, &d->m->prep, n, ts, k);
        int v = prep_cone(d, x);
        if (r > 2) {   /* [1, ..., m, D] -> [m, D] */
            Node rs = { .op = OP_RESHAPE, .in = { v }, .dtype = DT_F32, .shape = ts, .loc = n->loc, .site = n->site };
            v = add(d, &d->m->prep, rs);
        }
        Node st = { .op = OP_STORE, .in = { s, v, s }, .dtype = DT_F32, .shape = ts,
                    .loc = n->loc, .site = n->site };
        st.attr.store.state = k, st.attr.store.axis = -1;
        d->m->prep.output = add(d, &d->m->prep, st);
        d->in_step[x] = state_input(d, &d->m->step, n, ts, k);
    }
    like.op = OP_GATHER, like.dtype = DT_F32;
    like.in[0] = d->in_step[x], like.in[1] = positions(d, R - 1, n);
    like.shape = d->m->step.nodes[like.in[1]].shape;
    like.shape.rank = R;
    like.shape.d[R - 1] = ts.d[1];
    return add(d, &d->m->step, like);
}

/* Node x read with its Q dim `axis` as K: its cache, x's row appended. */
static int ref_cache(Derive *d, int x, int axis)
{
    if (d->cache[x] >= 0)
        return d->cache[x];
    if (d->info[x].pos) {
        fail(d, "a target-position value read as a cache");
        return -1;
    }
    const Node *n = &d->g->nodes[x];
    Shape s = step_shape(n, &d->info[x]);
    s.d[axis] = n->shape.d[axis];                /* the target length: the cache's */
    int k = new_state(d, s, true);
    int in = state_input(d, &d->m->step, n, s, k);
    bool shared = s.d[0].sym != d->bsym;   /* no batch: every row's position is row 0's */
    if (shared && !d->shared) {
        fail(d, "a cached value whose first dim is not the batch");
        return -1;
    }
    Node st = { .op = OP_STORE, .in = { in, ref_step(d, x), positions(d, 1, n) }, .dtype = DT_F32, .shape = s,
                .loc = n->loc, .site = n->site };
    st.attr.store.state = k, st.attr.store.axis = axis;   /* row r at its position */
    st.attr.store.shared = shared;
    return d->cache[x] = add(d, &d->m->step, st);
}

static int sym_of_role(const Model *m, SymRole r)
{
    for (int i = 0; i < m->nsyms; i++)
        if (m->syms[i].role == r)
            return i;
    return -1;
}

/* The step, each row at a position of its own (or, shared, all rows at
 * position t, as a batch decoded from its start has them). *pos_fail: it
 * failed over a position value that could not be read per row. */
static bool derive(Arena *a, Model *m, bool shared, bool *pos_fail)
{
    Derive d = { .a = a, .m = m, .g = &m->dec, .shared = shared };
    *pos_fail = false;
    d.msym = sym_of_role(m, SYM_TGT_LEN);
    d.bsym = sym_of_role(m, SYM_BATCH);
    int n = m->dec.n;
    m->prep = (Graph){ .name = "prep", .output = -1 };
    m->step = (Graph){ .name = "step", .output = -1 };
    m->nstates = 0;
    m->states = arena_alloc(a, sizeof(State) * (size_t)(n + 1));   /* at most one per node */
    if (d.msym < 0 || m->dec.output < 0) {
        m->no_step = "the decoder has no target length";
        return false;
    }
    if (m->nsyms >= SYM_MODEL_MAX) {
        m->no_step = "too many symbols";
        return false;
    }
    d.info = arena_alloc(a, sizeof(Info) * (size_t)(n + 1));
    d.conv = arena_alloc(a, sizeof(int[2]) * (size_t)(n + 1));
    d.in_step = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    d.in_prep = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    d.cache = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        d.in_step[i] = d.in_prep[i] = d.cache[i] = -1;
        if (!tag(&d, i)) {
            m->no_step = d.why;
            return false;
        }
        if (!shared)
            tag_pos(&d, i);
    }
    if (!d.info[m->dec.output].dep) {
        m->no_step = "the decoder's output does not depend on the target words";
        return false;
    }
    if (d.info[m->dec.output].pos) {
        m->no_step = "the decoder's output depends on the target length alone";
        *pos_fail = true;
        return false;
    }
    d.pos = m->nsyms;
    m->syms[m->nsyms++] = (Symbol){ "t", SYM_STEP_POS };
    d.lengths = -1;
    for (int r = 0; r <= MAX_RANK; r++)
        d.ids[r] = -1;
    for (int i = 0; i < n; i++) {
        const Node *nd = &m->dec.nodes[i];
        Node c = *nd;
        int ar = op_info[nd->op].arity;
        if (nd->op == OP_PARAM)
            continue;                               /* added where read */
        if (!d.info[i].dep) {                       /* once per sentence */
            for (int k = 0; k < ar; k++) {
                int x = nd->in[k];
                if (m->dec.nodes[x].op == OP_PARAM && d.in_prep[x] < 0)
                    d.in_prep[x] = add(&d, &m->prep, m->dec.nodes[x]);
                c.in[k] = d.in_prep[x];
            }
            d.in_prep[i] = add(&d, &m->prep, c);
            continue;
        }
        if (d.info[i].pos)
            continue;                               /* read per row where used: ref_rows */
        c.shape = step_shape(nd, &d.info[i]);
        for (int k = 0; k < ar; k++) {
            int x = nd->in[k];
            if (d.info[x].pos && (op_info[nd->op].kind != OPK_BINARY || c.shape.d[0].sym != d.bsym))
                c.in[k] = (fail(&d, "a target-position value read by %s", op_info[nd->op].text), -1);
            else if (d.info[x].pos)
                c.in[k] = ref_rows(&d, x, c.shape.rank);
            else
                c.in[k] = d.conv[i][k] >= 0 ? ref_cache(&d, x, d.conv[i][k]) : ref_step(&d, x);
            if (c.in[k] < 0) {
                m->no_step = d.why;
                *pos_fail = true;   /* every failure here is a position value's (ref_rows, ref_cache) */
                m->prep = (Graph){ .name = "prep", .output = -1 };
                m->step = (Graph){ .name = "step", .output = -1 };
                m->nstates = 0;
                m->nsyms--;                         /* t: no step reads it */
                return false;
            }
        }
        if (shared && (nd->op == OP_ARANGE || nd->op == OP_CAUSAL_MASK) && d.info[i].role[0] == R_Q)
            c.attr.offset = d.pos + 1;              /* every row at position t */
        d.in_step[i] = add(&d, &m->step, c);
    }
    m->step.output = d.in_step[m->dec.output];
    /* prep took every node that does not depend on the target words; keep
     * what fills a state (with no state, there is nothing to prepare) */
    m->prep = m->nstates ? pass_dce(a, &m->prep) : (Graph){ .name = "prep", .output = -1 };
    m->no_step = NULL;
    return true;
}

bool derive_step(Arena *a, Model *m)
{
    bool pos_fail;
    m->step_shared = false;
    if (derive(a, m, false, &pos_fail))
        return true;
    if (!pos_fail)
        return false;
    /* a position value the rows cannot read each at its own position (a
     * matmul of it with the hidden state, ...): a step whose rows share
     * one, which batches decode with but continuous batching cannot */
    const char *why = m->no_step;
    if (!derive(a, m, true, &pos_fail)) {
        m->no_step = why;
        return false;
    }
    m->step_shared = true;
    return true;
}
