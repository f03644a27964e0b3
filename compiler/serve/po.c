/* po.c - `vamos po`: fill the untranslated entries of a gettext catalog.
 *
 * The catalog is read as lines and written back as the same lines, except
 * in the entries it fills: there the msgstr lines are replaced and the
 * flag "fuzzy" is added, so a translator reviews them. Translated entries,
 * the header, comments and obsolete entries (#~) are kept byte for byte.
 * A plural entry gets msgstr[0] from msgid and msgstr[1..] from
 * msgid_plural, as many as the header's Plural-Forms says (2 without one).
 *
 * What a translation must keep (printf directives, markup, options, ...)
 * is masked (mask.h). A message is cut into lines and sentences (segment.h);
 * leading and trailing newlines and spaces stay as they are, which msgfmt
 * -c checks. When the model drops, repeats or invents a mask token, the
 * text between the spans is translated piece by piece instead, so every
 * span is kept in its order. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "engine.h"
#include "mask.h"
#include "readfile.h"
#include "segment.h"

#define MAX_PO (64L << 20)

static const char usage[] =
    "usage: vamos po LIB.so CATALOG.po [-o OUT.po]\n\n"
    "Fill the untranslated entries of a gettext catalog with the translations of the\n"
    "model library LIB.so (vamos build MODEL.vam -w W.safetensors --lib -o LIB.so).\n"
    "Format directives (%s, %1$d, {name}), markup, accelerators (_File), options\n"
    "(--recursive), URLs and paths are kept exactly; each filled entry is marked\n"
    "fuzzy for review; entries already translated are kept byte for byte.\n"
    "Check the result with msgfmt -c --check-format OUT.po.\n"
    "options:\n"
    "  -o, --output FILE    write the catalog to FILE (default: standard output)\n"
    "  --threads N          kernel threads (default: one per CPU)\n";

typedef struct Entry {
    int first, last;        /* its lines [first, last) */
    int msgstr;             /* the line of its first msgstr, -1: none */
    int flags;              /* its "#," line, -1: none */
    int comments_end;       /* the first line after its comments */
    bool header, obsolete, plural, empty;
    char *msgid, *msgid_plural;
} Entry;

/* ---------------------------------------------------------------- strings */

/* The string of a PO line from its first '"' (escapes decoded) appended to
 * *out. false when the line is not a well-formed string. */
static bool po_string(const char *line, size_t n, char **out, size_t *len, size_t *cap)
{
    const char *p = memchr(line, '"', n), *end = line + n;
    if (!p)
        return false;
    for (p++; p < end && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p + 1 < end) {
            p++;
            switch (*p) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'a': c = '\a'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'v': c = '\v'; break;
            default:
                if (*p >= '0' && *p <= '7') {
                    int v = 0, k = 0;
                    for (; k < 3 && p < end && *p >= '0' && *p <= '7'; k++, p++)
                        v = v * 8 + (*p - '0');
                    p--;
                    c = (char)v;
                } else {
                    c = *p;   /* \" \\ and the rest as themselves */
                }
            }
        }
        if (*len + 2 > *cap) {
            *cap = *cap ? *cap * 2 : 64;
            char *b = realloc(*out, *cap);
            if (!b)
                return false;
            *out = b;
        }
        (*out)[(*len)++] = c;
        (*out)[*len] = 0;
    }
    return p < end;
}

/* The string that begins on line i (keyword line) and its continuation
 * lines; *next gets the line after. NULL when malformed. */
static char *read_string(char **lines, const size_t *lens, int i, int last, int *next)
{
    char *s = calloc(1, 1);
    size_t len = 0, cap = 1;
    bool ok = s && po_string(lines[i], lens[i], &s, &len, &cap);
    for (i++; ok && i < last && lines[i][0] == '"'; i++)
        ok = po_string(lines[i], lens[i], &s, &len, &cap);
    *next = i;
    if (!ok) {
        free(s);
        return NULL;
    }
    return s;
}

/* Append s as PO string lines after `keyword ` (gettext's layout: a
 * message of several lines starts with "" and has a line per line). */
