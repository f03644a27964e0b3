/* translate.c - run compiled graphs, tokenise, decode (greedy). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vamos/translate.h"

#define IN_MEMORY (1 + VAMOS_MAX_SYMS)

struct vamos_session {
    const vamos_model *m;
};

vamos_session *vamos_session_new(const vamos_model *m)
{
    vamos_session *s = calloc(1, sizeof *s);
    if (s)
        s->m = m;
    return s;
}

void vamos_session_free(vamos_session *s) { free(s); }

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int64_t node_numel(const vamos_node *n, const int64_t *sym)
{
    int64_t c = 1;
    for (int k = 0; k < n->rank; k++)
        c *= n->dsym[k] >= 0 ? sym[n->dsym[k]] : n->dim[k];
    return c;
}

int vamos_run_graph(const vamos_model *m, const vamos_graph *g, vamos_kernel_fn fn,
                    const int64_t *sym, const void *const *inputs, float **out, int64_t *out_n,
                    char *err, size_t errlen)
{
    void **buf = calloc((size_t)g->n + 1, sizeof *buf);
    int rc = buf ? 0 : -1;
    for (int i = 0; i < g->n && rc == 0; i++) {
        const vamos_node *n = &g->nodes[i];
        if (n->kind == VAMOS_NODE_PARAM) {
            buf[i] = (void *)m->params[n->param];
            continue;
        }
        int64_t count = node_numel(n, sym);
        buf[i] = malloc((size_t)(count ? count : 1) * 4);
        if (!buf[i]) {
            rc = -1;
            break;
        }
        if (n->kind == VAMOS_NODE_INPUT) {
            int slot = n->role == VAMOS_IN_TOKENS ? 0 : n->role == VAMOS_IN_LENGTHS ? 1 + n->sym : IN_MEMORY;
            if (!inputs[slot]) {
                snprintf(err, errlen, "internal error: an input of the graph was not given");
                rc = -1;
                break;
            }
            memcpy(buf[i], inputs[slot], (size_t)count * 4);
        }
    }
    if (rc == 0 && fn(buf, sym)) {
        snprintf(err, errlen, "internal error: a token id is outside its embedding table");
        rc = -1;
    }
    if (rc == 0) {
        const vamos_node *o = &g->nodes[g->output];
        *out_n = node_numel(o, sym);
        if (o->kind == VAMOS_NODE_PARAM) {
            *out = malloc((size_t)*out_n * 4 + 4);
            memcpy(*out, buf[g->output], (size_t)*out_n * 4);
        } else {
            *out = buf[g->output];
            buf[g->output] = NULL;
        }
    } else if (!err[0]) {
        snprintf(err, errlen, "out of memory");
    }
    for (int i = 0; buf && i < g->n; i++)
        if (g->nodes[i].kind != VAMOS_NODE_PARAM)
            free(buf[i]);
    free(buf);
    return rc;
}

static int find_word(const vamos_vocab *v, const char *w)
{
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->words[i], w))
            return i;
    return -1;
}

int vamos_tokenize(const vamos_vocab *v, const char *text, int32_t *ids, int max)
{
    int n = 0;
    char word[256], lower[256];
    for (const char *p = text; *p && n < max;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        size_t len = 0;
        while (p[len] && !isspace((unsigned char)p[len]))
            len++;
        if (!len)
            break;
        size_t k = len < sizeof word - 1 ? len : sizeof word - 1;
        memcpy(word, p, k);
        word[k] = 0;
        for (size_t i = 0; i <= k; i++)
            lower[i] = (char)tolower((unsigned char)word[i]);
        int id = find_word(v, word);
        if (id < 0)
            id = find_word(v, lower);
        if (id < 0)
            id = v->unk;
        if (id >= 0)
            ids[n++] = id;
        p += len;
    }
    return n;
}

static int sym_of(const vamos_model *m, int role)
{
    for (int i = 0; i < m->nsyms; i++)
        if (m->sym_role[i] == role)
            return i;
    return 0;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Greedy decoding of one sentence of n source ids into out (<= max). */
static int greedy(const vamos_model *m, const int32_t *src, int n, int max, int32_t *out,
                  vamos_stats *st, char *err, size_t errlen)
{
    int64_t sym[VAMOS_MAX_SYMS] = { 0 };
    int sb = sym_of(m, VAMOS_SYM_BATCH), sn = sym_of(m, VAMOS_SYM_SRC_LEN), sm = sym_of(m, VAMOS_SYM_TGT_LEN);
    int32_t slen = n;
    sym[sb] = 1, sym[sn] = n;
    const void *in[2 + VAMOS_MAX_SYMS] = { 0 };
    in[0] = src;
    in[1 + sn] = &slen;
    float *mem;
    int64_t mem_n;
    double t0 = now_ms();
    if (vamos_run_graph(m, &m->enc, m->run_enc, sym, in, &mem, &mem_n, err, errlen))
        return -1;
    double t1 = now_ms();
    int32_t *prefix = malloc(sizeof(int32_t) * (size_t)(max + 1));
    if (!prefix) {
        free(mem);
        return -1;
    }
    prefix[0] = m->tgt.bos >= 0 ? m->tgt.bos : m->tgt.eos;
    int count = 0, rc = 0;
    in[IN_MEMORY] = mem;
    while (count < max) {
        int32_t tlen = count + 1;
        sym[sm] = tlen;
        in[0] = prefix;
        in[1 + sm] = &tlen;
        float *logits;
        int64_t ln;
        if (vamos_run_graph(m, &m->dec, m->run_dec, sym, in, &logits, &ln, err, errlen)) {
            rc = -1;
            break;
        }
        int next = argmax(logits + (size_t)count * (size_t)m->tgt.n, m->tgt.n);
        free(logits);
        if (next == m->tgt.eos)
            break;
        out[count] = next;
        prefix[++count] = next;
    }
    if (st) {
        st->enc_ms += t1 - t0;
        st->dec_ms += now_ms() - t1;
        st->tgt_tokens += count;
    }
    free(prefix);
    free(mem);
    return rc ? -1 : count;
}

char *vamos_translate(vamos_session *s, const char *text, const vamos_opts *o,
                      vamos_stats *st, char *err, size_t errlen)
{
    const vamos_model *m = s->m;
    int max_src = o && o->max_src ? o->max_src : 1024;
    int32_t *src = malloc(sizeof(int32_t) * (size_t)max_src);
    if (!src)
        return NULL;
    int n = vamos_tokenize(&m->src, text, src, max_src);
    int max_len = o && o->max_len ? o->max_len : 2 * n + 10;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(max_len + 1));
    int t = 0;
    if (ids && n > 0)
        t = greedy(m, src, n, max_len, ids, st, err, errlen);
    if (st) {
        st->sentences++;
        st->src_tokens += n;
    }
    size_t len = 1;
    for (int i = 0; t > 0 && i < t; i++)
        len += strlen(m->tgt.words[ids[i]]) + 1;
    char *line = t >= 0 && ids ? malloc(len) : NULL;
    if (line) {
        line[0] = 0;
        for (int i = 0; i < t; i++) {
            if (i)
                strcat(line, " ");
            strcat(line, m->tgt.words[ids[i]]);
        }
    }
    free(src);
    free(ids);
    return line;
}
