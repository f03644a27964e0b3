/* metrics.c - corpus-level BLEU and chrF that agree with sacreBLEU 2.x.
 *
 * Why this exists: translation quality has to be measured inside the project
 * (tests, benchmarks, the CLI) without a Python dependency, and the numbers
 * are only worth reporting if they are the ones everybody else reports, i.e.
 * sacreBLEU's with its default settings.  So every step below mirrors a named
 * piece of sacreBLEU 2.x, including its quirks:
 *
 *   BLEU (sacrebleu/metrics/bleu.py, BLEU() defaults)
 *     - each segment is rstrip()'d, then tokenised with Tokenizer13a;
 *     - tokens are the result of str.split(); n-grams of order 1..4 are
 *       counted, hypothesis counts clipped by reference counts;
 *     - per corpus: correct[n], total[n], sys_len, ref_len are summed and
 *       compute_bleu() is applied: BP = exp(1 - r/c) when c < r (0 when
 *       c == 0); score 0 when no n-gram matched at all; walking n = 1..4 it
 *       stops at the first order with total 0 (later precisions stay 0 and
 *       my_log(0) = -9999999999 drives the score to 0); an order with no
 *       match gets 100 / (2^k * total) with k = 1, 2, ... ('exp' smoothing).
 *   chrF (sacrebleu/metrics/chrf.py, CHRF() defaults: char_order 6,
 *         word_order 0, beta 2, whitespace False, eps_smoothing False)
 *     - all whitespace is removed (''.join(s.split())), then character
 *       n-grams of order 1..6 over Unicode code points are counted;
 *     - per order the statistics are [hyp, ref, match] where hyp is forced
 *       to 0 when the reference has no n-gram of that order;
 *     - per corpus the statistics are summed and _compute_f_score() applied:
 *       precision and recall are averaged over the "effective" orders (both
 *       hyp and ref counts > 0) and combined into F-beta, beta = 2.
 *       (The default is *not* eps smoothing; that is an opt-in in sacreBLEU.)
 *
 * "Whitespace" everywhere means Python's str.isspace() set, since sacreBLEU
 * uses str.split()/str.rstrip(): ASCII \t\n\v\f\r, \x1c-\x1f, space, plus
 * U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F,
 * U+3000.  The arithmetic for the final scores follows the Python expressions
 * operation for operation so the doubles come out identical.
 *
 * Implementation: text is processed as UTF-8 bytes where that is provably
 * equivalent (the 13a regular expressions only look at ASCII characters),
 * and decoded to code points where characters matter (whitespace, chrF).
 * Invalid UTF-8 bytes decode to one character each (U+DC80..U+DCFF, as with
 * Python's surrogateescape), so nothing is ever rejected.  N-grams - of
 * interned token ids for BLEU, of code points for chrF - are counted in an
 * open-addressing hash table kept in the metrics object (as is the token
 * interning table); slots carry a generation stamp, so starting a new
 * segment costs O(1) instead of a clear, and a list of live slots keeps the
 * per-segment match count proportional to the segment, not to the table.
 */
#include "metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    BLEU_ORDER = 4,     /* sacreBLEU MAX_NGRAM_ORDER */
    CHRF_ORDER = 6,     /* CHRF.CHAR_ORDER */
    CHRF_BETA = 2,      /* CHRF.BETA */
    MAX_ORDER = 6,      /* longest n-gram any table key holds */
    TABLE_MIN_CAP = 1024,
};

/* Segments longer than this many bytes are refused (reported as out of
 * memory): their tables would need tens of gigabytes anyway, and the limit
 * keeps every count and index comfortably inside 32 bits. */
#define MAX_SEGMENT_BYTES ((size_t)1 << 28)

/* ---------------------------------------------------------------- text */

/* Decode one character at s (n >= 1 bytes available) into *cp and return
 * its length in bytes.  Strict UTF-8 (no overlongs, surrogates or values
 * above U+10FFFF); anything else is a one-byte character U+DC00 + byte. */
static size_t u8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        goto invalid;
    }
    if (n < len)
        goto invalid;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            goto invalid;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        goto invalid;
    *cp = v;
    return len;
invalid:
    *cp = 0xDC00 | c;
    return 1;
}

/* Python's str.isspace(), which is what str.split() and str.rstrip() use. */
static bool py_space(uint32_t c)
{
    if (c < 0x80)
        return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    return c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Length of s[0..n) after Python's rstrip(). */
static size_t rstrip_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, keep = 0;
    while (i < n) {
        uint32_t cp;
        i += u8_next(u + i, n - i, &cp);
        if (!py_space(cp))
            keep = i;
    }
    return keep;
}

