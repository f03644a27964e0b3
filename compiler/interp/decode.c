/* decode.c - tokenising and decoding with the reference interpreter. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "jit.h"
#include "vamos/translate.h"
#include "bpe.h"

int tokenize(const Vocab *v, const char *text, int32_t *ids, int max, char *err, size_t errlen)
{
    if (v->bpe) {   /* subwords: every line encodes (unknown characters as <unk>) */
        vamos_bpe *b = vamos_bpe_parse(v->bpe, v->bpe_len, err, errlen);
        int n = b ? vamos_bpe_encode(b, text, ids, max, NULL) : -1;
        vamos_bpe_free(b);
        return n;
    }
    const char *bad = NULL;
    int n = vamos_tokenize_words(v->words, v->n, v->unk, text, ids, max, true, &bad);
    if (n < 0) {
        int len = 0;
        while (bad[len] && !isspace((unsigned char)bad[len]) && len < 200)
            len++;
        snprintf(err, errlen, "'%.*s' is not in vocabulary '%s' (which has no <unk>)", len, bad, v->name);
    }
    return n;
}

char *detokenize_ids(const Vocab *v, const int32_t *ids, int n)
{
    if (v->bpe) {
        char err[160];
        vamos_bpe *b = vamos_bpe_parse(v->bpe, v->bpe_len, err, sizeof err);
        char *s = b ? vamos_bpe_decode(b, ids, n) : NULL;
        vamos_bpe_free(b);
        return s;
    }
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(v->words[ids[i]]) + 1;
    char *s = calloc(1, len);
    for (int i = 0; s && i < n; i++)
        strcat(strcat(s, i ? " " : ""), v->words[ids[i]]);
    return s;
}

int engine_run(const Engine *e, const Model *m, const Graph *g, float *const *params,
               const InterpInputs *in, Tensor *out, char *err, size_t errlen)
{
    if (e && e->jit)
        return jit_run(e->jit, m, g, params, in, out, err, errlen);
    return interp_run(m, g, params, in, out, err, errlen);
}

int run_batch(const Engine *eng, const Model *m, float *const *params, int batch,
              const int32_t *src, const int32_t *src_len, int n,
              const int32_t *tgt, const int32_t *tgt_len, int mlen,
              Tensor *enc_out, Tensor *dec_out, char *err, size_t errlen)
{
    InterpInputs in = { 0 };
    int sb = model_sym(m, SYM_BATCH), sn = model_sym(m, SYM_SRC_LEN), sm = model_sym(m, SYM_TGT_LEN);
    in.sym[sb] = batch;
    in.sym[sn] = n;
    if (sm >= 0)
        in.sym[sm] = mlen;
    in.tokens = src;
    in.lengths[sn] = src_len;
    if (sm >= 0)
        in.lengths[sm] = tgt_len;
    if (engine_run(eng, m, &m->enc, params, &in, enc_out, err, errlen))
        return -1;
    if (!tgt)
        return 0;
    in.tokens = tgt;
    in.memory = enc_out;
    if (engine_run(eng, m, &m->dec, params, &in, dec_out, err, errlen)) {
        tensor_free(enc_out);
        return -1;
    }
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

/* Re-run the decoder over the whole prefix each step: slow, obviously right. */
int greedy_decode(const Engine *eng, const Model *m, float *const *params, const int32_t *src, int n,
                  int max_len, int32_t *out, char *err, size_t errlen)
{
    const Vocab *t = m->tgt;
    int32_t len1 = n, *prefix = malloc(sizeof(int32_t) * (size_t)(max_len + 1));
    Tensor enc = { 0 }, dec = { 0 };
    if (!prefix || run_batch(eng, m, params, 1, src, &len1, n, NULL, NULL, 0, &enc, NULL, err, errlen)) {
        free(prefix);
        return -1;
    }
    prefix[0] = t->bos >= 0 ? t->bos : t->eos;
    int count = 0, rc = 0;
    InterpInputs in = { 0 };
    int sb = model_sym(m, SYM_BATCH), sn = model_sym(m, SYM_SRC_LEN), sm = model_sym(m, SYM_TGT_LEN);
    in.sym[sb] = 1;
    in.sym[sn] = n;
    in.lengths[sn] = &len1;
    in.memory = &enc;
    while (count < max_len) {
        int32_t mlen = count + 1;
        in.sym[sm] = mlen;
        in.lengths[sm] = &mlen;
        in.tokens = prefix;
        if (engine_run(eng, m, &m->dec, params, &in, &dec, err, errlen)) {
            rc = -1;
            break;
        }
        int next = argmax((float *)dec.data + (size_t)count * (size_t)t->n, t->n);
        tensor_free(&dec);
        if (next == t->eos)
            break;
        out[count] = next;
        prefix[++count] = next;
    }
    tensor_free(&enc);
    free(prefix);
    return rc ? -1 : count;
}