static void write_string(FILE *out, const char *keyword, const char *s)
{
    const char *nl = strchr(s, '\n');
    bool multi = nl && nl[1];
    fprintf(out, "%s %s", keyword, multi ? "\"\"\n" : "");
    bool open = false;
    for (const char *p = s;; p++) {
        if (!open) {
            fputc('"', out);
            open = true;
        }
        if (!*p) {
            fputs("\"\n", out);
            break;
        }
        switch (*p) {
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        default:
            if ((unsigned char)*p < 32)
                fprintf(out, "\\%03o", (unsigned char)*p);
            else
                fputc(*p, out);
        }
        if (*p == '\n' && multi && p[1]) {
            fputs("\"\n", out);
            open = false;
        }
    }
}

/* ---------------------------------------------------------------- translating */

/* A message on its way: masked, cut into pieces, then put back. */
typedef struct Unit {
    const char *src;
    Masked m;
    bool masked;
    Pieces ps;          /* of m.text, or of the segments when falling back */
    Pieces *segs;       /* fallback: one Pieces per segment */
    char **seg_text;
    char *result;
} Unit;

/* Does a piece need the translator: two letters in a row outside a mask
 * token. */
static bool wordy(const char *s, char letter)
{
    for (const char *p = s; p[0] && p[1]; p++)
        if (isalpha((unsigned char)p[0]) && isalpha((unsigned char)p[1]) && p[0] != letter)
            return true;
    return false;
}

/* Mark the pieces that need no translation as kept. */
static void only_words(Pieces *ps, char letter)
{
    for (int i = 0; i < ps->n; i++)
        if (ps->p[i].translate && !wordy(ps->p[i].text, letter))
            ps->p[i].translate = false;
}

/* Collect the sentences of ps into texts (growing); returns false on OOM. */
static bool collect(const Pieces *ps, const char ***texts, int *n, int *cap)
{
    for (int i = 0; i < ps->n; i++) {
        if (!ps->p[i].translate)
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            const char **t = realloc(*texts, sizeof **texts * (size_t)*cap);
            if (!t)
                return false;
            *texts = t;
        }
        (*texts)[(*n)++] = ps->p[i].text;
    }
    return true;
}

static int translate_all(Served *sv, const char **texts, int n, char ***outs)
{
    *outs = calloc((size_t)n + 1, sizeof **outs);
    char err[512];
    if (!*outs || served_translate(sv, texts, n, *outs, err, sizeof err)) {
        fprintf(stderr, "vamos po: %s\n", *outs ? err : "out of memory");
        return -1;
    }
    return 0;
}

/* Translate every unit: masked first, then the units whose tokens did not
 * come back, segment by segment. Counts the fallbacks and copies. */
static int translate_units(Served *sv, Unit *u, int nu, int *fallbacks, int *copies)
{
    const char **texts = NULL;
    int n = 0, cap = 0;
    for (int i = 0; i < nu; i++) {
        u[i].masked = mask_text(u[i].src, &u[i].m);
        if (!u[i].masked)
            continue;
        if (!segment(u[i].m.text, false, &u[i].ps))
            return -1;   /* out of memory */
        only_words(&u[i].ps, u[i].m.letter);
        if (!collect(&u[i].ps, &texts, &n, &cap))
            return -1;
    }
    char **outs;
    if (translate_all(sv, texts, n, &outs))
        return -1;
    n = 0;
    int nf = 0;
    for (int i = 0; i < nu; i++) {
        if (!u[i].masked) {
            u[i].result = strdup(u[i].src);   /* more spans than a mask holds: keep it as it is */
            ++*copies;
            continue;
        }
        char *joined = pieces_join(&u[i].ps, outs + n);
        n += pieces_count(&u[i].ps);
        u[i].result = joined ? unmask(&u[i].m, joined) : NULL;
        free(joined);
        if (!u[i].result)
            nf++;
    }
    for (int i = 0; i < n; i++)
        free(outs[i]);
    free(outs);
    /* the fallback: the text between the spans, one piece at a time */
    n = 0;
    for (int i = 0; nf && i < nu; i++) {
        if (u[i].result)
            continue;
        ++*fallbacks;
        u[i].seg_text = mask_segments(&u[i].m);
        u[i].segs = calloc((size_t)u[i].m.n + 1, sizeof *u[i].segs);
        if (!u[i].seg_text || !u[i].segs)
            return -1;
        for (int k = 0; k <= u[i].m.n; k++) {
            if (!u[i].seg_text[k] || !segment(u[i].seg_text[k], false, &u[i].segs[k]))
                return -1;
            only_words(&u[i].segs[k], 0);
            if (!collect(&u[i].segs[k], &texts, &n, &cap))
                return -1;
        }
    }
    if (nf && translate_all(sv, texts, n, &outs))
        return -1;
    n = 0;
    for (int i = 0; nf && i < nu; i++) {
        if (!u[i].segs)
            continue;
        char **seg = calloc((size_t)u[i].m.n + 1, sizeof *seg);
        for (int k = 0; seg && k <= u[i].m.n; k++) {
            seg[k] = pieces_join(&u[i].segs[k], outs + n);
            n += pieces_count(&u[i].segs[k]);
        }
        u[i].result = seg ? join_segments(&u[i].m, seg) : NULL;
        for (int k = 0; seg && k <= u[i].m.n; k++)
            free(seg[k]);
        free(seg);
    }
    for (int i = 0; nf && i < n; i++)
        free(outs[i]);
    if (nf)
        free(outs);
    free(texts);
    for (int i = 0; i < nu; i++)
        if (!u[i].result)
            return -1;
    return 0;
}

