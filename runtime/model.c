/* model.c - read a model blob (format in include/vamos/model.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vamos/model.h"
#include "vamos/translate.h"
#include "bpe.h"

typedef struct Reader { const unsigned char *p; size_t n, at; bool bad; } Reader;

static const void *take(Reader *r, size_t k)
{
    if (r->bad || (r->n && k > r->n - r->at)) {
        r->bad = true;
        return NULL;
    }
    const void *x = r->p + r->at;
    r->at += k;
    return x;
}

static uint64_t get(Reader *r, size_t k)
{
    uint64_t v = 0;
    const void *x = take(r, k);
    if (x)
        memcpy(&v, x, k);
    return v;
}

static int32_t geti(Reader *r) { return (int32_t)(uint32_t)get(r, 4); }

static char *get_str(Reader *r)
{
    uint32_t len = (uint32_t)get(r, 4);
    const char *s = take(r, len);
    char *out = s ? malloc((size_t)len + 1) : NULL;
    if (!out) {
        r->bad = true;
        return NULL;
    }
    memcpy(out, s, len);
    out[len] = 0;
    return out;
}

static void read_vocab(Reader *r, vamos_vocab *v)
{
    v->n = geti(r);
    v->eos = geti(r), v->bos = geti(r), v->unk = geti(r), v->pad = geti(r);
    if (v->n < 0 || v->n > 10000000) {
        r->bad = true;
        return;
    }
    v->words = calloc((size_t)v->n + 1, sizeof *v->words);
    for (int i = 0; v->words && i < v->n && !r->bad; i++)
        v->words[i] = get_str(r);
    uint32_t len = (uint32_t)get(r, 4);
    const char *text = take(r, len);
    if (!text) {
        r->bad = true;
    } else if (len) {
        char err[160];
        v->bpe = vamos_bpe_parse(text, len, err, sizeof err);
        r->bad |= !v->bpe || vamos_bpe_size(v->bpe) != v->n;
    }
    if (!r->bad && !v->bpe && (!v->words || vamos_vocab_index(v)))   /* words: looked up by hash, not by a scan */
        r->bad = true;
}

static void read_graph(Reader *r, vamos_graph *g)
{
    g->n = geti(r);
    g->output = geti(r);
    g->nslots = geti(r);
    if (g->n < 0 || g->n > 10000000 || (g->output < 0 && g->n > 0) || g->output < -1 || g->output >= g->n || g->nslots < 0 || g->nslots > g->n) {
        r->bad = true;
        return;
    }
    g->nodes = calloc((size_t)g->n + 1, sizeof *g->nodes);
    for (int i = 0; g->nodes && i < g->n && !r->bad; i++) {
        vamos_node *n = &g->nodes[i];
        n->kind = (int)get(r, 1), n->dtype = (int)get(r, 1), n->rank = (int)get(r, 1), n->role = (int)get(r, 1);
        n->sym = geti(r), n->param = geti(r), n->slot = geti(r);
        if (n->rank > VAMOS_BLOB_RANK || n->slot < -1 || n->slot >= g->nslots || n->kind > VAMOS_NODE_STATE ||
            (n->slot < 0) != (n->kind == VAMOS_NODE_PARAM || n->kind == VAMOS_NODE_STATE)) {
            r->bad = true;
            return;
        }
        for (int k = 0; k < n->rank; k++) {
            n->dim[k] = (int64_t)get(r, 8);
            n->dsym[k] = geti(r);
        }
    }
}

static void read_states(Reader *r, vamos_model *m)
{
    m->nstates = geti(r);
    if (m->nstates < 0 || m->nstates > 100000) {
        r->bad = true;
        return;
    }
    m->states = calloc((size_t)m->nstates + 1, sizeof *m->states);
    for (int k = 0; m->states && k < m->nstates && !r->bad; k++) {
        vamos_state *s = &m->states[k];
        s->rank = (int)get(r, 1), s->cache = (int)get(r, 1), s->batch_axis = geti(r);
        if (s->rank > VAMOS_BLOB_RANK || s->batch_axis < -1 || s->batch_axis >= s->rank) {
            r->bad = true;
            return;
        }
        for (int i = 0; i < s->rank; i++) {
            s->dim[i] = (int64_t)get(r, 8);
            s->dsym[i] = geti(r);
            if (s->dsym[i] >= m->nsyms || (s->dsym[i] < 0 && s->dim[i] < 0))
                r->bad = true;
        }
    }
    if (!m->states)
        r->bad = true;
}

