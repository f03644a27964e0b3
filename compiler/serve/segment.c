/* segment.c - sentences, line breaks and markup (see segment.h). */
#include "segment.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void add(Pieces *ps, const char *s, size_t n, bool translate, bool escape)
{
    if (n == 0 || ps->oom)
        return;
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 16;
        Piece *p = realloc(ps->p, sizeof *p * (size_t)cap);
        if (!p) {
            ps->oom = true;
            return;
        }
        ps->p = p, ps->cap = cap;
    }
    char *t = malloc(n + 1);
    if (!t) {
        ps->oom = true;
        return;
    }
    memcpy(t, s, n);
    t[n] = 0;
    ps->p[ps->n++] = (Piece){ t, translate, escape };
}

static bool space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

/* Where the sentence that begins at s ends: after . ! or ? and spaces,
 * when what follows looks like a new sentence (a capital, a digit, an
 * opening quote or an inverted mark); else the end of the line. */
static const char *sentence_end(const char *s, const char *end)
{
    for (const char *p = s; p < end; p++) {
        if (*p != '.' && *p != '!' && *p != '?')
            continue;
        const char *q = p + 1;
        while (q < end && (*q == '.' || *q == '!' || *q == '?' || *q == '"' || *q == '\'' || *q == ')'))
            q++;
        if (q < end && space(*q)) {
            const char *n = q;
            while (n < end && space(*n))
                n++;
            if (n < end && (isupper((unsigned char)*n) || isdigit((unsigned char)*n) || *n == '"' || *n == '(' ||
                            (unsigned char)*n == 0xC2))   /* ¿ ¡ are C2 BF, C2 A1 */
                return q;
        }
        p = q - 1;   /* past the run of marks: each is looked at once (linear on "....") */
    }
    return end;
}

/* Text: per line, per sentence; spaces around each kept. */
static void text(Pieces *ps, const char *s, size_t n, bool escape)
{
    const char *end = s + n, *eol = NULL;
    while (s < end) {
        const char *b = s;
        while (s < end && space(*s))
            s++;
        add(ps, b, (size_t)(s - b), false, false);
        if (s == end)
            break;
        if (!eol || eol < s) {   /* the end of this line, found once per line: linear in n */
            eol = memchr(s, '\n', (size_t)(end - s));
            if (!eol)
                eol = end;
        }
        const char *stop = sentence_end(s, eol);
        const char *t = stop;
        while (t > s && space(t[-1]))
            t--;
        add(ps, s, (size_t)(t - s), true, escape);
        add(ps, t, (size_t)(stop - t), false, false);
        s = stop;
    }
}

/* HTML entities of text nodes, decoded into out (at most as long). */
static size_t decode(const char *s, size_t n, char *out)
{
    static const struct { const char *name; const char *text; } ents[] = {
        { "amp;", "&" }, { "lt;", "<" }, { "gt;", ">" }, { "quot;", "\"" }, { "apos;", "'" }, { "#39;", "'" },
        { "nbsp;", " " },
    };
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        bool done = false;
        for (size_t k = 0; s[i] == '&' && k < sizeof ents / sizeof ents[0] && !done; k++) {
            size_t len = strlen(ents[k].name);
            if (i + 1 + len <= n && !strncmp(s + i + 1, ents[k].name, len)) {
                out[o++] = ents[k].text[0];
                i += 1 + len;
                done = true;
            }
        }
        if (!done)
            out[o++] = s[i++];
    }
    return o;
}

/* The length of a raw element's content (script, style) from s, up to its
 * closing tag (not included), or the rest. */
static size_t raw_content(const char *s, size_t n, const char *tag)
{
    size_t tl = strlen(tag);
    for (size_t i = 0; i + 2 + tl <= n; i++)
        if (s[i] == '<' && s[i + 1] == '/' && !strncasecmp(s + i + 2, tag, tl))
            return i;
    return n;
}

static void html(Pieces *ps, const char *s)
{
    size_t n = strlen(s);
    char *buf = malloc(n + 1);
    if (!buf) {
        ps->oom = true;
        return;
    }
    bool comments_end = true;   /* false once a comment never closes: then no more searching (linear) */
    for (size_t i = 0; i < n;) {
        if (s[i] == '<') {
            const char *close = comments_end && !strncmp(s + i, "<!--", 4) ? strstr(s + i + 4, "-->") : NULL;
            comments_end &= close || strncmp(s + i, "<!--", 4);
            size_t len = close ? (size_t)(close + 3 - (s + i)) : 0;
            if (!close) {
                const char *gt = memchr(s + i, '>', n - i);
                len = gt ? (size_t)(gt + 1 - (s + i)) : n - i;
            }
            add(ps, s + i, len, false, false);
            const char *raw = !strncasecmp(s + i, "<script", 7) ? "script" : !strncasecmp(s + i, "<style", 6) ? "style" : NULL;
            i += len;
            if (raw) {
                size_t c = raw_content(s + i, n - i, raw);
                add(ps, s + i, c, false, false);
                i += c;
            }
            continue;
        }
        const char *lt = memchr(s + i, '<', n - i);
        size_t len = lt ? (size_t)(lt - (s + i)) : n - i;
        text(ps, buf, decode(s + i, len, buf), true);
        i += len;
    }
    free(buf);
}

bool segment(const char *s, bool is_html, Pieces *out)
{
    if (is_html)
        html(out, s);
    else
        text(out, s, strlen(s), false);
    return !out->oom;
}

int pieces_count(const Pieces *ps)
{
    int k = 0;
    for (int i = 0; i < ps->n; i++)
        k += ps->p[i].translate;
    return k;
}

char *pieces_join(const Pieces *ps, char *const *tr)
{
    size_t n = 1;
    for (int i = 0, k = 0; i < ps->n; i++) {
        const char *t = ps->p[i].translate ? tr[k++] : ps->p[i].text;
        n += strlen(t) * (ps->p[i].escape ? 5 : 1);
    }
    char *out = malloc(n), *o = out;
    if (!out)
        return NULL;
    for (int i = 0, k = 0; i < ps->n; i++) {
        const char *t = ps->p[i].translate ? tr[k++] : ps->p[i].text;
        for (; *t; t++) {
            const char *e = !ps->p[i].escape ? NULL : *t == '&' ? "&amp;" : *t == '<' ? "&lt;" : *t == '>' ? "&gt;" : NULL;
            if (e)
                o = stpcpy(o, e);
            else
                *o++ = *t;
        }
    }
    *o = 0;
    return out;
}

void pieces_free(Pieces *ps)
{
    for (int i = 0; i < ps->n; i++)
        free(ps->p[i].text);
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}
