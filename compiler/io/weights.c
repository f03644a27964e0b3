/* weights.c - safetensors reader and writer with per-tensor XXH3 checksums.
 *
 * Loading reads the whole file into one buffer, parses the JSON header,
 * validates every entry, checks that the tensors tile the data blob exactly,
 * moves the blob to an aligned address if needed and verifies checksums.
 * Tensor names and metadata strings point into the parsed header, which the
 * vamos_weights owns.
 */
#define _POSIX_C_SOURCE 200809L
#include "vamos/weights.h"

#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define WEIGHTS_MAX_HEADER 100000000u /* same limit as the reference reader */
#define WEIGHTS_JSON_DEPTH 8          /* root, entry, shape: 3 are needed */
#define WEIGHTS_ALIGN 8               /* blob alignment in memory and file */
#define WEIGHTS_ELEM 4                /* bytes per element of F32 and I32 */
#define WEIGHTS_SUM_PREFIX "xxh3:"
#define WEIGHTS_SUM_PREFIX_LEN 5
#define WEIGHTS_SHOW 160              /* buffer for a name shown in a message */

struct vamos_weights {
    unsigned char *file;          /* file contents; blob moved to alignment */
    json_value header;            /* owns names and metadata strings */
    int n;
    vamos_tensor *tensors;        /* in data-offset order */
    const vamos_tensor **by_name; /* sorted by name */
    size_t n_meta;
    const json_member **meta;     /* __metadata__ members sorted by key */
    uint64_t hash;
};

/* Where messages go; every message starts with "PATH: ". */
typedef struct weights_ctx {
    const char *path;
    char *err;
    size_t errlen;
} weights_ctx;

/* One tensor entry of the header while loading. */
typedef struct weights_entry {
    vamos_tensor t;
    uint64_t begin, end; /* data_offsets, relative to the blob */
    size_t order;        /* position among the header's tensor entries */
} weights_entry;

