/* mask.c - protected spans of software messages (see mask.h). */
#include "mask.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool word_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* Length of a printf directive at s ('%' first), or 0. */
static size_t printf_len(const char *s, bool *numbered, bool *star)
{
    const char *p = s + 1;
    if (*p == '%')
        return 2;
    if (*p == '(') {   /* python: %(name)s */
        const char *e = memchr(p, ')', strnlen(p, 41));
        if (!e)
            return 0;
        p = e + 1;
        while (strchr("-+ #0", *p) && *p)
            p++;
        return isalpha((unsigned char)*p) ? (size_t)(p + 1 - s) : 0;
    }
    if (*p == '<') {   /* %<PRId64> */
        const char *e = memchr(p, '>', strnlen(p, 16));
        return e ? (size_t)(e + 1 - s) : 0;
    }
    const char *d = p;
    while (isdigit((unsigned char)*d))
        d++;
    if (*d == '$' && d > p)
        *numbered = true, p = d + 1;
    while (*p && strchr("-+ #0'I", *p))
        p++;
    if (*p == '*')
        *star = true, p++;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (*p == '*')
            *star = true, p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    static const char *const lengths[] = { "hh", "ll", "h", "l", "L", "q", "j", "z", "Z", "t" };
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++)
        if (!strncmp(p, lengths[k], strlen(lengths[k]))) {
            p += strlen(lengths[k]);
            break;
        }
    return *p && strchr("diouxXeEfFgGaAcCsSpnm", *p) ? (size_t)(p + 1 - s) : 0;
}

/* Length of a protected span at s (at offset i of text), or 0. */
static size_t span_len(const char *text, size_t i, Masked *m)
{
    const char *s = text + i;
    char prev = i ? text[i - 1] : ' ';
    bool boundary = !word_char(prev) && prev != '-' && prev != '/';
    if (*s == '%') {
        bool numbered = false, star = false;
        size_t n = printf_len(s, &numbered, &star);
        if (n > 2 || (n == 2 && s[1] != '%')) {
            if (numbered || star)
                m->printf_plain = false;
        }
        return n;
    }
    if (*s == '{') {
        size_t n = 1;
        while (s[n] && (word_char(s[n]) || strchr(".:!-", s[n])) && n < 40)
            n++;
        return s[n] == '}' ? n + 1 : 0;
    }
    if (*s == '<' && (isalpha((unsigned char)s[1]) || s[1] == '/' || s[1] == '!')) {
        const char *e = memchr(s, '>', strnlen(s, 200));   /* bounded: linear in the message */
        return e && !memchr(s + 1, '<', (size_t)(e - s - 1)) ? (size_t)(e + 1 - s) : 0;
    }
    if (*s == '&' && (isalpha((unsigned char)s[1]) || s[1] == '#')) {   /* an entity */
        size_t n = 1;
        while (isalnum((unsigned char)s[n]) || s[n] == '#')
            n++;
        if (s[n] == ';')
            return n + 1;
    }
    if (*s == '-' && boundary && s[1] == '-' && isalnum((unsigned char)s[2])) {   /* --option[=VALUE] */
        size_t n = 2;
        while (isalnum((unsigned char)s[n]) || s[n] == '-' || s[n] == '_')
            n++;
        if (s[n] == '=' || s[n] == '[')
            while (s[n] && !isspace((unsigned char)s[n]) && s[n] != ',' && s[n] != ')' && s[n] != '\'')
                n++;
        return n;
    }
    if (*s == '-' && boundary && isalpha((unsigned char)s[1]) && !word_char(s[2]) && s[2] != '-')
        return 2;   /* -r */
    if (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) || !strncmp(s, "ftp://", 6)) {
        size_t n = 0;
        while (s[n] && !isspace((unsigned char)s[n]) && s[n] != '>' && s[n] != '"' && s[n] != '\'')
            n++;
        while (n && strchr(".,;:)", s[n - 1]))
            n--;
        return n;
    }
    if (*s == '$' && (isalpha((unsigned char)s[1]) || s[1] == '_' || s[1] == '{')) {
        if (s[1] == '{') {
            const char *e = memchr(s, '}', strnlen(s, 60));
            return e ? (size_t)(e + 1 - s) : 0;
        }
        size_t n = 1;
        while (word_char(s[n]))
            n++;
        return n;
    }
    if (*s == '/' && boundary && (isalnum((unsigned char)s[1]) || s[1] == '.')) {   /* /a/b paths */
        size_t n = 1, slashes = 1;
        while (s[n] && (isalnum((unsigned char)s[n]) || strchr("/._-~", s[n])))
            slashes += s[n++] == '/';
        while (n && s[n - 1] == '.')
            n--;
        return slashes >= 2 ? n : 0;
    }
    return 0;
}