/* Every node's symbols and weight or state index in range. */
static bool graph_ok(const vamos_model *m, const vamos_graph *g)
{
    for (int i = 0; g->nodes && i < g->n; i++) {
        const vamos_node *n = &g->nodes[i];
        if ((n->kind == VAMOS_NODE_PARAM && (n->param < 0 || n->param >= m->nparams)) ||
            (n->kind == VAMOS_NODE_STATE && (n->param < 0 || n->param >= m->nstates)) ||
            (n->kind == VAMOS_NODE_INPUT && n->role == VAMOS_IN_LENGTHS && (n->sym < 0 || n->sym >= m->nsyms)))
            return false;
        for (int k = 0; k < n->rank; k++)
            if (n->dsym[k] >= m->nsyms || (n->dsym[k] < 0 && n->dim[k] < 0))
                return false;
    }
    return true;
}

int vamos_model_open(vamos_model *m, const unsigned char *blob, size_t size,
                     const vamos_kernel_fn fns[4], char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    Reader r = { blob, size, 0, false };
    const void *magic = take(&r, 8);
    if (!magic || memcmp(magic, "VAMOSBLB", 8) || get(&r, 4) != VAMOS_BLOB_VERSION) {
        snprintf(err, errlen, "the model blob is not a Vamos blob of version %d", VAMOS_BLOB_VERSION);
        return -1;
    }
    get(&r, 4);
    m->weights_hash = get(&r, 8);
    uint64_t weights_offset = get(&r, 8);
    m->name = get_str(&r);
    m->nsyms = geti(&r);
    if (m->nsyms < 0 || m->nsyms > VAMOS_MAX_SYMS)
        r.bad = true;
    for (int i = 0; i < m->nsyms && !r.bad; i++)
        m->sym_role[i] = geti(&r);
    read_vocab(&r, &m->src);
    read_vocab(&r, &m->tgt);
    read_graph(&r, &m->enc);
    read_graph(&r, &m->dec);
    m->has_step = geti(&r);
    if (m->has_step < 0 || m->has_step > 2)
        r.bad = true;
    if (m->has_step && !r.bad) {
        read_states(&r, m);
        read_graph(&r, &m->prep);
        read_graph(&r, &m->step);
    }
    m->nparams = geti(&r);
    if (m->nparams < 0 || m->nparams > 10000000)
        r.bad = true;
    m->params = r.bad ? NULL : calloc((size_t)m->nparams + 1, sizeof *m->params);
    for (int i = 0; m->params && i < m->nparams && !r.bad; i++) {
        uint64_t off = get(&r, 8), bytes = get(&r, 8);
        if (size && (weights_offset + off + bytes > size))
            r.bad = true;
        m->params[i] = (const float *)(blob + weights_offset + off);
    }
    const vamos_graph *gs[] = { &m->enc, &m->dec, &m->prep, &m->step };
    for (int k = 0; k < 4 && !r.bad; k++)
        r.bad |= !graph_ok(m, gs[k]);
    if (r.bad || !m->params) {
        snprintf(err, errlen, "the model blob is truncated or damaged");
        vamos_model_close(m);
        return -1;
    }
    m->run_enc = fns[0];
    m->run_dec = fns[1];
    m->run_prep = fns[2];
    m->run_step = fns[3];
    if (m->has_step && (!m->run_prep || !m->run_step))
        m->has_step = 0;      /* no code for the step: decode the long way */
    return 0;
}

static void free_vocab(vamos_vocab *v)
{
    for (int i = 0; v->words && i < v->n; i++)
        free(v->words[i]);
    free(v->words);
    free(v->index);
    vamos_bpe_free(v->bpe);
}

void vamos_model_close(vamos_model *m)
{
    free(m->name);
    free_vocab(&m->src);
    free_vocab(&m->tgt);
    free(m->enc.nodes);
    free(m->dec.nodes);
    free(m->prep.nodes);
    free(m->step.nodes);
    free(m->states);
    free(m->params);
    memset(m, 0, sizeof *m);
}
