/* json.c - tiny strict JSON reader and writer (see json.h). */
#include "json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct json_parser {
    const unsigned char *s;
    size_t len, pos;
    int depth, max_depth;
    char *err;
    size_t errlen;
} json_parser;

static int json_parse_value(json_parser *p, json_value *out);

/* Record "invalid JSON at byte POS: MSG" and return -1. */
static int json_fail(json_parser *p, const char *fmt, ...)
{
    if (p->err && p->errlen) {
        int k = snprintf(p->err, p->errlen, "invalid JSON at byte %zu: ",
                         p->pos);
        if (k >= 0 && (size_t)k < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* The byte at the cursor for messages: "'x'", "byte 0x01", "end of input". */
static const char *json_here(json_parser *p, char buf[16])
{
    if (p->pos >= p->len)
        return "end of input";
    unsigned char c = p->s[p->pos];
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

/* Skip JSON whitespace (space, tab, CR, LF). */
static void json_skip_ws(json_parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Length of the UTF-8 sequence at s[0, n) (code point in *cp), 0 if bad. */
static size_t json_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t k;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) { k = 2; v = c & 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { k = 3; v = c & 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { k = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return k;
}

int json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp = 0;
    while (i < n) {
        size_t k = json_utf8_decode(u + i, n - i, &cp);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* Write code point cp as UTF-8 into out, returning the byte count. */
static size_t json_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Read 4 hex digits at the cursor into *v; -1 (with message) if malformed. */
static int json_hex4(json_parser *p, uint32_t *v)
{
    *v = 0;
    if (p->len - p->pos < 4)
        return json_fail(p, "truncated \\u escape");
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos];
        uint32_t d;
        if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
        else return json_fail(p, "\\u escape needs 4 hex digits");
        *v = (*v << 4) | d;
        p->pos++;
    }
    return 0;
}

/* Decode a \u escape (cursor after "\u"), joining surrogate pairs, into *cp. */
static int json_unicode_escape(json_parser *p, uint32_t *cp)
{
    uint32_t hi, lo;
    if (json_hex4(p, &hi) != 0)
        return -1;
    if (hi >= 0xdc00 && hi <= 0xdfff)
        return json_fail(p, "lone low surrogate \\u%04" PRIx32, hi);
    if (hi < 0xd800 || hi > 0xdbff) {
        *cp = hi;
        return 0;
    }
    if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
        return json_fail(p, "high surrogate \\u%04" PRIx32
                         " not followed by a low surrogate", hi);
    p->pos += 2;
    if (json_hex4(p, &lo) != 0)
        return -1;
    if (lo < 0xdc00 || lo > 0xdfff)
        return json_fail(p, "high surrogate \\u%04" PRIx32
                         " not followed by a low surrogate", hi);
    *cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
    return 0;
}

/* Decode one escape (cursor after the backslash) appending to out at *n. */
static int json_escape(json_parser *p, char *out, size_t *n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (p->pos >= p->len)
        return json_fail(p, "unterminated string");
    unsigned char c = p->s[p->pos++];
    const char *hit = c ? strchr(from, c) : NULL;
    if (hit) {
        out[(*n)++] = to[hit - from];
        return 0;
    }
    if (c != 'u') {
        p->pos--;
        char b[16];
        return json_fail(p, "invalid escape \\%s", json_here(p, b));
    }
    uint32_t cp = 0;
    if (json_unicode_escape(p, &cp) != 0)
        return -1;
    *n += json_utf8_encode(cp, out + *n);
    return 0;
}

/* Find the closing quote of the string whose body starts at the cursor. */
static int json_string_end(json_parser *p, size_t *end)
{
    size_t i = p->pos;
    while (i < p->len && p->s[i] != '"')
        i += p->s[i] == '\\' ? 2 : 1;
    if (i >= p->len) {
        p->pos = p->len;
        return json_fail(p, "unterminated string");
    }
    *end = i;
    return 0;
}

/* Decode the string body between the cursor and end into out, validating. */
static int json_string_body(json_parser *p, size_t end, char *out, size_t *n)
{
    while (p->pos < end) {
        unsigned char c = p->s[p->pos];
        uint32_t cp;
        if (c == '\\') {
            p->pos++;
            if (json_escape(p, out, n) != 0)
                return -1;
        } else if (c < 0x20) {
            return json_fail(p, "control character 0x%02x in a string"
                             " (must be escaped)", c);
        } else {
            size_t k = json_utf8_decode(p->s + p->pos, end - p->pos, &cp);
            if (k == 0)
                return json_fail(p, "invalid UTF-8 in a string");
            memcpy(out + *n, p->s + p->pos, k);
            *n += k;
            p->pos += k;
        }
    }
    return 0;
}

/* Parse a string (cursor on its opening quote) into a new NUL-ended copy. */
static int json_parse_string(json_parser *p, char **str, size_t *len)
{
    size_t end = 0, n = 0;
    p->pos++;
    if (json_string_end(p, &end) != 0)
        return -1;
    /* Every escape decodes to no more bytes than it occupies. */
    char *out = malloc(end - p->pos + 1);
    if (!out)
        return json_fail(p, "out of memory");
    if (json_string_body(p, end, out, &n) != 0) {
        free(out);
        return -1;
    }
    out[n] = '\0';
    p->pos = end + 1;
    *str = out;
    *len = n;
    return 0;
}

/* Parse an integer (cursor on '-' or a digit) into *v with overflow checks. */
static int json_parse_int(json_parser *p, int64_t *v)
{
    int neg = p->s[p->pos] == '-';
    uint64_t acc = 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    size_t start;
    p->pos += (size_t)neg;
    start = p->pos;
    if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return json_fail(p, "expected a digit");
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        unsigned d = p->s[p->pos] - '0';
        if (acc > (limit - d) / 10)
            return json_fail(p, "integer does not fit in 64 bits");
        acc = acc * 10 + d;
        p->pos++;
    }
    if (p->s[start] == '0' && p->pos - start > 1) {
        p->pos = start;
        return json_fail(p, "leading zeros are not allowed");
    }
    if (p->pos < p->len && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' ||
                            p->s[p->pos] == 'E'))
        return json_fail(p, "only integers are supported (no fractions or"
                         " exponents)");
    *v = !neg ? (int64_t)acc : acc ? -(int64_t)(acc - 1) - 1 : 0;
    return 0;
}

/* Grow *arr (of elem-size items, capacity *cap) so that it holds need items. */
static int json_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 4;
    if (nc < need)
        nc = need;
    if (nc > SIZE_MAX / elem)
        return -1;
    void *na = realloc(*arr, nc * elem);
    if (!na)
        return -1;
    *arr = na;
    *cap = nc;
    return 0;
}

/* Consume byte c (after whitespace) or fail with "expected WHAT". */
static int json_expect(json_parser *p, unsigned char c, const char *what)
{
    json_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == c) {
        p->pos++;
        return 0;
    }
    char b[16];
    return json_fail(p, "expected %s, found %s", what, json_here(p, b));
}

/* After an item: consume ',' (1) or the closing byte (0); else -1. */
static int json_next_or_close(json_parser *p, unsigned char close,
                              const char *what)
{
    json_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
        p->pos++;
        return 1;
    }
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    char b[16];
    return json_fail(p, "expected ',' or '%c' %s, found %s", close, what,
                     json_here(p, b));
}

