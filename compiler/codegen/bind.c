/* bind.c - match a weights file to a model's parameters, and initialise
 * weights deterministically. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "compile.h"

#define BIND_MAX_REPORTS 10

static const char *tshape_str(char *buf, size_t len, const int64_t *dims, int rank)
{
    int k = snprintf(buf, len, "[");
    for (int i = 0; i < rank && k < (int)len - 24; i++)
        k += snprintf(buf + k, len - (size_t)k, "%s%lld", i ? ", " : "", (long long)dims[i]);
    snprintf(buf + k, len - (size_t)k, "]");
    return buf;
}

/* Check one weight of the model against the file. */
static bool bind_one(const Model *m, int i, const vamos_weights *w, const char *path,
                     float **slot, char *msg, size_t len)
{

    const ParamInfo *p = &m->params[i];
    int64_t want[MAX_RANK];
    for (int k = 0; k < p->shape.rank; k++)
        want[k] = p->shape.d[k].n;
    char a[128], b[128];
    const vamos_tensor *t = vamos_weights_find(w, p->name);
    if (!t) {
        snprintf(msg, len, "vamos: error: %s: tensor '%s' is missing (the model declares %s)\n", path,
                p->name, tshape_str(a, sizeof a, want, p->shape.rank));
        return false;
    }
    if (t->dtype != VAMOS_F32) {
        snprintf(msg, len, "vamos: error: %s: tensor '%s' is I32, but weights are F32\n", path, p->name);
        return false;
    }
    bool same = t->rank == p->shape.rank;
    for (int k = 0; same && k < t->rank; k++)
        same = t->shape[k] == want[k];
    if (!same) {
        snprintf(msg, len, "vamos: error: %s: tensor '%s' has shape %s, but the model declares %s\n", path,
                p->name, tshape_str(a, sizeof a, t->shape, t->rank),
                tshape_str(b, sizeof b, want, p->shape.rank));
        return false;
    }
    *slot = (float *)t->data;
    return true;
}

int bind_weights(const Model *m, const char *path, Bound *out, FILE *errs)
{
    char err[512];
    memset(out, 0, sizeof *out);
    out->w = vamos_weights_load(path, 0, err, sizeof err);
    if (!out->w) {
        fprintf(errs, "vamos: error: %s\n", err);
        return -1;
    }
    out->params = calloc((size_t)m->nparams + 1, sizeof(float *));
    if (!out->params) {
        bound_free(out);
        return -1;
    }
    /* report every problem, up to a point: a wrong file usually has many */
    int problems = 0;
    char msg[1024];
    for (int i = 0; i < m->nparams; i++)
        if (!bind_one(m, i, out->w, path, &out->params[i], msg, sizeof msg) && problems++ < BIND_MAX_REPORTS)
            fputs(msg, errs);
    for (int i = 0; i < vamos_weights_count(out->w); i++) {
        const char *name = vamos_weights_at(out->w, i)->name;
        bool known = false;
        for (int k = 0; k < m->nparams && !known; k++)
            known = !strcmp(m->params[k].name, name);
        if (!known && problems++ < BIND_MAX_REPORTS)
            fprintf(errs, "vamos: error: %s: unexpected tensor '%s' (model '%s' has no such weight)\n",
                    path, name, m->name);
    }
    if (problems > BIND_MAX_REPORTS)
        fprintf(errs, "vamos: error: %s: %d more problems not shown\n", path, problems - BIND_MAX_REPORTS);
    bool ok = problems == 0;
    if (!ok)
        bound_free(out);
    return ok ? 0 : -1;
}

void bound_free(Bound *b)
{
    vamos_weights_free(b->w);
    free(b->params);
    memset(b, 0, sizeof *b);
}

/* splitmix64: a small, well-known generator; deterministic across machines. */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return (double)(next(s) >> 11) * 0x1.0p-53; }

static void fill(const ParamInfo *p, float *x, int64_t n, uint64_t *rng)
{
    int r = p->shape.rank;
    double fan_in = r >= 2 ? (double)p->shape.d[r - 2].n : (double)p->shape.d[0].n;
    double fan_out = (double)p->shape.d[r - 1].n;
    double limit = sqrt(6.0 / (fan_in + fan_out));
    for (int64_t i = 0; i < n; i++) {
        switch (p->init) {
        case INIT_XAVIER: x[i] = (float)((2 * uniform01(rng) - 1) * limit); break;
        case INIT_ZEROS: x[i] = 0; break;
        case INIT_ONES: x[i] = 1; break;
        case INIT_NORMAL: {
            double u = uniform01(rng) + 1e-300, v = uniform01(rng);
            x[i] = (float)(0.02 * sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
            break;
        }
        }
    }
}

int init_weights(const Model *m, const char *path, uint64_t seed, char *err, size_t errlen)
{
    vamos_tensor *t = calloc((size_t)m->nparams + 1, sizeof *t);
    int rc = t ? 0 : -1;
    uint64_t rng = seed;
    for (int i = 0; rc == 0 && i < m->nparams; i++) {
        const ParamInfo *p = &m->params[i];
        int64_t n = shape_numel_const(&p->shape);
        float *x = malloc((size_t)n * sizeof(float));
        if (!x) {
            snprintf(err, errlen, "out of memory for weight '%s'", p->name);
            rc = -1;
            break;
        }
        fill(p, x, n, &rng);
        t[i] = (vamos_tensor){ .name = p->name, .dtype = VAMOS_F32, .rank = p->shape.rank,
                               .data = x, .nbytes = (size_t)n * 4 };
        for (int k = 0; k < p->shape.rank; k++)
            t[i].shape[k] = p->shape.d[k].n;
    }
    const char *meta[] = { "vamos.model", m->name };
    if (rc == 0)
        rc = vamos_weights_save(path, t, m->nparams, meta, 1, err, errlen);
    for (int i = 0; t && i < m->nparams; i++)
        free((void *)t[i].data);
    free(t);
    return rc;
}