bool mask_text(const char *s, Masked *m)
{
    memset(m, 0, sizeof *m);
    m->printf_plain = true;
    static const char letters[] = "XZQYK";
    m->letter = 'X';
    for (const char *l = letters; *l; l++) {   /* a letter no word of s is made of, then a digit */
        bool used = false;
        for (const char *p = s; *p && !used; p++)
            used = *p == *l && isdigit((unsigned char)p[1]) && (p == s || !word_char(p[-1]));
        if (!used) {
            m->letter = *l;
            break;
        }
    }
    size_t len = strlen(s);
    m->text = malloc(len * 4 + 16);
    m->orig = strdup(s);
    if (!m->text || !m->orig)
        return false;
    char *o = m->text;
    for (size_t i = 0; i < len;) {
        size_t n = span_len(s, i, m);
        if (n) {
            if (m->n == MASK_MAX)
                return false;
            m->span[m->n] = strndup(s + i, n);
            if (!m->span[m->n])
                return false;
            m->off[m->n] = i;
            m->n++;
            bool before = o > m->text && word_char(o[-1]), after = word_char(s[i + n]);
            o += sprintf(o, "%s%c%d%s", before ? " " : "", m->letter, m->n, after ? " " : "");
            i += n;
            continue;
        }
        /* an accelerator: _X or &X at the start of a word */
        if ((s[i] == '_' || s[i] == '&') && !m->accel && isalnum((unsigned char)s[i + 1]) &&
            (i == 0 || !word_char(s[i - 1]))) {
            m->accel = true;
            m->accel_mark = s[i];
            i++;
            continue;
        }
        *o++ = s[i++];
    }
    *o = 0;
    return true;
}

/* The token at p (letter, digits, not inside a word): its number, else 0. */
static int token_at(const Masked *m, const char *start, const char *p, size_t *len)
{
    if (*p != m->letter || (p > start && word_char(p[-1])) || !isdigit((unsigned char)p[1]))
        return 0;
    size_t n = 1;
    int k = 0;
    while (isdigit((unsigned char)p[n]) && n < 6)
        k = k * 10 + (p[n++] - '0');
    if (word_char(p[n]))
        return 0;
    *len = n;
    return k;
}

char *unmask(const Masked *m, const char *tr)
{
    int seen[MASK_MAX + 1] = { 0 }, order[MASK_MAX], norder = 0;
    size_t len = strlen(tr), need = len + 8;
    for (const char *p = tr; *p; p++) {
        size_t tl;
        int k = token_at(m, tr, p, &tl);
        if (!k)
            continue;
        if (k > m->n || seen[k]++)
            return NULL;   /* invented or doubled */
        order[norder++] = k;
        need += strlen(m->span[k - 1]) + 8;
        p += tl - 1;
    }
    if (norder != m->n)
        return NULL;   /* lost */
    /* printf arguments in a new order: number them all */
    int arg_of[MASK_MAX + 1] = { 0 }, args = 0;
    bool moved = false;
    for (int k = 1; k <= m->n; k++) {
        const char *sp = m->span[k - 1];
        if (sp[0] == '%' && strcmp(sp, "%%") && sp[1] != '(' && sp[1] != '<')
            arg_of[k] = ++args;
    }
    for (int i = 0, last = 0; i < norder; i++)
        if (arg_of[order[i]]) {
            moved |= arg_of[order[i]] < last;
            last = arg_of[order[i]];
        }
    if (moved && !m->printf_plain)
        return NULL;   /* numbered or starred directives cannot be renumbered */
    char *out = malloc(need + 1), *o = out;
    if (!out)
        return NULL;
    bool accel_done = !m->accel;
    for (const char *p = tr; *p;) {
        size_t tl;
        int k = token_at(m, tr, p, &tl);
        if (k) {
            if (moved && arg_of[k]) {   /* "%-5d" -> "%2$-5d"; need has room for the "N$" */
                o += sprintf(o, "%%%d$%s", arg_of[k], m->span[k - 1] + 1);
            } else {
                o = stpcpy(o, m->span[k - 1]);
            }
            p += tl;
            continue;
        }
        if (!accel_done && isalpha((unsigned char)*p)) {
            *o++ = m->accel_mark;
            accel_done = true;
        }
        *o++ = *p++;
    }
    *o = 0;
    return out;
}

char **mask_segments(const Masked *m)
{
    char **seg = calloc((size_t)m->n + 1, sizeof *seg);
    if (!seg)
        return NULL;
    size_t from = 0;
    bool accel = m->accel;
    for (int k = 0; k <= m->n; k++) {
        size_t to = k < m->n ? m->off[k] : (size_t)strlen(m->orig);
        char *t = seg[k] = malloc(to - from + 1);
        if (!t)
            continue;
        for (size_t i = from; i < to; i++) {
            if (accel && m->orig[i] == m->accel_mark && isalnum((unsigned char)m->orig[i + 1]) &&
                (i == 0 || !word_char(m->orig[i - 1]))) {
                accel = false;
                continue;
            }
            *t++ = m->orig[i];
        }
        *t = 0;
        if (k < m->n)
            from = m->off[k] + strlen(m->span[k]);
    }
    return seg;
}

char *join_segments(const Masked *m, char *const *seg)
{
    size_t n = 2;
    for (int k = 0; k <= m->n; k++)
        n += strlen(seg[k] ? seg[k] : "") + (k < m->n ? strlen(m->span[k]) : 0);
    char *out = malloc(n), *o = out;
    if (!out)
        return NULL;
    bool accel = m->accel;
    for (int k = 0; k <= m->n; k++) {
        for (const char *p = seg[k] ? seg[k] : ""; *p; p++) {
            if (accel && isalpha((unsigned char)*p)) {
                *o++ = m->accel_mark;
                accel = false;
            }
            *o++ = *p;
        }
        if (k < m->n)
            o = stpcpy(o, m->span[k]);
    }
    *o = 0;
    return out;
}

void mask_free(Masked *m)
{
    for (int k = 0; k < m->n; k++)
        free(m->span[k]);
    free(m->text);
    free(m->orig);
    memset(m, 0, sizeof *m);
}
