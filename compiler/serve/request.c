/* request.c - LibreTranslate request bodies (see request.h). */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int add_q(Request *r, const char *s, size_t n, char *err, size_t errlen)
{
    if (r->nq >= REQUEST_MAX_Q) {
        snprintf(err, errlen, "q holds more than %d strings", REQUEST_MAX_Q);
        return -1;
    }
    if (memchr(s, 0, n) || !json_utf8_valid(s, n)) {
        snprintf(err, errlen, "q is not valid UTF-8 text");
        return -1;
    }
    char **q = realloc(r->q, sizeof *q * (size_t)(r->nq + 1));
    char *d = q ? dup_n(s, n) : NULL;
    if (q)
        r->q = q;
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->q[r->nq++] = d;
    return 0;
}

/* The string fields other than q; NULL for a field that is not one. */
static char **field(Request *r, const char *key)
{
    return !strcmp(key, "source") ? &r->source : !strcmp(key, "target") ? &r->target
         : !strcmp(key, "format") ? &r->format : !strcmp(key, "api_key") ? &r->api_key : NULL;
}

static int set_field(char **f, const char *key, const char *s, size_t n, char *err, size_t errlen)
{
    if (memchr(s, 0, n) || !json_utf8_valid(s, n)) {
        snprintf(err, errlen, "%s is not valid UTF-8 text", key);
        return -1;
    }
    free(*f);
    *f = dup_n(s, n);
    if (!*f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int request_from_json(Request *r, const char *body, size_t len, char *err, size_t errlen)
{
    json_value v;
    char jerr[160];
    if (json_parse(body, len, 8, &v, jerr, sizeof jerr)) {
        snprintf(err, errlen, "the body is not JSON: %s", jerr);
        return -1;
    }
    int rc = 0;
    if (v.kind != JSON_OBJECT) {
        snprintf(err, errlen, "the body must be a JSON object");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < (v.kind == JSON_OBJECT ? v.len : 0); i++) {
        const json_member *m = &v.u.members[i];
        const json_value *x = &m->value;
        if (!strcmp(m->key, "q")) {
            if (r->nq > 0)
                continue;   /* the first q wins, as json_get would */
            if (x->kind == JSON_STRING) {
                rc = add_q(r, x->u.str, x->len, err, errlen);
            } else if (x->kind == JSON_ARRAY) {
                r->q_array = true;
                for (size_t k = 0; rc == 0 && k < x->len; k++) {
                    if (x->u.items[k].kind != JSON_STRING) {
                        snprintf(err, errlen, "q[%zu] must be a string", k);
                        rc = -1;
                    } else {
                        rc = add_q(r, x->u.items[k].u.str, x->u.items[k].len, err, errlen);
                    }
                }
            } else {
                snprintf(err, errlen, "q must be a string or an array of strings");
                rc = -1;
            }
            continue;
        }
        char **f = field(r, m->key);
        if (!f || *f)
            continue;   /* unknown fields are ignored; the first of a repeated one wins */
        if (x->kind == JSON_NULL)
            continue;
        if (x->kind != JSON_STRING) {
            snprintf(err, errlen, "%s must be a string", m->key);
            rc = -1;
        } else {
            rc = set_field(f, m->key, x->u.str, x->len, err, errlen);
        }
    }
    json_free(&v);
    return rc;
}

int request_from_field(Request *r, const char *key, const char *value, size_t len, char *err, size_t errlen)
{
    if (!strcmp(key, "q")) {
        if (r->nq == 1)
            r->q_array = true;   /* q=a&q=b */
        return add_q(r, value, len, err, errlen);
    }
    char **f = field(r, key);
    if (!f)
        return 0;
    return set_field(f, key, value, len, err, errlen);
}

int request_check(const Request *r, char *err, size_t errlen)
{
    if (r->nq == 0 || (!r->q_array && !r->q[0][0])) {
        snprintf(err, errlen, "Invalid request: missing q parameter");
        return -1;
    }
    if (!r->source || !r->source[0]) {
        snprintf(err, errlen, "Invalid request: missing source parameter");
        return -1;
    }
    if (!r->target || !r->target[0]) {
        snprintf(err, errlen, "Invalid request: missing target parameter");
        return -1;
    }
    if (r->format && strcmp(r->format, "text") && strcmp(r->format, "html")) {
        snprintf(err, errlen, "Invalid request: format must be text or html, not %.40s", r->format);
        return -1;
    }
    return 0;
}

long request_chars(const Request *r)
{
    long n = 0;
    for (int i = 0; i < r->nq; i++)
        for (const unsigned char *p = (const unsigned char *)r->q[i]; *p; p++)
            n += (*p & 0xC0) != 0x80;
    return n;
}

void request_free(Request *r)
{
    for (int i = 0; i < r->nq; i++)
        free(r->q[i]);
    free(r->q);
    free(r->source), free(r->target), free(r->format), free(r->api_key);
    memset(r, 0, sizeof *r);
}