/* Free the first n members of an object being built, and the array. */
static void json_free_members(json_member *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].key);
        json_free(&m[i].value);
    }
    free(m);
}

/* Parse one "key": value member of an object into *m. */
static int json_parse_member(json_parser *p, json_member *m)
{
    char b[16];
    json_skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != '"')
        return json_fail(p, "expected a string key, found %s", json_here(p, b));
    if (json_parse_string(p, &m->key, &m->key_len) != 0)
        return -1;
    if (json_expect(p, ':', "':' after an object key") != 0 ||
        json_parse_value(p, &m->value) != 0) {
        free(m->key);
        return -1;
    }
    return 0;
}

/* Parse an object (cursor on '{'). */
static int json_parse_object(json_parser *p, json_value *out)
{
    json_member *m = NULL;
    size_t n = 0, cap = 0;
    int more = 1;
    p->pos++;
    json_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        more = 0;
    }
    while (more == 1) {
        if (json_grow((void **)&m, &cap, n + 1, sizeof *m) != 0) {
            json_free_members(m, n);
            return json_fail(p, "out of memory");
        }
        if (json_parse_member(p, &m[n]) != 0) {
            json_free_members(m, n);
            return -1;
        }
        n++;
        more = json_next_or_close(p, '}', "in an object");
    }
    if (more < 0) {
        json_free_members(m, n);
        return -1;
    }
    out->kind = JSON_OBJECT;
    out->len = n;
    out->u.members = m;
    return 0;
}

/* Free the first n items of an array being built, and the array. */
static void json_free_items(json_value *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_free(&v[i]);
    free(v);
}