/* Write "PATH: MSG" into the context's buffer and return -1. */
static int weights_fail(weights_ctx *c, const char *fmt, ...)
{
    if (!c->err || !c->errlen)
        return -1;
    int k = snprintf(c->err, c->errlen, "%s: ", c->path);
    if (k >= 0 && (size_t)k < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Printable form of s[0, n) for messages: control bytes as \xNN, long
 * strings cut (at a UTF-8 boundary) with "...". */
static const char *weights_show(const char *s, size_t n, char buf[WEIGHTS_SHOW])
{
    size_t o = 0, i = 0;
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int lead = (ch & 0xc0) != 0x80; /* prefer cutting before a lead byte */
        if (o + 12 >= WEIGHTS_SHOW && (lead || o + 8 >= WEIGHTS_SHOW))
            break;
        if (ch < 0x20 || ch == 0x7f)
            o += (size_t)snprintf(buf + o, WEIGHTS_SHOW - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    buf[o] = '\0';
    if (i < n)
        strcat(buf, "...");
    return buf;
}

/* Write "PATH: tensor 'NAME': MSG" and return -1. */
static int weights_tensor_fail(weights_ctx *c, const char *name, size_t len,
                               const char *fmt, ...)
{
    char shown[WEIGHTS_SHOW], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return weights_fail(c, "tensor '%s': %s", weights_show(name, len, shown),
                        msg);
}

/* 1 on a little-endian host (the file's byte order), else 0. */
static int weights_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Name of a dtype as written in headers. */
static const char *weights_dtype_name(vamos_dtype d)
{
    return d == VAMOS_I32 ? "I32" : "F32";
}

/* Format shape as "[2, 3]" into buf. */
static const char *weights_shape_str(const int64_t *shape, int rank,
                                     char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%" PRId64, i ? ", " : "",
                              shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
    return buf;
}

/* Element count of a shape (all dims >= 0); -1 if it needs more than
 * INT64_MAX bytes. */
static int64_t weights_numel(const int64_t *shape, int rank)
{
    int64_t numel = 1;
    for (int i = 0; i < rank; i++)
        if (shape[i] == 0)
            return 0;
    for (int i = 0; i < rank; i++) {
        if (numel > INT64_MAX / WEIGHTS_ELEM / shape[i])
            return -1;
        numel *= shape[i];
    }
    return numel;
}

/* What is wrong with a tensor name, or NULL if it is acceptable. */
static const char *weights_name_problem(const char *s, size_t n)
{
    if (n == 0)
        return "name is empty";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "name contains a control character";
    if (!json_utf8_valid(s, n))
        return "name is not valid UTF-8";
    if (n == 12 && memcmp(s, "__metadata__", 12) == 0)
        return "name __metadata__ is reserved";
    return NULL;
}

/* ---------------------------------------------------------------- loading */

/* Read the regular file f whole into a buffer with alignment slack. */
static int weights_read_all(weights_ctx *c, FILE *f, unsigned char **out,
                            size_t *size)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        return weights_fail(c, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return weights_fail(c, "not a regular file");
    if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX - WEIGHTS_ALIGN)
        return weights_fail(c, "file too large");
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n + WEIGHTS_ALIGN);
    if (!buf)
        return weights_fail(c, "out of memory reading %zu bytes", n);
    errno = 0;
    if (fread(buf, 1, n, f) != n || fgetc(f) != EOF) {
        int e = errno;
        free(buf);
        if (ferror(f))
            return weights_fail(c, "read error: %s", strerror(e ? e : EIO));
        return weights_fail(c, "file changed size while being read");
    }
    *out = buf;
    *size = n;
    return 0;
}

/* Read the file at c->path into *out (size in *size). */
static int weights_read_file(weights_ctx *c, unsigned char **out, size_t *size)
{
    FILE *f = fopen(c->path, "rb");
    if (!f)
        return weights_fail(c, "cannot open: %s", strerror(errno));
    int rc = weights_read_all(c, f, out, size);
    fclose(f);
    return rc;
}

/* Decode and sanity-check the 8-byte little-endian header length. */
static int weights_header_len(weights_ctx *c, const unsigned char *file,
                              size_t size, uint64_t *hlen)
{
    uint64_t h = 0;
    if (size < 8)
        return weights_fail(c, "file is %zu bytes, too short for the 8-byte"
                            " header length: truncated or not safetensors",
                            size);
    for (int i = 7; i >= 0; i--)
        h = (h << 8) | file[i];
    if (h > WEIGHTS_MAX_HEADER)
        return weights_fail(c, "header: length %" PRIu64 " is absurd (limit %u"
                            " bytes): not a safetensors file?", h,
                            WEIGHTS_MAX_HEADER);
    if (h > size - 8)
        return weights_fail(c, "header: length %" PRIu64 " runs past the end"
                            " of the file (%zu bytes): truncated?", h, size);
    *hlen = h;
    return 0;
}

/* 1 if member m's key is exactly the C string key. */
static int weights_key_is(const json_member *m, const char *key)
{
    return m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0;
}

/* qsort/bsearch order of metadata members by key. */
static int weights_cmp_meta(const void *a, const void *b)
{
    const json_member *x = *(const json_member *const *)a;
    const json_member *y = *(const json_member *const *)b;
    return strcmp(x->key, y->key);
}

/* Check one __metadata__ member: string value, no NUL bytes. */
static int weights_check_meta_member(weights_ctx *c, const json_member *m)
{
    char shown[WEIGHTS_SHOW];
    const char *k = weights_show(m->key, m->key_len, shown);
    if (m->value.kind != JSON_STRING)
        return weights_fail(c, "header: __metadata__ entry '%s' is not a"
                            " string", k);
    if (strlen(m->key) != m->key_len ||
        strlen(m->value.u.str) != m->value.len)
        return weights_fail(c, "header: __metadata__ entry '%s' contains a"
                            " NUL character", k);
    return 0;
}

/* Validate the __metadata__ object (may be NULL) and index it by key. */
static int weights_load_meta(weights_ctx *c, vamos_weights *w,
                             const json_value *meta)
{
    char shown[WEIGHTS_SHOW];
    if (!meta)
        return 0;
    if (meta->kind != JSON_OBJECT)
        return weights_fail(c, "header: __metadata__ is not a JSON object");
    if (meta->len == 0)
        return 0;
    w->meta = malloc(meta->len * sizeof *w->meta);
    if (!w->meta)
        return weights_fail(c, "out of memory");
    for (size_t i = 0; i < meta->len; i++) {
        if (weights_check_meta_member(c, &meta->u.members[i]) != 0)
            return -1;
        w->meta[i] = &meta->u.members[i];
    }
    w->n_meta = meta->len;
    qsort(w->meta, w->n_meta, sizeof *w->meta, weights_cmp_meta);
    for (size_t i = 1; i < w->n_meta; i++)
        if (strcmp(w->meta[i - 1]->key, w->meta[i]->key) == 0)
            return weights_fail(c, "header: __metadata__ key '%s' appears"
                                " twice", weights_show(w->meta[i]->key,
                                                       w->meta[i]->key_len,
                                                       shown));
    return 0;
}

/* Find the root's __metadata__ member (NULL if none) and count tensors. */
static int weights_scan_root(weights_ctx *c, const json_value *root,
                             const json_value **meta, size_t *n_tensors)
{
    *meta = NULL;
    *n_tensors = 0;
    for (size_t i = 0; i < root->len; i++) {
        const json_member *m = &root->u.members[i];
        if (!weights_key_is(m, "__metadata__")) {
            (*n_tensors)++;
        } else if (*meta) {
            return weights_fail(c, "header: __metadata__ appears twice");
        } else {
            *meta = &m->value;
        }
    }
    if (*n_tensors > INT_MAX)
        return weights_fail(c, "header: too many tensors");
    return 0;
}

/* Parse the "dtype" field of entry m. */
static int weights_parse_dtype(weights_ctx *c, const json_member *m,
                               const json_value *v, vamos_dtype *out)
{
    char shown[WEIGHTS_SHOW];
    if (v->kind != JSON_STRING)
        return weights_tensor_fail(c, m->key, m->key_len,
                                   "dtype is not a string");
    if (strcmp(v->u.str, "F32") == 0 && v->len == 3)
        *out = VAMOS_F32;
    else if (strcmp(v->u.str, "I32") == 0 && v->len == 3)
        *out = VAMOS_I32;
    else
        return weights_tensor_fail(c, m->key, m->key_len,
                                   "dtype %s is not supported (Vamos reads F32"
                                   " and I32)",
                                   weights_show(v->u.str, v->len, shown));
    return 0;
}

/* Parse the "shape" field of entry m into t->rank/t->shape. */
static int weights_parse_shape(weights_ctx *c, const json_member *m,
                               const json_value *v, vamos_tensor *t)
{
    if (v->kind != JSON_ARRAY)
        return weights_tensor_fail(c, m->key, m->key_len,
                                   "shape is not an array");
    if (v->len > VAMOS_MAX_RANK)
        return weights_tensor_fail(c, m->key, m->key_len,
                                   "shape has %zu dimensions, Vamos supports"
                                   " at most %d", v->len, VAMOS_MAX_RANK);
    for (size_t i = 0; i < v->len; i++) {
        const json_value *d = &v->u.items[i];
        if (d->kind != JSON_INT)
            return weights_tensor_fail(c, m->key, m->key_len,
                                       "shape[%zu] is not an integer", i);
        if (d->u.num < 0)
            return weights_tensor_fail(c, m->key, m->key_len,
                                       "shape[%zu] is %" PRId64 ", must be"
                                       " >= 0", i, d->u.num);
        t->shape[i] = d->u.num;
    }
    t->rank = (int)v->len;
    return 0;
}

/* Parse the "data_offsets" field of entry m into e->begin/end. */
static int weights_parse_offsets(weights_ctx *c, const json_member *m,
                                 const json_value *v, weights_entry *e)
{
    if (v->kind != JSON_ARRAY || v->len != 2)
        return weights_tensor_fail(c, m->key, m->key_len,
                                   "data_offsets is not an array [begin, end]");
    for (int i = 0; i < 2; i++) {
        const json_value *x = &v->u.items[i];
        if (x->kind != JSON_INT || x->u.num < 0)
            return weights_tensor_fail(c, m->key, m->key_len,
                                       "data_offsets[%d] is not an integer"
                                       " >= 0", i);
    }
    e->begin = (uint64_t)v->u.items[0].u.num;
    e->end = (uint64_t)v->u.items[1].u.num;
    if (e->end < e->begin)
        return weights_tensor_fail(c, m->key, m->key_len,
                                   "data_offsets [%" PRIu64 ", %" PRIu64 "]"
                                   " end before they begin", e->begin, e->end);
    return 0;
}

/* Pick the dtype/shape/data_offsets fields out of entry m, rejecting others. */
static int weights_entry_fields(weights_ctx *c, const json_member *m,
                                const json_value *f[3])
{
    static const char *const names[3] = {"dtype", "shape", "data_offsets"};
    char shown[WEIGHTS_SHOW];
    f[0] = f[1] = f[2] = NULL;
    for (size_t i = 0; i < m->value.len; i++) {
        const json_member *fm = &m->value.u.members[i];
        int k = 0;
        while (k < 3 && !weights_key_is(fm, names[k]))
            k++;
        if (k == 3)
            return weights_tensor_fail(c, m->key, m->key_len,
                                       "unknown field '%s'",
                                       weights_show(fm->key, fm->key_len,
                                                    shown));
        if (f[k])
            return weights_tensor_fail(c, m->key, m->key_len,
                                       "field %s appears twice", names[k]);
        f[k] = &fm->value;
    }
    for (int k = 0; k < 3; k++)
        if (!f[k])
            return weights_tensor_fail(c, m->key, m->key_len,
                                       "missing field %s", names[k]);
    return 0;
}

/* Check that e's byte range matches its dtype and shape and fits the blob. */
static int weights_check_size(weights_ctx *c, const json_member *m,
                              const weights_entry *e, uint64_t blob_len)
{
    char s[128];
    int64_t numel = weights_numel(e->t.shape, e->t.rank);
    weights_shape_str(e->t.shape, e->t.rank, s, sizeof s);
    if (numel < 0)
        return weights_tensor_fail(c, m->key, m->key_len,
                                   "shape %s has too many elements", s);
    uint64_t need = (uint64_t)numel * WEIGHTS_ELEM;
    if (e->end - e->begin != need)
        return weights_tensor_fail(c, m->key, m->key_len,
                                   "data_offsets [%" PRIu64 ", %" PRIu64 "]"
                                   " hold %" PRIu64 " bytes but %s %s needs"
                                   " %" PRIu64, e->begin, e->end,
                                   e->end - e->begin,
                                   weights_dtype_name(e->t.dtype), s, need);
    if (e->end > blob_len)
        return weights_tensor_fail(c, m->key, m->key_len,
                                   "data_offsets [%" PRIu64 ", %" PRIu64 "]"
                                   " go past the end of the data (%" PRIu64
                                   " bytes): truncated?", e->begin, e->end,
                                   blob_len);
    return 0;
}

/* Parse and validate the tensor entry m into e. */
static int weights_parse_entry(weights_ctx *c, const json_member *m,
                               uint64_t blob_len, weights_entry *e)
{
    const json_value *f[3];
    const char *bad = weights_name_problem(m->key, m->key_len);
    if (bad)
        return weights_tensor_fail(c, m->key, m->key_len, "%s", bad);
    if (m->value.kind != JSON_OBJECT)
        return weights_tensor_fail(c, m->key, m->key_len,
                                   "entry is not a JSON object");
    e->t.name = m->key;
    if (weights_entry_fields(c, m, f) != 0 ||
        weights_parse_dtype(c, m, f[0], &e->t.dtype) != 0 ||
        weights_parse_shape(c, m, f[1], &e->t) != 0 ||
        weights_parse_offsets(c, m, f[2], e) != 0)
        return -1;
    e->t.nbytes = (size_t)(e->end - e->begin);
    return weights_check_size(c, m, e, blob_len);
}

/* Parse all tensor entries of the root object into a new array *out. */
static int weights_parse_entries(weights_ctx *c, const json_value *root,
                                 size_t n, uint64_t blob_len,
                                 weights_entry **out)
{
    weights_entry *e = calloc(n ? n : 1, sizeof *e);
    size_t k = 0;
    if (!e)
        return weights_fail(c, "out of memory");
    for (size_t i = 0; i < root->len; i++) {
        const json_member *m = &root->u.members[i];
        if (weights_key_is(m, "__metadata__"))
            continue;
        e[k].order = k;
        if (weights_parse_entry(c, m, blob_len, &e[k]) != 0) {
            free(e);
            return -1;
        }
        k++;
    }
    *out = e;
    return 0;
}

/* qsort order of entries by (begin, end, header position). */
static int weights_cmp_offset(const void *a, const void *b)
{
    const weights_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Sort entries by offset and check that they tile [0, blob_len) exactly. */
static int weights_check_layout(weights_ctx *c, weights_entry *e, size_t n,
                                uint64_t blob_len)
{
    char shown[WEIGHTS_SHOW];
    uint64_t pos = 0;
    qsort(e, n, sizeof *e, weights_cmp_offset);
    for (size_t i = 0; i < n; i++) {
        const char *name = e[i].t.name;
        if (e[i].begin < pos)
            return weights_tensor_fail(c, name, strlen(name),
                                       "data [%" PRIu64 ", %" PRIu64 ")"
                                       " overlaps tensor '%s'", e[i].begin,
                                       e[i].end,
                                       weights_show(e[i - 1].t.name,
                                                    strlen(e[i - 1].t.name),
                                                    shown));
        if (e[i].begin > pos)
            return weights_tensor_fail(c, name, strlen(name),
                                       "data starts at byte %" PRIu64 " but"
                                       " the data before it ends at %" PRIu64
                                       " (gaps are not allowed)",
                                       e[i].begin, pos);
        pos = e[i].end;
    }
    if (pos != blob_len)
        return weights_fail(c, "header: the tensors cover %" PRIu64 " bytes"
                            " of data but the file has %" PRIu64 " after the"
                            " header (trailing garbage)", pos, blob_len);
    return 0;
}

/* qsort/bsearch order of tensor pointers by name. */
static int weights_cmp_name(const void *a, const void *b)
{
    const vamos_tensor *x = *(const vamos_tensor *const *)a;
    const vamos_tensor *y = *(const vamos_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Move the blob at file+off to an aligned address (the buffer has slack). */
static unsigned char *weights_align_blob(unsigned char *file, size_t off,
                                         size_t len)
{
    uintptr_t p = (uintptr_t)(file + off);
    size_t pad = (WEIGHTS_ALIGN - p % WEIGHTS_ALIGN) % WEIGHTS_ALIGN;
    if (pad)
        memmove(file + off + pad, file + off, len);
    return file + off + pad;
}

/* Build w->tensors (offset order, data pointing into blob) and w->by_name. */
static int weights_index(weights_ctx *c, vamos_weights *w,
                         const weights_entry *e, size_t n,
                         const unsigned char *blob)
{
    w->tensors = calloc(n ? n : 1, sizeof *w->tensors);
    w->by_name = calloc(n ? n : 1, sizeof *w->by_name);
    if (!w->tensors || !w->by_name)
        return weights_fail(c, "out of memory");
    w->n = (int)n;
    for (size_t i = 0; i < n; i++) {
        w->tensors[i] = e[i].t;
        w->tensors[i].data = blob + e[i].begin;
        w->by_name[i] = &w->tensors[i];
    }
    qsort(w->by_name, n, sizeof *w->by_name, weights_cmp_name);
    for (size_t i = 1; i < n; i++)
        if (strcmp(w->by_name[i - 1]->name, w->by_name[i]->name) == 0)
            return weights_tensor_fail(c, w->by_name[i]->name,
                                       strlen(w->by_name[i]->name),
                                       "appears twice in the header");
    return 0;
}

/* strcmp(key, prefix followed by name), without building the string. */
static int weights_cmp_split(const char *key, const char *prefix,
                             const char *name)
{
    size_t pl = strlen(prefix);
    int r = strncmp(key, prefix, pl);
    return r ? r : strcmp(key + pl, name);
}

/* Metadata member whose key is prefix followed by name, or NULL. */
static const json_member *weights_meta_member(const vamos_weights *w,
                                              const char *prefix,
                                              const char *name)
{
    size_t lo = 0, hi = w->n_meta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = weights_cmp_split(w->meta[mid]->key, prefix, name);
        if (r == 0)
            return w->meta[mid];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Parse 16 lowercase hex digits into *v; -1 if s is anything else. */
static int weights_parse_sum(const char *s, size_t n, uint64_t *v)
{
    *v = 0;
    if (n != 16)
        return -1;
    for (size_t i = 0; i < 16; i++) {
        char ch = s[i];
        if (ch >= '0' && ch <= '9')
            *v = (*v << 4) | (uint64_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            *v = (*v << 4) | (uint64_t)(ch - 'a' + 10);
        else
            return -1;
    }
    return 0;
}

/* Verify tensor t's checksum (if stored, or required by flags). */
static int weights_verify_one(weights_ctx *c, const vamos_weights *w,
                              const vamos_tensor *t, unsigned flags,
                              uint64_t got)
{
    char shown[WEIGHTS_SHOW];
    size_t nl = strlen(t->name);
    uint64_t want;
    const json_member *m = weights_meta_member(w, WEIGHTS_SUM_PREFIX, t->name);
    if (!m && (flags & VAMOS_WEIGHTS_UNCHECKED))
        return 0;
    if (!m)
        return weights_fail(c, "tensor '%s' has no checksum in __metadata__"
                            " (not written by Vamos?)",
                            weights_show(t->name, nl, shown));
    if (weights_parse_sum(m->value.u.str, m->value.len, &want) != 0)
        return weights_tensor_fail(c, t->name, nl, "checksum '%s' in"
                                   " __metadata__ is not 16 lowercase hex"
                                   " digits",
                                   weights_show(m->value.u.str, m->value.len,
                                                shown));
    if (want != got)
        return weights_tensor_fail(c, t->name, nl, "checksum mismatch (file"
                                   " says %016" PRIx64 ", data gives %016"
                                   PRIx64 "): the file is corrupted", want,
                                   got);
    return 0;
}

/* Reject "xxh3:NAME" metadata entries naming no tensor. */
static int weights_check_stale(weights_ctx *c, const vamos_weights *w)
{
    char shown[WEIGHTS_SHOW];
    for (size_t i = 0; i < w->n_meta; i++) {
        const json_member *m = w->meta[i];
        if (m->key_len < WEIGHTS_SUM_PREFIX_LEN ||
            memcmp(m->key, WEIGHTS_SUM_PREFIX, WEIGHTS_SUM_PREFIX_LEN) != 0)
            continue;
        if (!vamos_weights_find(w, m->key + WEIGHTS_SUM_PREFIX_LEN))
            return weights_fail(c, "header: __metadata__ has checksum '%s'"
                                " for a tensor that does not exist",
                                weights_show(m->key, m->key_len, shown));
    }
    return 0;
}

/* Fold tensor t (name, dtype, shape, data checksum) into identity hash h. */
static uint64_t weights_hash_step(uint64_t h, const vamos_tensor *t,
                                  uint64_t sum)
{
    unsigned char rec[8 * (3 + VAMOS_MAX_RANK)];
    uint64_t words[3 + VAMOS_MAX_RANK];
    size_t nw = 0;
    words[nw++] = sum;
    words[nw++] = (uint64_t)t->dtype;
    words[nw++] = (uint64_t)t->rank;
    for (int i = 0; i < t->rank; i++)
        words[nw++] = (uint64_t)t->shape[i];
    for (size_t i = 0; i < nw; i++)
        for (int b = 0; b < 8; b++)
            rec[i * 8 + (size_t)b] = (unsigned char)(words[i] >> (8 * b));
    h = XXH3_64bits_withSeed(t->name, strlen(t->name) + 1, h);
    return XXH3_64bits_withSeed(rec, nw * 8, h);
}

/* Verify all checksums, reject stale ones and compute w->hash. */
static int weights_verify(weights_ctx *c, vamos_weights *w, unsigned flags)
{
    uint64_t h = 0;
    if (weights_check_stale(c, w) != 0)
        return -1;
    for (int i = 0; i < w->n; i++) {
        const vamos_tensor *t = &w->tensors[i];
        uint64_t got = XXH3_64bits(t->data, t->nbytes);
        if (weights_verify_one(c, w, t, flags, got) != 0)
            return -1;
        h = weights_hash_step(h, t, got);
    }
    w->hash = h;
    return 0;
}

/* Parse and validate the file contents held in w->file. */
static int weights_parse(weights_ctx *c, vamos_weights *w, size_t size,
                         unsigned flags)
{
    uint64_t hlen = 0;
    char jerr[256];
    const json_value *meta;
    size_t n;
    weights_entry *e = NULL;
    if (weights_header_len(c, w->file, size, &hlen) != 0)
        return -1;
    if (json_parse((const char *)w->file + 8, (size_t)hlen, WEIGHTS_JSON_DEPTH,
                   &w->header, jerr, sizeof jerr) != 0)
        return weights_fail(c, "header: %s", jerr);
    if (w->header.kind != JSON_OBJECT)
        return weights_fail(c, "header: is not a JSON object");
    uint64_t blob_len = size - 8 - hlen;
    if (weights_scan_root(c, &w->header, &meta, &n) != 0 ||
        weights_load_meta(c, w, meta) != 0 ||
        weights_parse_entries(c, &w->header, n, blob_len, &e) != 0)
        return -1;
    int rc = weights_check_layout(c, e, n, blob_len);
    if (rc == 0) {
        unsigned char *blob = weights_align_blob(w->file, 8 + (size_t)hlen,
                                                 (size_t)blob_len);
        rc = weights_index(c, w, e, n, blob);
    }
    free(e);
    return rc == 0 ? weights_verify(c, w, flags) : -1;
}

/* The checks both loaders make before reading; a new empty vamos_weights,
 * or NULL (reported). */
static vamos_weights *weights_start(weights_ctx *c, unsigned flags)
{
    if (flags & ~(unsigned)VAMOS_WEIGHTS_UNCHECKED) {
        weights_fail(c, "unknown flags 0x%x", flags);
        return NULL;
    }
    if (!weights_little_endian()) {
        weights_fail(c, "big-endian hosts are not supported");
        return NULL;
    }
    vamos_weights *w = calloc(1, sizeof *w);
    if (!w)
        weights_fail(c, "out of memory");
    return w;
}

vamos_weights *vamos_weights_load_mem(const char *name, const void *data, size_t size, unsigned flags, char *err,
                                      size_t errlen)
{
    weights_ctx c = {name ? name : "(memory)", err, errlen};
    if (!data && size) {
        weights_fail(&c, "no data given");
        return NULL;
    }
    if (size > SIZE_MAX - WEIGHTS_ALIGN) {
        weights_fail(&c, "too large");
        return NULL;
    }
    vamos_weights *w = weights_start(&c, flags);
    if (!w)
        return NULL;
    if (!(w->file = malloc(size + WEIGHTS_ALIGN))) {
        weights_fail(&c, "out of memory for %zu bytes", size);
        vamos_weights_free(w);
        return NULL;
    }
    if (size)
        memcpy(w->file, data, size);
    if (weights_parse(&c, w, size, flags) != 0) {
        vamos_weights_free(w);
        return NULL;
    }
    return w;
}

vamos_weights *vamos_weights_load(const char *path, unsigned flags, char *err,
                                  size_t errlen)
{
    weights_ctx c = {path ? path : "(null)", err, errlen};
    vamos_weights *w;
    size_t size = 0;
    if (!path) {
        weights_fail(&c, "no path given");
        return NULL;
    }
    if (!(w = weights_start(&c, flags)))
        return NULL;
    if (weights_read_file(&c, &w->file, &size) != 0 ||
        weights_parse(&c, w, size, flags) != 0) {
        vamos_weights_free(w);
        return NULL;
    }
    return w;
}

int vamos_weights_count(const vamos_weights *w)
{
    return w ? w->n : 0;
}

const vamos_tensor *vamos_weights_at(const vamos_weights *w, int i)
{
    return w && i >= 0 && i < w->n ? &w->tensors[i] : NULL;
}

const vamos_tensor *vamos_weights_find(const vamos_weights *w,
                                       const char *name)
{
    if (!w || !name || w->n == 0)
        return NULL;
    vamos_tensor probe = {.name = name};
    const vamos_tensor *pp = &probe;
    const vamos_tensor *const *hit =
        bsearch(&pp, w->by_name, (size_t)w->n, sizeof *w->by_name,
                weights_cmp_name);
    return hit ? *hit : NULL;
}

const char *vamos_weights_meta(const vamos_weights *w, const char *key)
{
    if (!w || !key)
        return NULL;
    const json_member *m = weights_meta_member(w, "", key);
    return m ? m->value.u.str : NULL;
}

uint64_t vamos_weights_hash(const vamos_weights *w)
{
    return w ? w->hash : 0;
}

void vamos_weights_free(vamos_weights *w)
{
    if (!w)
        return;
    json_free(&w->header);
    free(w->file);
    free(w->tensors);
    free(w->by_name);
    free(w->meta);
    free(w);
}

/* ----------------------------------------------------------------- saving */

/* qsort order of C strings. */
static int weights_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A string occurring twice among s[0, n), or NULL; *oom set on failure. */
static const char *weights_find_dup(const char *const *s, size_t n, int *oom)
{
    const char *dup = NULL;
    const char **v = malloc((n ? n : 1) * sizeof *v);
    *oom = v == NULL;
    if (!v)
        return NULL;
    memcpy(v, s, n * sizeof *v);
    qsort(v, n, sizeof *v, weights_cmp_str);
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            dup = v[i];
    free(v);
    return dup;
}

/* Check the tensor t (number i) handed to vamos_weights_save. */
static int weights_check_save_tensor(weights_ctx *c, const vamos_tensor *t,
                                     int i)
{
    char s[128];
    if (!t->name)
        return weights_fail(c, "tensor %d has no name", i);
    size_t nl = strlen(t->name);
    const char *bad = weights_name_problem(t->name, nl);
    if (bad)
        return weights_tensor_fail(c, t->name, nl, "%s", bad);
    if (t->dtype != VAMOS_F32 && t->dtype != VAMOS_I32)
        return weights_tensor_fail(c, t->name, nl, "unknown dtype %d",
                                   (int)t->dtype);
    if (t->rank < 0 || t->rank > VAMOS_MAX_RANK)
        return weights_tensor_fail(c, t->name, nl, "rank %d is outside [0,"
                                   " %d]", t->rank, VAMOS_MAX_RANK);
    for (int d = 0; d < t->rank; d++)
        if (t->shape[d] < 0)
            return weights_tensor_fail(c, t->name, nl, "shape[%d] is %" PRId64
                                       ", must be >= 0", d, t->shape[d]);
    int64_t numel = weights_numel(t->shape, t->rank);
    weights_shape_str(t->shape, t->rank, s, sizeof s);
    if (numel < 0 || (uint64_t)numel > SIZE_MAX / WEIGHTS_ELEM)
        return weights_tensor_fail(c, t->name, nl, "shape %s has too many"
                                   " elements", s);
    if (t->nbytes != (size_t)numel * WEIGHTS_ELEM)
        return weights_tensor_fail(c, t->name, nl, "nbytes is %zu but %s %s"
                                   " needs %zu", t->nbytes,
                                   weights_dtype_name(t->dtype), s,
                                   (size_t)numel * WEIGHTS_ELEM);
    if (t->nbytes && !t->data)
        return weights_tensor_fail(c, t->name, nl, "data is NULL");
    return 0;
}

/* Check all tensors for vamos_weights_save: each valid, names unique, total
 * size representable. */
static int weights_check_save_tensors(weights_ctx *c, const vamos_tensor *t,
                                      int n)
{
    uint64_t total = 0;
    int oom;
    for (int i = 0; i < n; i++) {
        if (weights_check_save_tensor(c, &t[i], i) != 0)
            return -1;
        if (t[i].nbytes > INT64_MAX - total)
            return weights_fail(c, "total tensor data is too large");
        total += t[i].nbytes;
    }
    const char **names = malloc((n ? (size_t)n : 1) * sizeof *names);
    if (!names)
        return weights_fail(c, "out of memory");
    for (int i = 0; i < n; i++)
        names[i] = t[i].name;
    const char *dup = weights_find_dup(names, (size_t)n, &oom);
    free(names);
    if (oom)
        return weights_fail(c, "out of memory");
    if (dup)
        return weights_tensor_fail(c, dup, strlen(dup), "appears twice in the"
                                   " tensors to save");
    return 0;
}

/* Check the caller's metadata pairs: non-NULL UTF-8, unreserved, unique. */
static int weights_check_save_meta(weights_ctx *c, const char *const *kv,
                                   int n)
{
    char shown[WEIGHTS_SHOW];
    const char **keys;
    int oom;
    for (int i = 0; i < 2 * n; i++) {
        if (!kv[i])
            return weights_fail(c, "metadata pair %d has a NULL %s", i / 2,
                                i % 2 ? "value" : "key");
        if (!json_utf8_valid(kv[i], strlen(kv[i])))
            return weights_fail(c, "metadata %s '%s' is not valid UTF-8",
                                i % 2 ? "value" : "key",
                                weights_show(kv[i], strlen(kv[i]), shown));
    }
    for (int i = 0; i < n; i++)
        if (strncmp(kv[2 * i], WEIGHTS_SUM_PREFIX, WEIGHTS_SUM_PREFIX_LEN) == 0)
            return weights_fail(c, "metadata key '%s' is reserved for"
                                " checksums", weights_show(kv[2 * i],
                                                           strlen(kv[2 * i]),
                                                           shown));
    keys = malloc((n ? (size_t)n : 1) * sizeof *keys);
    if (!keys)
        return weights_fail(c, "out of memory");
    for (int i = 0; i < n; i++)
        keys[i] = kv[2 * i];
    const char *dup = weights_find_dup(keys, (size_t)n, &oom);
    free(keys);
    if (oom)
        return weights_fail(c, "out of memory");
    if (dup)
        return weights_fail(c, "metadata key '%s' appears twice",
                            weights_show(dup, strlen(dup), shown));
    return 0;
}

/* Append the quoted key "xxh3:NAME" and tensor t's checksum to b. */
static void weights_put_sum(json_buf *b, const vamos_tensor *t)
{
    char sum[24];
    size_t nl = strlen(t->name);
    char *key = malloc(WEIGHTS_SUM_PREFIX_LEN + nl + 1);
    if (!key) {
        b->failed = 1;
        return;
    }
    memcpy(key, WEIGHTS_SUM_PREFIX, WEIGHTS_SUM_PREFIX_LEN);
    memcpy(key + WEIGHTS_SUM_PREFIX_LEN, t->name, nl + 1);
    uint64_t h = XXH3_64bits(t->nbytes ? t->data : "", t->nbytes);
    snprintf(sum, sizeof sum, ":\"%016" PRIx64 "\"", h);
    json_buf_string(b, key);
    json_buf_puts(b, sum);
    free(key);
}

/* Append the __metadata__ object (caller pairs, then checksums) to b. */
static void weights_put_meta(json_buf *b, const vamos_tensor *t, int n,
                             const char *const *kv, int n_meta)
{
    json_buf_puts(b, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
        json_buf_puts(b, i ? "," : "");
        json_buf_string(b, kv[2 * i]);
        json_buf_puts(b, ":");
        json_buf_string(b, kv[2 * i + 1]);
    }
    for (int i = 0; i < n; i++) {
        json_buf_puts(b, i || n_meta ? "," : "");
        weights_put_sum(b, &t[i]);
    }
    json_buf_puts(b, "}");
}

/* Append tensor t's entry, with data at [begin, begin + nbytes), to b. */
static void weights_put_entry(json_buf *b, const vamos_tensor *t,
                              uint64_t begin)
{
    json_buf_string(b, t->name);
    json_buf_puts(b, ":{\"dtype\":\"");
    json_buf_puts(b, weights_dtype_name(t->dtype));
    json_buf_puts(b, "\",\"shape\":[");
    for (int d = 0; d < t->rank; d++) {
        json_buf_puts(b, d ? "," : "");
        json_buf_int(b, t->shape[d]);
    }
    json_buf_puts(b, "],\"data_offsets\":[");
    json_buf_int(b, (int64_t)begin);
    json_buf_puts(b, ",");
    json_buf_int(b, (int64_t)(begin + t->nbytes));
    json_buf_puts(b, "]}");
}

/* Build the whole header JSON, space-padded so the data starts at a multiple
 * of WEIGHTS_ALIGN in the file. */
static int weights_build_header(weights_ctx *c, json_buf *b,
                                const vamos_tensor *t, int n,
                                const char *const *kv, int n_meta)
{
    uint64_t off = 0;
    json_buf_puts(b, "{");
    if (n + n_meta > 0)
        weights_put_meta(b, t, n, kv, n_meta);
    for (int i = 0; i < n; i++) {
        json_buf_puts(b, ",");
        weights_put_entry(b, &t[i], off);
        off += t[i].nbytes;
    }
    json_buf_puts(b, "}");
    while (!b->failed && (8 + b->len) % WEIGHTS_ALIGN != 0)
        json_buf_puts(b, " ");
    if (b->failed)
        return weights_fail(c, "out of memory");
    if (b->len > WEIGHTS_MAX_HEADER)
        return weights_fail(c, "header would be %zu bytes, over the %u byte"
                            " limit", b->len, WEIGHTS_MAX_HEADER);
    return 0;
}

/* Write length, header and data to f and sync; 0 or an errno value. */
static int weights_write_all(FILE *f, const json_buf *hdr,
                             const vamos_tensor *t, int n)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)hdr->len >> (8 * i));
    errno = 0;
    if (fwrite(len, 1, 8, f) != 8 ||
        fwrite(hdr->data, 1, hdr->len, f) != hdr->len)
        return errno ? errno : EIO;
    for (int i = 0; i < n; i++)
        if (t[i].nbytes && fwrite(t[i].data, 1, t[i].nbytes, f) != t[i].nbytes)
            return errno ? errno : EIO;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        return errno ? errno : EIO;
    return 0;
}

/* Write everything to tmp, then rename it over c->path. */
static int weights_write_file(weights_ctx *c, const char *tmp,
                              const json_buf *hdr, const vamos_tensor *t,
                              int n)
{
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return weights_fail(c, "cannot create %s: %s", tmp, strerror(errno));
    int e = weights_write_all(f, hdr, t, n);
    if (fclose(f) != 0 && e == 0)
        e = errno ? errno : EIO;
    if (e != 0) {
        remove(tmp);
        return weights_fail(c, "cannot write %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, c->path) != 0) {
        e = errno;
        remove(tmp);
        return weights_fail(c, "cannot rename %s to %s: %s", tmp, c->path,
                            strerror(e));
    }
    return 0;
}

int vamos_weights_save(const char *path, const vamos_tensor *t, int n,
                       const char *const *meta_kv, int n_meta, char *err,
                       size_t errlen)
{
    weights_ctx c = {path ? path : "(null)", err, errlen};
    json_buf hdr = {0};
    if (!path || !*path)
        return weights_fail(&c, "no path given");
    if (n < 0 || (n > 0 && !t))
        return weights_fail(&c, "invalid tensor array (n = %d)", n);
    if (n_meta < 0 || (n_meta > 0 && !meta_kv))
        return weights_fail(&c, "invalid metadata array (n_meta = %d)", n_meta);
    if (!weights_little_endian())
        return weights_fail(&c, "big-endian hosts are not supported");
    if (weights_check_save_tensors(&c, t, n) != 0 ||
        weights_check_save_meta(&c, meta_kv, n_meta) != 0)
        return -1;
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp)
        return weights_fail(&c, "out of memory");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    int rc = weights_build_header(&c, &hdr, t, n, meta_kv, n_meta);
    if (rc == 0)
        rc = weights_write_file(&c, tmp, &hdr, t, n);
    json_buf_free(&hdr);
    free(tmp);
    return rc;
}