static bool blank_line(const char *line, size_t n)
{
    for (size_t c = 0; c < n; c++)
        if (!isspace((unsigned char)line[c]))
            return false;
    return true;
}

/* Does line[0, n) hold word? (Lines are not NUL-terminated.) */
static bool has_word(const char *line, size_t n, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++)
        if (!memcmp(line + i, word, w))
            return true;
    return false;
}

static void unit_free(Unit *u)
{
    for (int k = 0; k <= u->m.n; k++) {
        if (u->segs)
            pieces_free(&u->segs[k]);
        if (u->seg_text)
            free(u->seg_text[k]);
    }
    free(u->segs);
    free(u->seg_text);
    pieces_free(&u->ps);
    mask_free(&u->m);
    free(u->result);
}

/* ---------------------------------------------------------------- the catalog */

static int nplurals_of(const char *header)
{
    const char *p = header ? strstr(header, "nplurals=") : NULL;
    int n = p ? atoi(p + 9) : 0;
    return n >= 1 && n <= 6 ? n : 0;
}

int cmd_po_main(int argc, char **argv)
{
    static const struct option longs[] = {
        { "help", no_argument, 0, 'h' }, { "output", required_argument, 0, 'o' },
        { "threads", required_argument, 0, 'j' }, { 0, 0, 0, 0 },
    };
    const char *outp = NULL;
    int threads = 0, o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":ho:", longs, NULL)) != -1) {
        switch (o) {
        case 'h': fputs(usage, stdout); return 0;
        case 'o': outp = optarg; break;
        case 'j': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 64) {
                fprintf(stderr, "vamos po: --threads needs an integer in 1..64, not '%s'\n\n%s", optarg, usage);
                return 2;
            }
            threads = (int)v;
            break;
        }
        case ':': fprintf(stderr, "vamos po: option '%s' needs a value\n\n%s", argv[optind - 1], usage); return 2;
        default: fprintf(stderr, "vamos po: unknown option '%s'\n\n%s", argv[optind - 1], usage); return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "vamos po: %s\n\n%s", argc - optind < 2 ? "needs LIB.so and CATALOG.po" : "too many arguments",
                usage);
        return 2;
    }
    const char *lib = argv[optind], *path = argv[optind + 1];
    Arena a = { 0 };
    long size;
    char *text = read_file(&a, path, MAX_PO, &size);
    if (!text) {
        fprintf(stderr, "vamos po: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    /* lines, each with its '\n' */
    int nlines = 0;
    for (long i = 0; i < size; i++)
        nlines += text[i] == '\n';
    nlines += size > 0 && text[size - 1] != '\n';
    char **lines = calloc((size_t)nlines + 1, sizeof *lines);
    size_t *lens = calloc((size_t)nlines + 1, sizeof *lens);
    Entry *es = calloc((size_t)nlines + 1, sizeof *es);
    int ne = 0, rc = 0;
    if (!lines || !lens || !es) {
        fprintf(stderr, "vamos po: out of memory\n");
        rc = 1;
    }
    for (long i = 0, k = 0; rc == 0 && i < size; k++) {
        lines[k] = text + i;
        char *nl = memchr(text + i, '\n', (size_t)(size - i));
        lens[k] = nl ? (size_t)(nl - (text + i)) : (size_t)(size - i);
        i += (long)lens[k] + (nl != NULL);
    }
    /* entries: runs of lines that are not blank */
    for (int i = 0; rc == 0 && i < nlines;) {
        if (blank_line(lines[i], lens[i])) {
            i++;
            continue;
        }
        Entry *e = &es[ne++];
        *e = (Entry){ .first = i, .msgstr = -1, .flags = -1, .comments_end = i };
        int j = i;
        while (j < nlines && !blank_line(lines[j], lens[j]))
            j++;
        e->last = j;
        bool ctx = false;
        for (int k = i; k < j && rc == 0;) {
            const char *l = lines[k];
            if (l[0] == '#') {
                if (l[1] == '~')
                    e->obsolete = true;
                if (l[1] == ',')
                    e->flags = k;
                k++;
                e->comments_end = k;
                continue;
            }
            int next = k + 1;
            if (!strncmp(l, "msgctxt", 7)) {
                ctx = true;
                char *s = read_string(lines, lens, k, j, &next);
                rc = s ? 0 : 1;
                free(s);
            } else if (!strncmp(l, "msgid_plural", 12)) {
                e->msgid_plural = read_string(lines, lens, k, j, &next);
                e->plural = true;
                rc = e->msgid_plural ? 0 : 1;
            } else if (!strncmp(l, "msgid", 5)) {
                e->msgid = read_string(lines, lens, k, j, &next);
                rc = e->msgid ? 0 : 1;
            } else if (!strncmp(l, "msgstr", 6)) {
                if (e->msgstr < 0)
                    e->msgstr = k, e->empty = true;
                char *s = read_string(lines, lens, k, j, &next);
                rc = s ? 0 : 1;
                if (s && s[0])
                    e->empty = false;
                free(s);
            } else {
                rc = 1;
            }
            if (rc)
                fprintf(stderr, "vamos po: %s:%d: not a line of a gettext catalog: %.60s\n", path, k + 1, l);
            k = next;
        }
        e->header = e->msgid && !e->msgid[0] && !ctx;
        if (rc == 0 && !e->obsolete && !e->msgid && e->msgstr < 0 && e->comments_end == j) {
            e->obsolete = true;   /* comments only: kept as they are, like an obsolete entry */
        } else if (rc == 0 && !e->obsolete && (!e->msgid || e->msgstr < 0)) {
            fprintf(stderr, "vamos po: %s:%d: an entry without %s\n", path, i + 1, e->msgid ? "msgstr" : "msgid");
            rc = 1;
        }
        i = j;
    }
    int nplurals = 0, plural_entries = 0, nu = 0, kept = 0;
    for (int i = 0; rc == 0 && i < ne; i++) {
        if (es[i].header && es[i].msgstr >= 0) {
            int next;
            char *h = read_string(lines, lens, es[i].msgstr, es[i].last, &next);
            nplurals = nplurals_of(h);
            const char *cs = h ? strstr(h, "charset=") : NULL;
            if (cs && strncasecmp(cs + 8, "UTF-8", 5) && strncasecmp(cs + 8, "ASCII", 5) &&
                strncasecmp(cs + 8, "CHARSET", 7) && strncasecmp(cs + 8, "US-ASCII", 8)) {
                fprintf(stderr, "vamos po: %s:%d: the catalog is in %.*s; translations are UTF-8: convert it first "
                                "(msgconv -t UTF-8)\n", path, es[i].msgstr + 1, (int)strcspn(cs + 8, "\n"), cs + 8);
                rc = 1;
            }
            free(h);
        }
        bool fill = !es[i].header && !es[i].obsolete && es[i].empty;
        kept += !es[i].header && !es[i].obsolete && !es[i].empty;
        plural_entries += fill && es[i].plural;
    }
    if (plural_entries && !nplurals)
        fprintf(stderr, "vamos po: warning: %s has plural entries and no Plural-Forms in its header; "
                        "writing 2 forms\n", path);
    int forms = nplurals ? nplurals : 2;
    Unit *u = calloc((size_t)ne * (size_t)forms + 1, sizeof *u);
    int *first_unit = calloc((size_t)ne + 1, sizeof *first_unit);
    for (int i = 0; rc == 0 && u && first_unit && i < ne; i++) {
        first_unit[i] = nu;
        if (es[i].header || es[i].obsolete || !es[i].empty)
            continue;
        for (int f = 0; f < (es[i].plural ? forms : 1); f++)
            u[nu++].src = f == 0 ? es[i].msgid : es[i].msgid_plural;
    }
    if (rc == 0 && (!u || !first_unit)) {
        fprintf(stderr, "vamos po: out of memory\n");
        rc = 1;
    }
    int fallbacks = 0, copies = 0;
    Served *sv = NULL;
    if (rc == 0 && nu > 0) {
        char err[512];
        sv = served_open(lib, threads, 1 << 20, 0, false, 0, err, sizeof err);   /* one batch: the catalog, sorted */
        if (!sv) {
            fprintf(stderr, "vamos po: %s\n", err);
            rc = 1;
        } else if (translate_units(sv, u, nu, &fallbacks, &copies)) {
            fprintf(stderr, "vamos po: translation failed\n");
            rc = 1;
        }
    }
    FILE *out = rc == 0 ? (outp ? fopen(outp, "w") : stdout) : NULL;
    if (rc == 0 && !out) {
        fprintf(stderr, "vamos po: cannot write %s: %s\n", outp, strerror(errno));
        rc = 1;
    }
    int filled = 0;
    for (int i = 0, line = 0; rc == 0 && i <= ne; i++) {
        int upto = i < ne ? es[i].first : nlines;
        for (; line < upto; line++)   /* what lies between entries, as it was */
            fprintf(out, "%.*s%s", (int)lens[line], lines[line], line < nlines - 1 || text[size - 1] == '\n' ? "\n" : "");
        if (i == ne)
            break;
        Entry *e = &es[i];
        bool fill = !e->header && !e->obsolete && e->empty;
        for (; line < e->last; line++) {
            if (fill && line == e->msgstr)
                break;
            if (fill && line == e->flags) {
                fprintf(out, "%.*s%s\n", (int)lens[line], lines[line], has_word(lines[line], lens[line], "fuzzy") ? "" : ", fuzzy");
                continue;
            }
            if (fill && e->flags < 0 && line == e->comments_end)
                fputs("#, fuzzy\n", out);
            fprintf(out, "%.*s%s", (int)lens[line], lines[line], line < nlines - 1 || text[size - 1] == '\n' ? "\n" : "");
        }
        if (!fill)
            continue;
        Unit *eu = &u[first_unit[i]];
        if (e->plural) {
            for (int f = 0; f < forms; f++) {
                char kw[32];
                snprintf(kw, sizeof kw, "msgstr[%d]", f);
                write_string(out, kw, eu[f].result);
            }
        } else {
            write_string(out, "msgstr", eu[0].result);
        }
        filled++;
        line = e->last;
    }
    if (out && (fflush(out) || ferror(out))) {
        fprintf(stderr, "vamos po: cannot write %s: %s\n", outp ? outp : "standard output", strerror(errno));
        rc = 1;
    }
    if (out && out != stdout && fclose(out) && rc == 0) {
        fprintf(stderr, "vamos po: cannot write %s: %s\n", outp, strerror(errno));
        rc = 1;
    }
    if (rc == 0)
        fprintf(stderr, "vamos po: filled %d entries (%d plural, marked fuzzy), kept %d translated; "
                        "%d messages translated between their placeholders, %d copied untranslated\n",
                filled, plural_entries, kept, fallbacks, copies);
    for (int i = 0; u && i < nu; i++)
        unit_free(&u[i]);
    free(u);
    free(first_unit);
    for (int i = 0; i < ne; i++)
        free(es[i].msgid), free(es[i].msgid_plural);
    free(es);
    free(lines);
    free(lens);
    served_close(sv);
    arena_free(&a);
    return rc;
}