/* In place, Python's s.replace(pat, rep) for len(rep) <= len(pat): a single
 * left-to-right pass over non-overlapping occurrences.  Because the text
 * never grows, the write position can never overtake the read position.
 * Returns the new length. */
static size_t replace_shrinking(char *s, size_t n, const char *pat,
                                const char *rep)
{
    size_t pl = strlen(pat), rl = strlen(rep), r = 0, w = 0;
    while (r < n) {
        if (n - r >= pl && memcmp(s + r, pat, pl) == 0) {
            memmove(s + w, rep, rl);
            w += rl;
            r += pl;
        } else {
            s[w++] = s[r++];
        }
    }
    return w;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The character class of TokenizerRegexp's first rule,
 * [\{-\~\[-\` -\&\(-\+\:-\@\/]: { | } ~  [ \ ] ^ _ `  space ! " # $ % &
 * ( ) * +  : ; < = > ? @  /.  Not ' , - . nor any non-ASCII character. */
static bool is_13a_punct(unsigned char c)
{
    return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x20 && c <= 0x26) || (c >= 0x28 && c <= 0x2B) ||
           (c >= 0x3A && c <= 0x40) || c == 0x2F;
}

/* One of the four substitutions of TokenizerRegexp, applied to in[0..n)
 * into out (see tok13a for the room needed); returns the output length.  Each pattern is exactly one or two characters long, so
 * re.sub's semantics (leftmost match, scan resumes after the match) are a
 * plain scan.  Scanning bytes instead of code points gives the same result
 * because every class that can consume a non-ASCII character is a negated
 * ASCII class ([^0-9]) and the continuation bytes it leaves behind match no
 * rule's first character. */
static size_t re_rule(int rule, const char *in, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, w = 0;
    while (i < n) {
        unsigned char a = s[i], b = i + 1 < n ? s[i + 1] : 0;
        bool two = i + 1 < n;
        switch (rule) {
        case 1: /* ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 ' */
            if (is_13a_punct(a)) {
                out[w++] = ' ', out[w++] = (char)a, out[w++] = ' ';
                i++;
                continue;
            }
            break;
        case 2: /* ([^0-9])([\.,]) -> '\1 \2 ' */
            if (two && !is_digit(a) && (b == '.' || b == ',')) {
                out[w++] = (char)a, out[w++] = ' ';
                out[w++] = (char)b, out[w++] = ' ';
                i += 2;
                continue;
            }
            break;
        case 3: /* ([\.,])([^0-9]) -> ' \1 \2' */
            if (two && (a == '.' || a == ',') && !is_digit(b)) {
                out[w++] = ' ', out[w++] = (char)a;
                out[w++] = ' ', out[w++] = (char)b;
                i += 2;
                continue;
            }
            break;
        default: /* ([0-9])(-) -> '\1 \2 ' */
            if (two && is_digit(a) && b == '-') {
                out[w++] = (char)a, out[w++] = ' ';
                out[w++] = '-', out[w++] = ' ';
                i += 2;
                continue;
            }
            break;
        }
        out[w++] = (char)a;
        i++;
    }
    return w;
}

/* ' '.join(s.split()) into out (room for n + 1 bytes), NUL-terminated;
 * returns the length. */
static size_t collapse_space(const char *in, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, w = 0;
    bool pending = false;   /* a separator is owed before the next word */
    while (i < n) {
        uint32_t cp;
        size_t k = u8_next(s + i, n - i, &cp);
        if (py_space(cp)) {
            pending = w > 0;
        } else {
            if (pending)
                out[w++] = ' ';
            pending = false;
            memcpy(out + w, s + i, k);
            w += k;
        }
        i += k;
    }
    out[w] = '\0';
    return w;
}

/* Tokenizer13a.__call__ on line[0..n): malloc'd, NUL-terminated, length in
 * *outlen; NULL when out of memory. */
static char *tok13a(const char *line, size_t n, size_t *outlen)
{
    /* The rules only ever insert spaces: at most two per character of
     * rule 1's class, two per '-' (rule 4) and four per '.' or ',' (two
     * each from rules 2 and 3), and those classes do not overlap.  So no
     * stage exceeds five times the padded input, and two buffers of
     * 5 * (n + 2) + 1 bytes serve every stage. */
    if (n > (SIZE_MAX - 16) / 5 - 2)
        return NULL;
    size_t cap = 5 * (n + 2) + 1;
    char *a = malloc(cap), *b = malloc(cap);
    if (!a || !b) {
        free(a);
        free(b);
        return NULL;
    }

    /* The language-independent part, in sacreBLEU's order. */
    a[0] = ' ';
    memcpy(a + 1, line, n);
    size_t len = n;
    len = replace_shrinking(a + 1, len, "<skipped>", "");
    len = replace_shrinking(a + 1, len, "-\n", "");
    len = replace_shrinking(a + 1, len, "\n", " ");
    len = replace_shrinking(a + 1, len, "&quot;", "\"");
    len = replace_shrinking(a + 1, len, "&amp;", "&");
    len = replace_shrinking(a + 1, len, "&lt;", "<");
    len = replace_shrinking(a + 1, len, "&gt;", ">");
    /* line = " {} ".format(line) */
    a[1 + len] = ' ';
    len += 2;

    /* TokenizerRegexp: four substitutions, then whitespace normalisation. */
    len = re_rule(1, a, len, b);
    len = re_rule(2, b, len, a);
    len = re_rule(3, a, len, b);
    len = re_rule(4, b, len, a);
    len = collapse_space(a, len, b);

    free(a);
    char *shrunk = realloc(b, len + 1);
    *outlen = len;
    return shrunk ? shrunk : b;
}

char *vamos_tok13a(const char *line)
{
    size_t len;
    if (!line)
        line = "";
    return tok13a(line, strlen(line), &len);
}

/* ---------------------------------------------------------------- hashing */

/* MurmurHash3's 64-bit finaliser: a cheap, well-mixed step. */
static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* An n-gram slot: the key (order symbols), its hash, and how often it
 * occurs in the hypothesis (count[0]) and the reference (count[1]).  A slot
 * is live only if its generation equals the table's. */
typedef struct ngram_slot {
    uint64_t hash;
    uint32_t gen, order;
    uint32_t count[2];
    uint32_t key[MAX_ORDER];
} ngram_slot;

typedef struct ngram_table {
    ngram_slot *slots;
    uint32_t *used;       /* indices of this generation's live slots */
    size_t cap, live;     /* cap is a power of two, live <= cap / 2 */
    uint32_t gen;
} ngram_table;

/* A token slot for interning BLEU tokens: bytes (pointing into the current
 * segment's tokenised text) to a small integer id. */
typedef struct token_slot {
    const char *s;
    size_t len;
    uint64_t hash;
    uint32_t gen, id;
} token_slot;

typedef struct token_table {
    token_slot *slots;
    size_t cap, live;
    uint32_t gen;
} token_table;

/* Start a new, empty generation. */
static void ngram_reset(ngram_table *t)
{
    t->live = 0;
    if (++t->gen == 0) {   /* wrapped: old stamps could look live again */
        if (t->slots)
            memset(t->slots, 0, t->cap * sizeof *t->slots);
        t->gen = 1;
    }
}

/* Double the capacity (or create the table); -1 when out of memory, with
 * the table unchanged. */
static int ngram_grow(ngram_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : TABLE_MIN_CAP;
    if (cap > ((size_t)1 << 31) || cap > SIZE_MAX / sizeof(ngram_slot))
        return -1;
    ngram_slot *slots = calloc(cap, sizeof *slots);
    uint32_t *used = malloc(cap / 2 * sizeof *used);
    if (!slots || !used) {
        free(slots);
        free(used);
        return -1;
    }
    for (size_t k = 0; k < t->live; k++) {
        const ngram_slot *o = &t->slots[t->used[k]];
        size_t i = o->hash & (cap - 1);
        while (slots[i].gen == t->gen)
            i = (i + 1) & (cap - 1);
        slots[i] = *o;
        used[k] = (uint32_t)i;
    }
    free(t->slots);
    free(t->used);
    t->slots = slots;
    t->used = used;
    t->cap = cap;
    return 0;
}

/* Count one occurrence of the n-gram s[0..n) (hash h) on the given side
 * (0 hypothesis, 1 reference).  0, or -1 when out of memory. */
static int ngram_add(ngram_table *t, const uint32_t *s, uint32_t n,
                     uint64_t h, int side)
{
    if ((t->live + 1) * 2 > t->cap && ngram_grow(t) != 0)
        return -1;
    size_t mask = t->cap - 1, i = h & mask;
    for (;;) {
        ngram_slot *e = &t->slots[i];
        if (e->gen != t->gen) {
            e->gen = t->gen;
            e->hash = h;
            e->order = n;
            e->count[0] = e->count[1] = 0;
            e->count[side] = 1;
            memcpy(e->key, s, n * sizeof *s);
            t->used[t->live++] = (uint32_t)i;
            return 0;
        }
        if (e->hash == h && e->order == n &&
            memcmp(e->key, s, n * sizeof *s) == 0) {
            e->count[side]++;
            return 0;
        }
        i = (i + 1) & mask;
    }
}

/* Count every n-gram of order 1..max_order in s[0..len) on one side.  The
 * hash of the order-k n-gram at i extends that of order k-1, so each
 * position costs max_order mixing steps in all. */
static int ngram_add_all(ngram_table *t, const uint32_t *s, size_t len,
                         uint32_t max_order, int side)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t h = 0x9E3779B97F4A7C15ULL;
        for (uint32_t n = 1; n <= max_order && i + n <= len; n++) {
            h = mix64(h ^ (s[i + n - 1] + 0x632BE59BD9B4E019ULL));
            if (ngram_add(t, s + i, n, h, side) != 0)
                return -1;
        }
    }
    return 0;
}

/* Clipped matches per order: match[n - 1] += min(hyp count, ref count). */
static void ngram_matches(const ngram_table *t, uint64_t *match)
{
    for (size_t k = 0; k < t->live; k++) {
        const ngram_slot *e = &t->slots[t->used[k]];
        uint32_t c = e->count[0] < e->count[1] ? e->count[0] : e->count[1];
        match[e->order - 1] += c;
    }
}

static void token_reset(token_table *t)
{
    t->live = 0;
    if (++t->gen == 0) {
        if (t->slots)
            memset(t->slots, 0, t->cap * sizeof *t->slots);
        t->gen = 1;
    }
}

static int token_grow(token_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : TABLE_MIN_CAP;
    if (cap > ((size_t)1 << 31) || cap > SIZE_MAX / sizeof(token_slot))
        return -1;
    token_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t k = 0; k < t->cap; k++) {
        const token_slot *o = &t->slots[k];
        if (o->gen != t->gen)
            continue;
        size_t i = o->hash & (cap - 1);
        while (slots[i].gen == t->gen)
            i = (i + 1) & (cap - 1);
        slots[i] = *o;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

/* The id of token s[0..len) in this generation (1, 2, ... by first
 * appearance) in *id; 0, or -1 when out of memory. */
static int token_intern(token_table *t, const char *s, size_t len,
                        uint32_t *id)
{
    if ((t->live + 1) * 2 > t->cap && token_grow(t) != 0)
        return -1;
    uint64_t h = 0xcbf29ce484222325ULL;   /* FNV-1a, then a final mix */
    for (size_t k = 0; k < len; k++)
        h = (h ^ (unsigned char)s[k]) * 0x100000001b3ULL;
    h = mix64(h ^ len);
    size_t mask = t->cap - 1, i = h & mask;
    for (;;) {
        token_slot *e = &t->slots[i];
        if (e->gen != t->gen) {
            e->gen = t->gen;
            e->hash = h;
            e->s = s;
            e->len = len;
            e->id = (uint32_t)++t->live;
            *id = e->id;
            return 0;
        }
        if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) {
            *id = e->id;
            return 0;
        }
        i = (i + 1) & mask;
    }
}

/* ---------------------------------------------------------------- corpus */

struct vamos_metrics {
    /* BLEU sufficient statistics (BLEU._compute_segment_statistics). */
    uint64_t sys_len, ref_len;
    uint64_t correct[BLEU_ORDER], total[BLEU_ORDER];
    /* chrF sufficient statistics, per order (CHRF._get_match_statistics). */
    uint64_t chrf_hyp[CHRF_ORDER], chrf_ref[CHRF_ORDER], chrf_match[CHRF_ORDER];

    /* Scratch space reused from segment to segment. */
    ngram_table ngrams;
    token_table tokens;
    uint32_t *sym;        /* hypothesis then reference symbols */
    size_t sym_cap;
};

/* One segment's contribution, committed only when all of it is known. */
typedef struct seg_stats {
    uint64_t sys_len, ref_len;
    uint64_t correct[BLEU_ORDER], total[BLEU_ORDER];
    uint64_t chrf_hyp[CHRF_ORDER], chrf_ref[CHRF_ORDER], chrf_match[CHRF_ORDER];
} seg_stats;

vamos_metrics *vamos_metrics_new(void)
{
    return calloc(1, sizeof(vamos_metrics));
}

void vamos_metrics_free(vamos_metrics *m)
{
    if (!m)
        return;
    free(m->ngrams.slots);
    free(m->ngrams.used);
    free(m->tokens.slots);
    free(m->sym);
    free(m);
}

/* Make m->sym hold at least n symbols; -1 when out of memory. */
static int sym_reserve(vamos_metrics *m, size_t n)
{
    if (n <= m->sym_cap)
        return 0;
    if (n > SIZE_MAX / sizeof *m->sym)
        return -1;
    uint32_t *p = realloc(m->sym, n * sizeof *p);
    if (!p)
        return -1;
    m->sym = p;
    m->sym_cap = n;
    return 0;
}

/* Number of n-grams of order n in a sequence of len symbols. */
static uint64_t ngram_count(size_t len, uint32_t n)
{
    return len >= n ? (uint64_t)(len - n + 1) : 0;
}

/* Intern the single-space-separated tokens of text[0..n) (13a output) into
 * ids[], their number in *count; 0, or -1 when out of memory. */
static int intern_tokens(token_table *t, const char *text, size_t n,
                         uint32_t *ids, size_t *count)
{
    size_t i = 0;
    *count = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && text[j] != ' ')
            j++;
        if (token_intern(t, text + i, j - i, &ids[*count]) != 0)
            return -1;
        ++*count;
        i = j + 1;
    }
    return 0;
}

