/* request.h - a LibreTranslate /translate request, from its body.
 *
 * The body is JSON (request_from_json) or a form whose fields libmicrohttpd
 * has decoded (request_from_field, once per field). Either way the result
 * is checked by request_check. This layer does no I/O, so the fuzz harness
 * (tests/fuzz/fuzz_request.c) drives it directly.
 *
 * Fields: q (a string, or an array of strings: the response matches),
 * source (a code, or "auto"), target, format ("text" or "html"), api_key.
 * Fields it does not know (apiKey, alternatives, ...) are ignored. */
#ifndef VAMOS_REQUEST_H
#define VAMOS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#define REQUEST_MAX_Q 1024   /* strings in one q array */

typedef struct Request {
    char **q;          /* nq strings, each valid UTF-8 */
    int nq;
    bool q_array;      /* q came as an array: answer with one */
    char *source, *target, *format, *api_key;   /* NULL: not given */
} Request;

/* Fill r from a JSON object. 0, or -1 with a message for a 400. */
int request_from_json(Request *r, const char *body, size_t len, char *err, size_t errlen);

/* One decoded form field (key=value). A repeated q makes q an array.
 * 0, or -1 with a message. */
int request_from_field(Request *r, const char *key, const char *value, size_t len, char *err, size_t errlen);

/* After the fields: q present and not empty, source and target present,
 * format text or html. 0, or -1 with a message. */
int request_check(const Request *r, char *err, size_t errlen);

/* Characters (UTF-8 code points) of every q. */
long request_chars(const Request *r);

void request_free(Request *r);

#endif