/* Parse an array (cursor on '['). */
static int json_parse_array(json_parser *p, json_value *out)
{
    json_value *v = NULL;
    size_t n = 0, cap = 0;
    int more = 1;
    p->pos++;
    json_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        more = 0;
    }
    while (more == 1) {
        if (json_grow((void **)&v, &cap, n + 1, sizeof *v) != 0) {
            json_free_items(v, n);
            return json_fail(p, "out of memory");
        }
        if (json_parse_value(p, &v[n]) != 0) {
            json_free_items(v, n);
            return -1;
        }
        n++;
        more = json_next_or_close(p, ']', "in an array");
    }
    if (more < 0) {
        json_free_items(v, n);
        return -1;
    }
    out->kind = JSON_ARRAY;
    out->len = n;
    out->u.items = v;
    return 0;
}

/* Parse the literal word (true/false/null) at the cursor, or fail. */
static int json_parse_word(json_parser *p, json_value *out)
{
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(words[i]);
        if (p->len - p->pos >= k && memcmp(p->s + p->pos, words[i], k) == 0) {
            p->pos += k;
            out->kind = i == 2 ? JSON_NULL : JSON_BOOL;
            out->u.num = i == 0;
            return 0;
        }
    }
    char b[16];
    return json_fail(p, "expected a value, found %s", json_here(p, b));
}

/* Parse any value at the cursor (after whitespace), enforcing max_depth. */
static int json_parse_value(json_parser *p, json_value *out)
{
    int rc;
    memset(out, 0, sizeof *out);
    json_skip_ws(p);
    if (p->pos >= p->len)
        return json_fail(p, "expected a value, found end of input");
    unsigned char c = p->s[p->pos];
    if (c == '"') {
        rc = json_parse_string(p, &out->u.str, &out->len);
        out->kind = rc == 0 ? JSON_STRING : JSON_NULL;
        return rc;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        rc = json_parse_int(p, &out->u.num);
        out->kind = rc == 0 ? JSON_INT : JSON_NULL;
        return rc;
    }
    if (c != '{' && c != '[')
        return json_parse_word(p, out);
    if (p->depth >= p->max_depth)
        return json_fail(p, "nesting deeper than %d levels", p->max_depth);
    p->depth++;
    rc = c == '{' ? json_parse_object(p, out) : json_parse_array(p, out);
    p->depth--;
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int json_parse(const char *text, size_t len, int max_depth, json_value *out,
               char *err, size_t errlen)
{
    json_parser p = {(const unsigned char *)text, len, 0, 0, max_depth,
                     err, errlen};
    memset(out, 0, sizeof *out);
    if (!text && len)
        return json_fail(&p, "no input");
    if (json_parse_value(&p, out) != 0)
        return -1;
    json_skip_ws(&p);
    if (p.pos < len) {
        char b[16];
        json_free(out);
        return json_fail(&p, "unexpected %s after the value", json_here(&p, b));
    }
    return 0;
}

void json_free(json_value *v)
{
    if (!v)
        return;
    if (v->kind == JSON_STRING)
        free(v->u.str);
    else if (v->kind == JSON_ARRAY)
        json_free_items(v->u.items, v->len);
    else if (v->kind == JSON_OBJECT)
        json_free_members(v->u.members, v->len);
    memset(v, 0, sizeof *v);
}

const json_value *json_get(const json_value *obj, const char *key)
{
    if (!obj || obj->kind != JSON_OBJECT || !key)
        return NULL;
    size_t k = strlen(key);
    for (size_t i = 0; i < obj->len; i++) {
        const json_member *m = &obj->u.members[i];
        if (m->key_len == k && memcmp(m->key, key, k) == 0)
            return &m->value;
    }
    return NULL;
}

void json_buf_add(json_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n >= SIZE_MAX - b->len ||
        json_grow((void **)&b->data, &b->cap, b->len + n + 1, 1) != 0) {
        b->failed = 1;
        return;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void json_buf_puts(json_buf *b, const char *s)
{
    json_buf_add(b, s, strlen(s));
}

void json_buf_int(json_buf *b, int64_t v)
{
    char t[32];
    int k = snprintf(t, sizeof t, "%" PRId64, v);
    json_buf_add(b, t, (size_t)k);
}

void json_buf_string(json_buf *b, const char *s)
{
    json_buf_add(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char t[8];
        if (*c == '"' || *c == '\\') {
            t[0] = '\\';
            t[1] = (char)*c;
            json_buf_add(b, t, 2);
        } else if (*c == '\n') {
            json_buf_add(b, "\\n", 2);
        } else if (*c == '\t') {
            json_buf_add(b, "\\t", 2);
        } else if (*c < 0x20) {
            snprintf(t, sizeof t, "\\u%04x", *c);
            json_buf_add(b, t, 6);
        } else {
            json_buf_add(b, (const char *)c, 1);
        }
    }
    json_buf_add(b, "\"", 1);
}

void json_buf_free(json_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
