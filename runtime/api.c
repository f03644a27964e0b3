/* api.c - the embedding API of include/vamos/vamos.h: an opaque
 * translator over a linked model, its session and its options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vamos/translate.h"
#include "vamos/vamos.h"

struct vamos_translator {
    vamos_model m;
    vamos_session *s;
    vamos_opts o;
};

static int range(const char *what, int v, int lo, int hi, char *err, size_t errlen)
{
    if (v == 0 || (v >= lo && v <= hi))
        return 0;
    snprintf(err, errlen, "vamos_settings.%s is %d; it takes %d..%d (0: the default)", what, v, lo, hi);
    return -1;
}

vamos_translator *vamos_open(const vamos_linked_model *lm, const vamos_settings *st, char *err, size_t errlen)
{
    vamos_settings none = { 0 };
    if (!st)
        st = &none;
    if (!lm || !lm->blob || !lm->encoder || !lm->decoder) {
        snprintf(err, errlen, "not a linked model (NULL blob or graphs)");
        return NULL;
    }
    if (range("beam", st->beam, 1, VAMOS_MAX_BEAM, err, errlen) || range("max_len", st->max_len, 1, 100000, err, errlen) ||
        range("batch", st->batch, 1, 4096, err, errlen) || range("refill", st->refill, 1, 100, err, errlen))
        return NULL;
    if (vamos_cpu_check(lm->cpu ? lm->cpu : "", err, errlen))
        return NULL;
    vamos_translator *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const vamos_kernel_fn fns[4] = { lm->encoder, lm->decoder, lm->prep, lm->step };
    if (vamos_model_open(&t->m, lm->blob, 0, fns, err, errlen)) {
        free(t);
        return NULL;
    }
    t->s = vamos_session_new(&t->m);
    if (!t->s) {
        snprintf(err, errlen, "out of memory");
        vamos_model_close(&t->m);
        free(t);
        return NULL;
    }
    t->o = (vamos_opts){ .beam = st->beam, .max_len = st->max_len,
                         .batch_rows = st->batch ? st->batch : VAMOS_DEFAULT_BATCH, .refill = st->refill };
    return t;
}

const char *vamos_name(const vamos_translator *t)
{
    return t->m.name;
}

char *vamos_translate_text(vamos_translator *t, const char *text, char *err, size_t errlen)
{
    return vamos_translate(t->s, text ? text : "", &t->o, NULL, err, errlen);
}

int vamos_translate_lines(vamos_translator *t, const char *const *texts, int count, char **outs,
                          char *err, size_t errlen)
{
    if (count < 0 || (count > 0 && (!texts || !outs))) {
        snprintf(err, errlen, "vamos_translate_lines: %d sentences and no array", count);
        return -1;
    }
    for (int i = 0; i < count; i++)
        if (!texts[i]) {
            snprintf(err, errlen, "vamos_translate_lines: sentence %d is NULL", i);
            return -1;
        }
    return vamos_translate_batch(t->s, texts, count, &t->o, NULL, outs, err, errlen);
}

int vamos_translate_feed(vamos_translator *t, const vamos_feed *f, char *err, size_t errlen)
{
    if (!f || !f->next || !f->done) {
        snprintf(err, errlen, "vamos_translate_feed: no next() or done()");
        return -1;
    }
    return vamos_translate_stream(t->s, &t->o, f, err, errlen);
}

void vamos_close(vamos_translator *t)
{
    if (!t)
        return;
    vamos_session_free(t->s);
    vamos_model_close(&t->m);
    free(t);
}
