/* fuzz_request.c - the request layer of vamos serve on any bytes: the
 * first byte picks a JSON body or form fields (key=value&..., as
 * libmicrohttpd hands them over, one call per field). Whatever is
 * accepted is checked, cut into pieces (text and html) and joined back
 * with each sentence as its own translation, which must give the input
 * back for text. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "request.h"
#include "segment.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    Request r = { 0 };
    char err[256];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    int rc = 0;
    if (data[0] & 1) {
        rc = request_from_json(&r, body, len, err, sizeof err);
    } else {   /* fields split at '&', key and value at the first '=' */
        char *copy = malloc(len + 1);
        if (!copy)
            return 0;
        memcpy(copy, body, len);
        copy[len] = 0;
        for (char *f = copy, *next; rc == 0 && f <= copy + len; f = next + 1) {
            next = memchr(f, '&', (size_t)(copy + len - f));
            if (!next)
                next = copy + len;
            *next = 0;
            char *eq = strchr(f, '=');
            if (eq) {
                *eq = 0;
                rc = request_from_field(&r, f, eq + 1, (size_t)(next - eq - 1), err, sizeof err);
            }
        }
        free(copy);
    }
    if (rc == 0 && request_check(&r, err, sizeof err) == 0) {
        if (request_chars(&r) < 0)
            abort();
        for (int i = 0; i < r.nq; i++)
            for (int html = 0; html < 2; html++) {
                Pieces ps = { 0 };
                if (!segment(r.q[i], html, &ps)) {
                    pieces_free(&ps);
                    continue;
                }
                int n = pieces_count(&ps);
                char **tr = malloc(sizeof *tr * (size_t)(n + 1));
                for (int j = 0, k = 0; tr && j < ps.n; j++)
                    if (ps.p[j].translate)
                        tr[k++] = ps.p[j].text;   /* each sentence "translated" to itself */
                char *back = tr ? pieces_join(&ps, tr) : NULL;
                if (back && !html && strcmp(back, r.q[i]))
                    abort();   /* text pieces must cover the input exactly */
                free(back);
                free(tr);
                pieces_free(&ps);
            }
    }
    request_free(&r);
    return 0;
}