/* BLEU statistics of one segment (hyp and ref already rstrip()'d). */
static int bleu_segment(vamos_metrics *m, const char *hyp, size_t hn,
                        const char *ref, size_t rn, seg_stats *st)
{
    size_t ht_len, rt_len;
    char *ht = tok13a(hyp, hn, &ht_len);
    char *rt = tok13a(ref, rn, &rt_len);
    int rc = -1;
    if (!ht || !rt)
        goto out;

    /* The 13a output is single-space separated, so a string of L bytes has
     * at most L / 2 + 1 tokens. */
    if (sym_reserve(m, ht_len / 2 + rt_len / 2 + 2) != 0)
        goto out;
    token_reset(&m->tokens);
    size_t hl, rl;
    if (intern_tokens(&m->tokens, ht, ht_len, m->sym, &hl) != 0)
        goto out;
    uint32_t *rids = m->sym + hl;
    if (intern_tokens(&m->tokens, rt, rt_len, rids, &rl) != 0)
        goto out;

    ngram_reset(&m->ngrams);
    if (ngram_add_all(&m->ngrams, rids, rl, BLEU_ORDER, 1) != 0 ||
        ngram_add_all(&m->ngrams, m->sym, hl, BLEU_ORDER, 0) != 0)
        goto out;
    ngram_matches(&m->ngrams, st->correct);
    for (uint32_t n = 1; n <= BLEU_ORDER; n++)
        st->total[n - 1] = ngram_count(hl, n);
    st->sys_len = hl;
    st->ref_len = rl;
    rc = 0;
out:
    free(ht);
    free(rt);
    return rc;
}

