/* json.h - a tiny strict JSON reader and writer, enough for safetensors.
 *
 * Reading: json_parse() turns a byte range into a tree of json_value.
 * Supported: objects, arrays, strings (all escapes incl. \uXXXX and
 * surrogate pairs), integers that fit int64_t, true, false, null. Rejected
 * with a message: numbers with a fraction or exponent, invalid UTF-8,
 * unescaped control characters, lone surrogates, leading zeros, trailing
 * commas, anything but whitespace after the value, nesting deeper than
 * max_depth. Parsing is linear in the input and never recurses deeper than
 * max_depth, so any byte sequence is safe to feed it.
 *
 *     json_value v;
 *     char err[128];
 *     if (json_parse(text, len, 16, &v, err, sizeof err) != 0)
 *         fprintf(stderr, "%s\n", err);   // "invalid JSON at byte 7: ..."
 *     const json_value *shape = json_get(&v, "shape");
 *     json_free(&v);
 *
 * Strings are copied out, NUL-terminated, and also carry their byte length
 * (they may contain NUL bytes via \u0000). Object members keep file order;
 * duplicate keys are kept too (json_get returns the first).
 *
 * Writing: json_buf is a growable byte buffer; json_buf_string() appends a
 * quoted, escaped string. Allocation failure sets b->failed and turns every
 * later append into a no-op, so check once at the end.
 */
#ifndef VAMOS_RUNTIME_JSON_H
#define VAMOS_RUNTIME_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum json_kind {
    JSON_NULL, JSON_BOOL, JSON_INT, JSON_STRING, JSON_ARRAY, JSON_OBJECT
} json_kind;

typedef struct json_value json_value;
typedef struct json_member json_member;

struct json_value {
    json_kind kind;
    size_t len;               /* string bytes, array items or object members */
    union {
        int64_t num;          /* JSON_INT; JSON_BOOL is 0 or 1 */
        char *str;            /* JSON_STRING, NUL-terminated */
        json_value *items;    /* JSON_ARRAY */
        json_member *members; /* JSON_OBJECT */
    } u;
};

struct json_member {
    char *key;                /* NUL-terminated */
    size_t key_len;
    json_value value;
};

/* Parse text[0, len) as exactly one JSON value with optional surrounding
 * whitespace. Returns 0 and fills *out, or -1 with a message in err (*out is
 * then JSON_NULL and needs no json_free). */
int json_parse(const char *text, size_t len, int max_depth, json_value *out,
               char *err, size_t errlen);

/* Free everything owned by v and reset it to JSON_NULL. */
void json_free(json_value *v);

/* First member of object obj whose key equals the C string key, else NULL
 * (also NULL if obj is not an object). */
const json_value *json_get(const json_value *obj, const char *key);

/* 1 if s[0, n) is well-formed UTF-8 (no overlongs, surrogates or values
 * above U+10FFFF), else 0. */
int json_utf8_valid(const char *s, size_t n);

typedef struct json_buf {
    char *data;               /* NUL-terminated when non-NULL */
    size_t len, cap;
    int failed;               /* set when an allocation failed */
} json_buf;

/* Append n raw bytes. */
void json_buf_add(json_buf *b, const char *s, size_t n);

/* Append the C string s raw. */
void json_buf_puts(json_buf *b, const char *s);

/* Append v in decimal. */
void json_buf_int(json_buf *b, int64_t v);

/* Append the C string s as a quoted JSON string, escaping '"', '\\' and
 * control characters; other bytes (UTF-8) are copied as they are. */
void json_buf_string(json_buf *b, const char *s);

/* Free the buffer and reset it to empty. */
void json_buf_free(json_buf *b);

#endif
