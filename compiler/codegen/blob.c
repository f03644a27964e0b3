/* blob.c - a model as a blob (format in include/vamos/model.h): what a
 * built translator carries, and what the JIT hands the runtime. */
#include "blob.h"

#include <stdlib.h>
#include <string.h>

#include "passes.h"
#include "vamos/model.h"

static void put(Blob *b, const void *x, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}

static void u8(Blob *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void u32(Blob *b, uint32_t v) { put(b, &v, 4); }
static void i32(Blob *b, int32_t v) { put(b, &v, 4); }
static void u64(Blob *b, uint64_t v) { put(b, &v, 8); }
static void str(Blob *b, const char *s) { u32(b, (uint32_t)strlen(s)); put(b, s, strlen(s)); }
static void str_n(Blob *b, const char *s, size_t n) { u32(b, (uint32_t)n); put(b, s, n); }

static void vocab(Blob *b, const Vocab *v)
{
    u32(b, (uint32_t)v->n);
    i32(b, v->eos), i32(b, v->bos), i32(b, v->unk), i32(b, v->pad);
    for (int i = 0; i < v->n; i++)
        str(b, v->words[i]);
    str_n(b, v->bpe ? v->bpe : "", v->bpe ? v->bpe_len : 0);
}

/* The graph's memory plan: the plan stage's (reuse), else one buffer
 * per value (the JIT's node-by-node tests read every value). */
static void graph(Blob *b, const Graph *g, bool reuse)
{
    bool own = !reuse || !g->slot;
    int *slot = own ? malloc(sizeof(int) * (size_t)(g->n + 1)) : g->slot;
    int nslots = !own ? g->nslots : slot ? plan_memory(g, reuse, slot) : -1;
    if (nslots < 0) {
        if (own)
            free(slot);
        b->oom = true;
        return;
    }
    u32(b, (uint32_t)g->n);
    i32(b, g->output);
    u32(b, (uint32_t)nslots);
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        int kind = is_state(n) ? VAMOS_NODE_STATE : n->op == OP_INPUT ? VAMOS_NODE_INPUT
                 : n->op == OP_PARAM ? VAMOS_NODE_PARAM : VAMOS_NODE_COMPUTE;
        int index = n->op == OP_PARAM ? n->attr.param : n->op == OP_STORE ? n->attr.store.state
                  : kind == VAMOS_NODE_STATE ? n->attr.input.sym : -1;
        u8(b, (unsigned)kind), u8(b, n->dtype), u8(b, (unsigned)n->shape.rank);
        u8(b, n->op == OP_INPUT ? n->attr.input.role : 0);
        i32(b, n->op == OP_INPUT ? n->attr.input.sym : -1);
        i32(b, index);
        i32(b, slot[i]);
        for (int k = 0; k < n->shape.rank; k++) {
            u64(b, (uint64_t)n->shape.d[k].n);
            i32(b, n->shape.d[k].sym);
        }
    }
    if (own)
        free(slot);
}

int blob_make(const Model *m, const Bound *w, bool reuse, Blob *b)
{
    put(b, "VAMOSBLB", 8);
    u32(b, VAMOS_BLOB_VERSION), u32(b, 0);
    u64(b, w ? vamos_weights_hash(w->w) : 0);
    size_t weights_offset_at = b->n;
    u64(b, 0);
    str(b, m->name);
    u32(b, (uint32_t)m->nsyms);
    for (int i = 0; i < m->nsyms; i++)
        u32(b, m->syms[i].role);
    vocab(b, m->src);
    vocab(b, m->tgt);
    graph(b, &m->enc, reuse);
    graph(b, &m->dec, reuse);
    u32(b, m->step.n > 0 ? 1 + m->step_shared : 0);   /* 2: the rows share one position */
    if (m->step.n > 0) {
        u32(b, (uint32_t)m->nstates);
        for (int k = 0; k < m->nstates; k++) {
            const State *st = &m->states[k];
            u8(b, (unsigned)st->shape.rank), u8(b, st->cache);
            i32(b, st->batch_axis);
            for (int i = 0; i < st->shape.rank; i++) {
                u64(b, (uint64_t)st->shape.d[i].n);
                i32(b, st->shape.d[i].sym);
            }
        }
        graph(b, &m->prep, reuse);
        graph(b, &m->step, reuse);
    }
    u32(b, (uint32_t)m->nparams);
    uint64_t off = 0;
    for (int i = 0; i < m->nparams; i++) {
        uint64_t bytes = w ? (uint64_t)param_floats(&m->params[i]) * 4 : 0;
        u64(b, off), u64(b, bytes);
        off += (bytes + 63) & ~(uint64_t)63;
    }
    static const unsigned char zeros[64];
    put(b, zeros, (64 - b->n % 64) % 64);
    uint64_t wo = b->n;
    if (!b->oom)
        memcpy(b->p + weights_offset_at, &wo, 8);
    for (int i = 0; w && i < m->nparams; i++) {
        size_t bytes = (size_t)param_floats(&m->params[i]) * 4;
        if (m->params[i].packed || m->params[i].packed_t) {
            float *p = malloc(bytes);
            if (!p || pack_param(&m->params[i], w->params[i], p)) {
                free(p);
                return -1;
            }
            put(b, p, bytes);
            free(p);
        } else {
            put(b, w->params[i], bytes);
        }
        put(b, zeros, (64 - bytes % 64) % 64);
    }
    return b->oom ? -1 : 0;
}