/* Code points of s[0..n) with Python whitespace removed, into out; returns
 * the count. */
static size_t chrf_chars(const char *s, size_t n, uint32_t *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, w = 0;
    while (i < n) {
        uint32_t cp;
        i += u8_next(u + i, n - i, &cp);
        if (!py_space(cp))
            out[w++] = cp;
    }
    return w;
}

/* chrF statistics of one segment. */
static int chrf_segment(vamos_metrics *m, const char *hyp, size_t hn,
                        const char *ref, size_t rn, seg_stats *st)
{
    if (sym_reserve(m, hn + rn + 1) != 0)
        return -1;
    size_t hl = chrf_chars(hyp, hn, m->sym);
    uint32_t *rs = m->sym + hl;
    size_t rl = chrf_chars(ref, rn, rs);

    ngram_reset(&m->ngrams);
    if (ngram_add_all(&m->ngrams, rs, rl, CHRF_ORDER, 1) != 0 ||
        ngram_add_all(&m->ngrams, m->sym, hl, CHRF_ORDER, 0) != 0)
        return -1;
    ngram_matches(&m->ngrams, st->chrf_match);
    for (uint32_t n = 1; n <= CHRF_ORDER; n++) {
        uint64_t r = ngram_count(rl, n);
        /* "Don't count hits if no reference exists for that n-gram" */
        st->chrf_hyp[n - 1] = r > 0 ? ngram_count(hl, n) : 0;
        st->chrf_ref[n - 1] = r;
    }
    return 0;
}

int vamos_metrics_add(vamos_metrics *m, const char *hyp, const char *ref)
{
    if (!m)
        return -1;
    if (!hyp)
        hyp = "";
    if (!ref)
        ref = "";
    size_t hn = strlen(hyp), rn = strlen(ref);
    if (hn > MAX_SEGMENT_BYTES || rn > MAX_SEGMENT_BYTES)
        return -1;

    seg_stats st;
    memset(&st, 0, sizeof st);
    /* BLEU._preprocess_segment: tokenizer(sent.rstrip()); chrF takes the
     * segment as it is. */
    if (bleu_segment(m, hyp, rstrip_len(hyp, hn), ref, rstrip_len(ref, rn),
                     &st) != 0 ||
        chrf_segment(m, hyp, hn, ref, rn, &st) != 0)
        return -1;

    m->sys_len += st.sys_len;
    m->ref_len += st.ref_len;
    for (int n = 0; n < BLEU_ORDER; n++) {
        m->correct[n] += st.correct[n];
        m->total[n] += st.total[n];
    }
    for (int n = 0; n < CHRF_ORDER; n++) {
        m->chrf_hyp[n] += st.chrf_hyp[n];
        m->chrf_ref[n] += st.chrf_ref[n];
        m->chrf_match[n] += st.chrf_match[n];
    }
    return 0;
}

/* sacrebleu.utils.my_log */
static double my_log(double x)
{
    return x == 0.0 ? -9999999999.0 : log(x);
}

/* BLEU.compute_bleu with smooth_method='exp', effective_order=False. */
double vamos_metrics_bleu(const vamos_metrics *m)
{
    if (!m)
        return 0.0;
    double sys_len = (double)m->sys_len, ref_len = (double)m->ref_len;
    double bp;
    if (m->sys_len < m->ref_len)
        bp = m->sys_len > 0 ? exp(1.0 - ref_len / sys_len) : 0.0;
    else
        bp = 1.0;

    bool any = false;
    for (int n = 0; n < BLEU_ORDER; n++)
        any = any || m->correct[n] != 0;
    if (!any)
        return 0.0;   /* "Early stop if there are no matches (#141)" */

    double precisions[BLEU_ORDER] = {0.0};
    double smooth_mteval = 1.0;
    for (int n = 0; n < BLEU_ORDER; n++) {
        if (m->total[n] == 0)
            break;
        if (m->correct[n] == 0) {
            smooth_mteval *= 2;
            precisions[n] = 100.0 / (smooth_mteval * (double)m->total[n]);
        } else {
            precisions[n] = 100.0 * (double)m->correct[n] / (double)m->total[n];
        }
    }
    double sum = 0.0;
    for (int n = 0; n < BLEU_ORDER; n++)
        sum += my_log(precisions[n]);
    return bp * exp(sum / BLEU_ORDER);
}

/* CHRF._compute_f_score with eps_smoothing=False. */
double vamos_metrics_chrf(const vamos_metrics *m)
{
    if (!m)
        return 0.0;
    const double eps = 1e-16;
    const double factor = (double)(CHRF_BETA * CHRF_BETA);
    double avg_prec = 0.0, avg_rec = 0.0;
    int effective_order = 0;
    for (int n = 0; n < CHRF_ORDER; n++) {
        uint64_t n_hyp = m->chrf_hyp[n], n_ref = m->chrf_ref[n];
        double n_match = (double)m->chrf_match[n];
        double prec = n_hyp > 0 ? n_match / (double)n_hyp : eps;
        double rec = n_ref > 0 ? n_match / (double)n_ref : eps;
        if (n_hyp > 0 && n_ref > 0) {
            avg_prec += prec;
            avg_rec += rec;
            effective_order++;
        }
    }
    if (effective_order == 0) {
        avg_prec = avg_rec = 0.0;
    } else {
        avg_prec /= effective_order;
        avg_rec /= effective_order;
    }
    if (avg_prec + avg_rec == 0.0)
        return 0.0;
    double score = (1 + factor) * avg_prec * avg_rec;
    score /= (factor * avg_prec) + avg_rec;
    return 100 * score;
}
