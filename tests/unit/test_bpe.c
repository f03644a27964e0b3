/* test_bpe.c - BPE subwords: pre-tokenisation, learning (against merges
 * computed by hand and against a naive learner that recounts every pair
 * each step), encoding (against a naive rescanning encoder), decoding, and
 * the vocabulary reader's errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "bpe_learn.h"

#define M VAMOS_BPE_MARKER

/* ---- Helpers ---- */

static char *learn_ok(const char *const *lines, size_t n, int size, int min_count)
{
    char *out = NULL, err[256];
    size_t len = 0;
    int rc = bpe_learn(lines, n, size, min_count, &out, &len, err, sizeof err);
    cr_assert_eq(rc, 0, "bpe_learn: %s", err);
    cr_assert_eq(strlen(out), len);
    return out;
}

static vamos_bpe *parse_ok(const char *text)
{
    char err[256];
    vamos_bpe *b = vamos_bpe_parse(text, strlen(text), err, sizeof err);
    cr_assert_not_null(b, "vamos_bpe_parse: %s", err);
    return b;
}

/* Parse must fail with a message starting "line <line>:". */
static void parse_fails(const char *text, int line)
{
    char err[256], want[32];
    vamos_bpe *b = vamos_bpe_parse(text, strlen(text), err, sizeof err);
    cr_assert_null(b, "accepted:\n%s", text);
    snprintf(want, sizeof want, "line %d:", line);
    cr_assert(!strncmp(err, want, strlen(want)), "expected \"%s...\", got \"%s\" for:\n%s", want, err, text);
}

/* s with whitespace runs collapsed to one space, leading/trailing gone. */
static char *normalise(const char *s)
{
    char *out = malloc(strlen(s) + 1), *p = out;
    bool space = false;
    for (; *s; s++) {
        if (strchr(" \t\n\v\f\r", *s)) {
            space = true;
            continue;
        }
        if (space && p != out)
            *p++ = ' ';
        space = false;
        *p++ = *s;
    }
    *p = 0;
    return out;
}

static void assert_round_trip(const vamos_bpe *b, const char *s)
{
    int32_t ids[512];
    bool cut = true;
    int n = vamos_bpe_encode(b, s, ids, 512, &cut);
    cr_assert(!cut);
    for (int i = 0; i < n; i++)
        cr_assert_neq(ids[i], VAMOS_BPE_UNK, "<unk> in \"%s\" at %d", s, i);
    char *d = vamos_bpe_decode(b, ids, n), *want = normalise(s);
    cr_assert_str_eq(d, want);
    free(d);
    free(want);
}

static void assert_ids(const vamos_bpe *b, const char *s, const int32_t *want, int nwant)
{
    int32_t ids[64];
    int n = vamos_bpe_encode(b, s, ids, 64, NULL);
    cr_assert_eq(n, nwant, "\"%s\": %d ids, expected %d", s, n, nwant);
    for (int i = 0; i < n; i++)
        cr_assert_eq(ids[i], want[i], "\"%s\": id %d is %d, expected %d", s, i, ids[i], want[i]);
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(rng_state >> 33) % n;
}

/* ---- Pre-tokenisation ---- */

Test(pretok, words_and_markers)
{
    const char *line = "Hello, world!  (x)";
    const char *want[] = { "Hello", ",", "world", "!", "(", "x", ")" };
    bool marked_want[] = { true, false, true, false, true, false, false };
    size_t pos = 0, start, len;
    bool marked;
    for (int i = 0; i < 7; i++) {
        cr_assert(vamos_bpe_next_word(line, &pos, &start, &len, &marked));
        cr_assert_eq(len, strlen(want[i]));
        cr_assert(!strncmp(line + start, want[i], len), "word %d", i);
        cr_assert_eq(marked, marked_want[i], "word %d", i);
    }
    cr_assert(!vamos_bpe_next_word(line, &pos, &start, &len, &marked));

    /* UTF-8 stays in words (any byte >= 0x80 is a letter, "ñé" too); digits
     * too; the common non-ASCII punctuation marks are words of their own */
    line = "  ¿Desea «archivo» 3,5?\t añé…";
    const char *want2[] = { "¿", "Desea", "«", "archivo", "»", "3", ",", "5", "?", "añé", "…" };
    bool marked2[] = { true, false, true, false, false, true, false, false, false, true, false };
    pos = 0;
    for (int i = 0; i < 11; i++) {
        cr_assert(vamos_bpe_next_word(line, &pos, &start, &len, &marked));
        cr_assert(len == strlen(want2[i]) && !strncmp(line + start, want2[i], len), "word %d", i);
        cr_assert_eq(marked, marked2[i], "word %d", i);
    }
    cr_assert(!vamos_bpe_next_word(line, &pos, &start, &len, &marked));
}

Test(pretok, characters)
{
    bool valid;
    cr_assert(vamos_bpe_char_len("a", 1, &valid) == 1 && valid);
    cr_assert(vamos_bpe_char_len("ñx", 3, &valid) == 2 && valid);
    cr_assert(vamos_bpe_char_len(M, 3, &valid) == 3 && valid);
    cr_assert(vamos_bpe_char_len("\xF0\x9F\x98\x80", 4, &valid) == 4 && valid);
    cr_assert(vamos_bpe_char_len("\xFF", 1, &valid) == 1 && !valid);
    cr_assert(vamos_bpe_char_len("\xC0\x80", 2, &valid) == 1 && !valid);       /* overlong */
    cr_assert(vamos_bpe_char_len("\xED\xA0\x80", 3, &valid) == 1 && !valid);   /* surrogate */
    cr_assert(vamos_bpe_char_len("\xE2\x96", 2, &valid) == 1 && !valid);       /* cut short */
}

/* ---- Learning ---- */

/* "ab ab ab abc" -> words ▁ab x3, ▁abc x1; characters ▁ a b 4 times, c
 * once. Alphabet (bytes order): a 4, b 5, c 6, ▁ 7.
 * Pairs: (▁,a) 4, (a,b) 4, (b,c) 1. The tie goes to the smaller left
 * string, "a" < "▁": merge 0 = a+b -> "ab" 8.
 * Words now ▁ ab (x3), ▁ ab c (x1): (▁,ab) 4, (ab,c) 1: merge 1 = ▁+ab ->
 * "▁ab" 9. Left: (▁ab,c) 1, under 2, so learning stops at 10 tokens. */
static const char hand_file[] = "#vamos-bpe v1\n"
                                "10 2\n"
                                "<pad>\n<eos>\n<bos>\n<unk>\n"
                                "a\nb\nc\n" M "\n"
                                "ab\n" M "ab\n"
                                "4 5\n"
                                "7 8\n";

Test(learn, merges_computed_by_hand)
{
    const char *lines[] = { "ab ab ab abc" };
    char *text = learn_ok(lines, 1, 100, 1);
    cr_assert_str_eq(text, hand_file);
    vamos_bpe *b = parse_ok(text);
    cr_assert_eq(vamos_bpe_size(b), 10);
    cr_assert_str_eq(vamos_bpe_token(b, 9), M "ab");
    /* ▁abd: ▁ a b <unk> -> ▁ ab <unk> -> ▁ab <unk> */
    assert_ids(b, "ab abc abd", (int32_t[]){ 9, 9, 6, 9, VAMOS_BPE_UNK }, 5);
    int32_t ids[8];
    int n = vamos_bpe_encode(b, "ab abc abd", ids, 8, NULL);
    char *d = vamos_bpe_decode(b, ids, n);
    cr_assert_str_eq(d, "ab abc ab<unk>");
    free(d);
    vamos_bpe_free(b);
    free(text);

    /* with size 9 only the first merge fits */
    text = learn_ok(lines, 1, 9, 1);
    cr_assert(strstr(text, "\n9 1\n") && strstr(text, "\nab\n4 5\n"), "%s", text);
    free(text);
}

/* Control characters (the corpus has BEL) stay out of the alphabet however
 * often they occur, so the vocabulary learned always loads; they encode as
 * <unk>. */
Test(learn, control_characters_stay_out)
{
    const char *lines[] = { "a\ab a\ab a\ab \x1b\x1b\x7f" };
    char *text = learn_ok(lines, 1, 100, 1);
    cr_assert(!strchr(text, '\a') && !strchr(text, 0x1b) && !strchr(text, 0x7f), "%s", text);
    vamos_bpe *b = parse_ok(text);
    vamos_bpe_free(b);
    free(text);
}

/* With min_char_count 2, c (seen once) is not in the alphabet: a 4, b 5,
 * ▁ 6; the same two merges give "ab" 7 and "▁ab" 8, and the pair (ab,c)
 * is never counted. */
Test(learn, rare_characters_stay_out)
{
    const char *lines[] = { "ab ab ab abc" };
    char *text = learn_ok(lines, 1, 100, 2);
    cr_assert_str_eq(text, "#vamos-bpe v1\n9 2\n<pad>\n<eos>\n<bos>\n<unk>\na\nb\n" M "\nab\n" M "ab\n4 5\n6 7\n");
    vamos_bpe *b = parse_ok(text);
    assert_ids(b, "abc", (int32_t[]){ 8, VAMOS_BPE_UNK }, 2);
    vamos_bpe_free(b);
    free(text);
}

/* Words ▁xy x2, ▁yz x2; alphabet x 4, y 5, z 6, ▁ 7. Every pair counts 2,
 * so the order is the strings' order:
 *   (x,y) "x" is the smallest left          -> "xy" 8    (4 5)
 *   then (▁,xy) (▁,y) (y,z): "y" < "▁"      -> "yz" 9    (5 6)
 *   then (▁,xy) (▁,yz): same left, "xy" < "yz" -> "▁xy" 10 (7 8)
 *   then (▁,yz)                             -> "▁yz" 11  (7 9)
 * The order of the lines does not matter. */
Test(learn, ties_broken_by_strings)
{
    const char *want = "#vamos-bpe v1\n12 4\n<pad>\n<eos>\n<bos>\n<unk>\nx\ny\nz\n" M "\nxy\nyz\n" M "xy\n" M
                       "yz\n4 5\n5 6\n7 8\n7 9\n";
    const char *a[] = { "xy yz", "xy yz" }, *b[] = { "yz xy", "yz", "xy" };
    char *ta = learn_ok(a, 2, 100, 1), *tb = learn_ok(b, 3, 100, 1);
    cr_assert_str_eq(ta, want);
    cr_assert_str_eq(tb, want);
    free(ta);
    free(tb);
}

Test(learn, errors)
{
    const char *lines[] = { "ab ab ab abc" };
    char *out = (char *)1, err[256];
    size_t len = 7;
    /* 4 specials + 4 characters do not fit in 7 */
    cr_assert_eq(bpe_learn(lines, 1, 7, 1, &out, &len, err, sizeof err), -1);
    cr_assert_null(out);
    cr_assert(strstr(err, "7 tokens"), "%s", err);
    cr_assert_eq(bpe_learn(lines, 1, -5, 1, &out, &len, err, sizeof err), -1);
    cr_assert_eq(bpe_learn(NULL, 3, 100, 1, &out, &len, err, sizeof err), -1);
    /* an empty corpus is fine: the alphabet is the marker */
    out = learn_ok(NULL, 0, 100, 1);
    cr_assert_str_eq(out, "#vamos-bpe v1\n5 0\n<pad>\n<eos>\n<bos>\n<unk>\n" M "\n");
    free(out);
}

Test(learn, escapes_survive_the_file)
{
    const char *lines[] = { "a\\b a\\b", "\\\\" };
    char *text = learn_ok(lines, 2, 100, 1);
    cr_assert(strstr(text, "\n\\\\\n"), "%s", text);
    vamos_bpe *b = parse_ok(text);
    assert_round_trip(b, "a\\b \\\\ b\\a");
    vamos_bpe_free(b);
    free(text);

    b = parse_ok("#vamos-bpe v1\n6 0\n<pad>\n<eos>\n<bos>\n<unk>\n\\t\n\\\\\n");
    cr_assert_str_eq(vamos_bpe_token(b, 4), "\t");
    cr_assert_str_eq(vamos_bpe_token(b, 5), "\\");
    vamos_bpe_free(b);
}

/* ---- The naive references ---- */

typedef struct Naive {
    char *tok[4096];
    int ntok, nalpha, merge[4096][2], nmerge;
} Naive;

static int naive_find(const Naive *v, const char *s, size_t len, int from, int to)
{
    for (int i = from; i < to; i++)
        if (strlen(v->tok[i]) == len && !memcmp(v->tok[i], s, len))
            return i;
    return -1;
}

/* The characters of a word (marker first) as alphabet ids or <unk>. */
static int naive_chars(const Naive *v, const char *w, size_t len, bool marked, int *sym)
{
    int n = 0;
    if (marked) {
        int id = naive_find(v, M, 3, 4, 4 + v->nalpha);
        sym[n++] = id < 0 ? VAMOS_BPE_UNK : id;
    }
    for (size_t i = 0; i < len;) {
        bool valid;
        size_t k = (size_t)vamos_bpe_char_len(w + i, len - i, &valid);
        int id = valid ? naive_find(v, w + i, k, 4, 4 + v->nalpha) : -1;
        sym[n++] = id < 0 ? VAMOS_BPE_UNK : id;
        i += k;
    }
    return n;
}

static int merge_all(int *sym, int n, int l, int r, int c)
{
    int j = 0;
    for (int i = 0; i < n;) {
        if (i + 1 < n && sym[i] == l && sym[i + 1] == r) {
            sym[j++] = c;
            i += 2;
        } else {
            sym[j++] = sym[i++];
        }
    }
    return j;
}

static int str_qcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Learning by recounting every pair at every step (small corpora only). */
static char *naive_learn(Naive *v, const char *const *lines, int nlines, int size, int min_count)
{
    enum { MAXW = 2048, MAXS = 64 };
    static char wstr[MAXW][MAXS * 4];
    static int wsym[MAXW][MAXS], wlen[MAXW], wfreq[MAXW];
    int nw = 0;
    for (int i = 0; i < nlines; i++) {
        size_t pos = 0, start, len;
        bool marked;
        while (vamos_bpe_next_word(lines[i], &pos, &start, &len, &marked)) {
            char w[MAXS * 4];
            snprintf(w, sizeof w, "%s%.*s", marked ? M : "", (int)len, lines[i] + start);
            int k = 0;
            while (k < nw && strcmp(wstr[k], w))
                k++;
            if (k == nw) {
                cr_assert_lt(nw, MAXW);
                strcpy(wstr[nw], w);
                wfreq[nw++] = 0;
            }
            wfreq[k]++;
        }
    }
    /* the alphabet: count characters */
    static char chars[4096][5];
    static int ccount[4096];
    int nc = 0;
    for (int w = 0; w < nw; w++)
        for (size_t i = 0, n = strlen(wstr[w]); i < n;) {
            bool valid;
            size_t k = (size_t)vamos_bpe_char_len(wstr[w] + i, n - i, &valid);
            int c = 0;
            while (c < nc && (strlen(chars[c]) != k || memcmp(chars[c], wstr[w] + i, k)))
                c++;
            if (c == nc) {
                memcpy(chars[nc], wstr[w] + i, k);
                chars[nc][k] = 0;
                ccount[nc++] = valid ? 0 : -1000000;
            }
            ccount[c] += wfreq[w];
            i += k;
        }
    static const char *specials[] = { "<pad>", "<eos>", "<bos>", "<unk>" };
    v->ntok = 0;
    for (int i = 0; i < 4; i++)
        v->tok[v->ntok++] = strdup(specials[i]);
    for (int c = 0; c < nc; c++)
        if (ccount[c] >= min_count || !strcmp(chars[c], M))
            v->tok[v->ntok++] = strdup(chars[c]);
    if (naive_find(v, M, 3, 4, v->ntok) < 0)
        v->tok[v->ntok++] = strdup(M);
    v->nalpha = v->ntok - 4;
    qsort(v->tok + 4, (size_t)v->nalpha, sizeof *v->tok, str_qcmp);
    for (int w = 0; w < nw; w++)
        wlen[w] = naive_chars(v, wstr[w], strlen(wstr[w]), false, wsym[w]);

    v->nmerge = 0;
    while (v->ntok < size) {
        /* every pair's count, recounted */
        static int pl[8192], pr[8192], pc[8192];
        int np = 0;
        for (int w = 0; w < nw; w++)
            for (int i = 0; i + 1 < wlen[w]; i++) {
                int l = wsym[w][i], r = wsym[w][i + 1], k = 0;
                if (l == VAMOS_BPE_UNK || r == VAMOS_BPE_UNK)
                    continue;
                while (k < np && (pl[k] != l || pr[k] != r))
                    k++;
                if (k == np) {
                    cr_assert_lt(np, 8192);
                    pl[np] = l, pr[np] = r, pc[np++] = 0;
                }
                pc[k] += wfreq[w];
            }
        int bl = -1, br = -1, best = 0;
        for (int k = 0; k < np; k++) {
            int l = pl[k], r = pr[k];
            int c = bl < 0 ? -1 : strcmp(v->tok[l], v->tok[bl]);
            if (!c)
                c = strcmp(v->tok[r], v->tok[br]);
            if (!c)
                c = l != bl ? l - bl : r - br;
            if (pc[k] >= 2 && (pc[k] > best || (pc[k] == best && c < 0)))
                bl = l, br = r, best = pc[k];
        }
        if (bl < 0)
            break;
        char *s = malloc(strlen(v->tok[bl]) + strlen(v->tok[br]) + 1);
        strcpy(s, v->tok[bl]);
        strcat(s, v->tok[br]);
        v->tok[v->ntok] = s;
        v->merge[v->nmerge][0] = bl;
        v->merge[v->nmerge++][1] = br;
        for (int w = 0; w < nw; w++)
            wlen[w] = merge_all(wsym[w], wlen[w], bl, br, v->ntok);
        v->ntok++;
    }
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    n += (size_t)snprintf(out + n, cap - n, "#vamos-bpe v1\n%d %d\n", v->ntok, v->nmerge);
    for (int i = 0; i < v->ntok; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s\n", v->tok[i]);
    for (int i = 0; i < v->nmerge; i++)
        n += (size_t)snprintf(out + n, cap - n, "%d %d\n", v->merge[i][0], v->merge[i][1]);
    cr_assert_lt(n, cap);
    return out;
}

static void naive_free(Naive *v)
{
    for (int i = 0; i < v->ntok; i++)
        free(v->tok[i]);
}

/* Encoding by rescanning: merge every occurrence of the lowest-rank pair,
 * left to right, until no pair has a merge. */
static int naive_encode(const Naive *v, const char *line, int32_t *ids)
{
    int n = 0;
    size_t pos = 0, start, len;
    bool marked;
    while (vamos_bpe_next_word(line, &pos, &start, &len, &marked)) {
        int sym[256], k = naive_chars(v, line + start, len, marked, sym);
        for (;;) {
            int best = -1;
            for (int i = 0; i + 1 < k; i++)
                for (int m = 0; m < v->nmerge && (best < 0 || m < best); m++)
                    if (v->merge[m][0] == sym[i] && v->merge[m][1] == sym[i + 1])
                        best = m;
            if (best < 0)
                break;
            k = merge_all(sym, k, v->merge[best][0], v->merge[best][1], 4 + v->nalpha + best);
        }
        for (int i = 0; i < k; i++)
            ids[n++] = sym[i];
    }
    return n;
}

/* A line of words over a small skewed alphabet (repeats make merges
 * overlap: "aaaa"), Spanish letters, punctuation, now and then an invalid
 * byte or a rare character. */
static void random_line(char *out, size_t cap)
{
    static const char *const pieces[] = { "a", "a", "a", "b", "b", "c", "ñ", "é", "1", "2", "aa", "ab", "ba",
                                          ",", ".", "¿", "?", "«", "»", "-" };
    size_t n = 0;
    int words = 1 + (int)rnd(8);
    for (int w = 0; w < words; w++) {
        if (w && rnd(4))
            out[n++] = rnd(5) ? ' ' : '\t';
        int k = 1 + (int)rnd(7);
        for (int i = 0; i < k && n + 8 < cap; i++) {
            const char *p = rnd(200) ? pieces[rnd(sizeof pieces / sizeof *pieces)] : rnd(2) ? "\xFF" : "Ω";
            memcpy(out + n, p, strlen(p));
            n += strlen(p);
        }
    }
    out[n] = 0;
}

Test(learn, matches_a_naive_learner, .timeout = 60)
{
    static char buf[300][128];
    const char *lines[300];
    for (int seed = 1; seed <= 6; seed++) {
        rng_state = (uint64_t)seed;
        int n = 50 * seed;
        for (int i = 0; i < n; i++) {
            random_line(buf[i], sizeof buf[i]);
            lines[i] = buf[i];
        }
        int min_count = seed % 3 == 0 ? 3 : 1, size = seed % 2 ? 60 : 400;
        static Naive v;
        char *want = naive_learn(&v, lines, n, size, min_count);
        char *got = learn_ok(lines, (size_t)n, size, min_count);
        cr_assert_str_eq(got, want, "seed %d", seed);

        /* and the encoder against the rescanning one */
        vamos_bpe *b = parse_ok(got);
        for (int t = 0; t < 300; t++) {
            char line[128];
            random_line(line, sizeof line);
            int32_t a[256], e[256];
            int na = vamos_bpe_encode(b, line, a, 256, NULL), ne = naive_encode(&v, line, e);
            cr_assert_eq(na, ne, "seed %d: \"%s\"", seed, line);
            for (int i = 0; i < na; i++)
                cr_assert_eq(a[i], e[i], "seed %d: \"%s\" id %d", seed, line, i);
        }
        vamos_bpe_free(b);
        naive_free(&v);
        free(want);
        free(got);
    }
}

/* ---- Encoding and decoding ---- */

static const char *const sentences[] = {
    "Hello, world!  (x)",
    "¿Desea continuar? [s/N]",
    "No se puede abrir el «archivo» «datos.txt».",
    "El niño comió 3,5 kg de ñoquis; ¡qué rico!",
    "Version 2.0.1 (build 1234) released on 2024-05-01, 99% done.",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nmixed  \t in",
    "Café, crème brûlée; naïve façade — «ÑANDÚ» é É ü.",
    "x",
    "The file 'foo.c' was not found: error 404.",
};

Test(codec, round_trip)
{
    enum { N = sizeof sentences / sizeof *sentences };
    const char *lines[3 * N];
    for (int i = 0; i < 3 * N; i++)
        lines[i] = sentences[i % N];
    char *text = learn_ok(lines, 3 * N, 1000, 1);
    int ntok, nmerge;
    cr_assert_eq(sscanf(text, "#vamos-bpe v1\n%d %d", &ntok, &nmerge), 2);
    cr_assert_lt(ntok, 1000, "everything merged before the vocabulary is full");
    free(text);
    for (int size = 0; size < 3; size++) {
        /* only characters, a few merges, everything merged */
        int vocab = (int[]){ ntok - nmerge, ntok - nmerge + 20, ntok }[size];
        text = learn_ok(lines, 3 * N, vocab, 1);
        vamos_bpe *b = parse_ok(text);
        cr_assert_eq(vamos_bpe_size(b), vocab);
        for (int i = 0; i < N; i++)
            assert_round_trip(b, sentences[i]);
        /* new sentences over the same characters */
        assert_round_trip(b, "¿Desea abrir el archivo 1234? «no»");
        assert_round_trip(b, "no, no , no ,no");
        assert_round_trip(b, "3.5% de 2024");
        vamos_bpe_free(b);
        free(text);
    }
    /* with everything merged, a frequent sentence is a few tokens */
    text = learn_ok(lines, 3 * N, 1000, 1);
    vamos_bpe *b = parse_ok(text);
    int32_t ids[64];
    cr_assert_eq(vamos_bpe_encode(b, "¿Desea continuar?", ids, 64, NULL), 4); /* ▁¿ Desea ▁continuar ? */
    cr_assert_str_eq(vamos_bpe_token(b, ids[0]), M "¿");
    cr_assert_str_eq(vamos_bpe_token(b, ids[1]), "Desea");
    vamos_bpe_free(b);
    free(text);
}

Test(codec, unknown_characters)
{
    vamos_bpe *b = parse_ok(hand_file);
    /* z is not in the alphabet; neither is an invalid byte; Ω is not either */
    assert_ids(b, "z", (int32_t[]){ 7, VAMOS_BPE_UNK }, 2);
    assert_ids(b, "abz\xFF" "c", (int32_t[]){ 9, VAMOS_BPE_UNK, VAMOS_BPE_UNK, 6 }, 4);
    assert_ids(b, "aΩb", (int32_t[]){ 7, 4, VAMOS_BPE_UNK, 5 }, 4);
    int32_t ids[8];
    int n = vamos_bpe_encode(b, "zz, ab", ids, 8, NULL);
    char *d = vamos_bpe_decode(b, ids, n);
    cr_assert_str_eq(d, "<unk><unk><unk> ab");
    free(d);
    vamos_bpe_free(b);
}

Test(codec, truncation_sets_cut)
{
    vamos_bpe *b = parse_ok(hand_file);
    int32_t ids[4] = { -1, -1, -1, -1 };
    bool cut = false;
    cr_assert_eq(vamos_bpe_encode(b, "ab ab ab ab ab", ids, 3, &cut), 3);
    cr_assert(cut);
    cr_assert(ids[0] == 9 && ids[2] == 9 && ids[3] == -1);
    /* truncated inside a word */
    cr_assert_eq(vamos_bpe_encode(b, "abc", ids, 1, &cut), 1);
    cr_assert(cut);
    /* an exact fit is not cut */
    cr_assert_eq(vamos_bpe_encode(b, "ab ab ab", ids, 3, &cut), 3);
    cr_assert(!cut);
    cr_assert_eq(vamos_bpe_encode(b, "ab", ids, 0, &cut), 0);
    cr_assert(cut);
    cr_assert_eq(vamos_bpe_encode(b, "ab", NULL, 0, NULL), 0);
    cr_assert_eq(vamos_bpe_encode(b, "ab", ids, -3, &cut), 0);
    vamos_bpe_free(b);
}

Test(codec, empty_lines)
{
    vamos_bpe *b = parse_ok(hand_file);
    int32_t ids[4];
    bool cut = true;
    cr_assert_eq(vamos_bpe_encode(b, "", ids, 4, &cut), 0);
    cr_assert(!cut);
    cr_assert_eq(vamos_bpe_encode(b, " \t\r\n ", ids, 4, &cut), 0);
    cr_assert_eq(vamos_bpe_encode(b, NULL, ids, 4, &cut), 0);
    cr_assert_eq(vamos_bpe_encode(NULL, "ab", ids, 4, &cut), 0);
    char *d = vamos_bpe_decode(b, ids, 0);
    cr_assert_str_eq(d, "");
    free(d);
    d = vamos_bpe_decode(b, NULL, 5);
    cr_assert_str_eq(d, "");
    free(d);
    vamos_bpe_free(b);
}

Test(codec, decode_skips_specials_and_bad_ids)
{
    vamos_bpe *b = parse_ok(hand_file);
    int32_t ids[] = { VAMOS_BPE_BOS, 9, VAMOS_BPE_PAD, -7, 8, 10, 1 << 30, 7, 6, VAMOS_BPE_EOS, VAMOS_BPE_UNK };
    char *d = vamos_bpe_decode(b, ids, sizeof ids / sizeof *ids);
    cr_assert_str_eq(d, "abab c<unk>");
    free(d);
    /* a word-initial token first: its space is dropped */
    d = vamos_bpe_decode(b, (int32_t[]){ 7, 7, 4 }, 3);
    cr_assert_str_eq(d, " a");
    free(d);
    cr_assert_null(vamos_bpe_token(b, 10));
    cr_assert_null(vamos_bpe_token(b, -1));
    cr_assert_str_eq(vamos_bpe_token(b, 3), "<unk>");
    cr_assert_null(vamos_bpe_decode(NULL, ids, 1));
    vamos_bpe_free(b);
    vamos_bpe_free(NULL);
}

Test(codec, long_words)
{
    /* a word far past the encoder's small buffers, and overlapping merges */
    const char *lines[] = { "aaaa aaaa aaaa aaaa" };
    char *text = learn_ok(lines, 1, 100, 1);
    vamos_bpe *b = parse_ok(text);
    size_t n = 100000;
    char *word = malloc(n + 1);
    memset(word, 'a', n);
    word[n] = 0;
    int32_t *ids = malloc(n * sizeof *ids);
    int k = vamos_bpe_encode(b, word, ids, (int)n, NULL);
    cr_assert_lt(k, 30000);
    char *d = vamos_bpe_decode(b, ids, k);
    cr_assert_str_eq(d, word);
    free(d);
    free(ids);
    free(word);
    vamos_bpe_free(b);
    free(text);
}

/* ---- Reading the file ---- */

/* hand_file with line `no` (1-based) replaced by `with` (NULL: cut there). */
static char *edit(int no, const char *with)
{
    static char out[1024];
    const char *p = hand_file;
    size_t n = 0;
    for (int line = 1; *p; line++) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p);
        if (line == no) {
            if (!with)
                break;
            n += (size_t)sprintf(out + n, "%s\n", with);
        } else {
            memcpy(out + n, p, len + 1);
            n += len + 1;
        }
        p = nl + 1;
    }
    out[n] = 0;
    return out;
}

Test(parse, malformed_files)
{
    /* hand_file: line 1 header, 2 counts, 3-12 tokens 0-9, 13-14 merges */
    parse_fails("", 1);
    parse_fails("#vamos-bpe v2\n10 2\n", 1);
    parse_fails("#vamos-bpe v1\r\n10 2\r\n", 1);
    parse_fails("#vamos-bpe v1\n", 2);
    parse_fails(edit(2, "10"), 2);
    parse_fails(edit(2, "10 -2"), 2);
    parse_fails(edit(2, "10  2"), 2);
    parse_fails(edit(2, "3 0"), 2);             /* no room for the specials */
    parse_fails(edit(2, "10 7"), 2);            /* more merges than tokens */
    parse_fails(edit(2, "99999999999 2"), 2);   /* not a count */
    parse_fails(edit(2, "1000 2"), 2);          /* cannot fit in the file */
    /* wrong counts: with 11 tokens, 5 are the alphabet and "ab" is one */
    parse_fails(edit(2, "11 2"), 11);
    /* with 3 merges the alphabet is a b c, and the first merge, 4 5, does
     * not make token 7 "▁" */
    parse_fails(edit(2, "10 3"), 13);
    parse_fails(edit(3, "<PAD>"), 3);
    parse_fails(edit(6, "<unknown>"), 6);
    parse_fails(edit(9, "a"), 9);               /* repeated character */
    parse_fails(edit(9, "cd"), 9);              /* not one character */
    parse_fails(edit(9, "\xFF"), 9);            /* not UTF-8 */
    parse_fails(edit(9, ""), 9);                /* empty */
    parse_fails(edit(9, "\\q"), 9);             /* unknown escape */
    parse_fails(edit(9, "\\"), 9);              /* escape cut short */
    parse_fails(edit(13, "4 55"), 13);          /* merge id out of range */
    parse_fails(edit(13, "3 5"), 13);           /* a special */
    parse_fails(edit(14, "7 9"), 14);           /* the token it makes */
    parse_fails(edit(14, "8 7"), 14);           /* the strings do not match */
    parse_fails(edit(14, "7 8 "), 14);
    parse_fails(edit(14, "7,8"), 14);
    parse_fails(edit(14, "4 5"), 14);           /* "ab" again, and not "▁ab" */
    parse_fails(edit(8, NULL), 8);              /* truncated in the tokens */
    parse_fails(edit(14, NULL), 14);            /* truncated in the merges */
    char longer[1024];
    snprintf(longer, sizeof longer, "%sjunk\n", hand_file);
    parse_fails(longer, 15);
    snprintf(longer, sizeof longer, "%s\n", hand_file);
    parse_fails(longer, 15);

    /* a repeated pair: tokens 8 and 9 both "ab" */
    parse_fails("#vamos-bpe v1\n10 2\n<pad>\n<eos>\n<bos>\n<unk>\na\nb\nc\n" M "\nab\nab\n4 5\n4 5\n", 14);
    /* but two merges may make the same string from different pairs */
    vamos_bpe *b = parse_ok("#vamos-bpe v1\n11 4\n<pad>\n<eos>\n<bos>\n<unk>\na\nb\nc\nab\nbc\nabc\nabc\n"
                            "4 5\n5 6\n7 6\n4 8\n");
    /* no marker in this alphabet: words start with <unk> */
    assert_ids(b, "abc", (int32_t[]){ VAMOS_BPE_UNK, 9 }, 2);
    assert_ids(b, "a bc", (int32_t[]){ VAMOS_BPE_UNK, 4, VAMOS_BPE_UNK, 8 }, 4);
    vamos_bpe_free(b);

    /* no final newline is fine; a NULL error buffer too */
    size_t len = strlen(hand_file) - 1;
    b = vamos_bpe_parse(hand_file, len, NULL, 0);
    cr_assert_not_null(b);
    vamos_bpe_free(b);
    cr_assert_null(vamos_bpe_parse(NULL, 0, NULL, 0));
    char err[8];
    cr_assert_null(vamos_bpe_parse("x", 1, err, sizeof err)); /* the message is cut to fit */
    cr_assert_eq(strlen(err), sizeof err - 1);
}

Test(parse, never_crashes_on_mutated_files, .timeout = 60)
{
    const char *lines[] = { "¿Desea continuar? no, no, sí.", "El «archivo» no existe; ¿desea crearlo?" };
    char *text = learn_ok(lines, 2, 100, 1);
    size_t len = strlen(text);
    char *mut = malloc(len + 8);
    rng_state = 42;
    int accepted = 0;
    for (int t = 0; t < 20000; t++) {
        memcpy(mut, text, len);
        size_t n = len;
        for (int k = 1 + (int)rnd(3); k > 0; k--) {
            size_t at = rnd((uint32_t)n);
            switch (rnd(4)) {
            case 0:
                mut[at] = (char)rnd(256);
                break;
            case 1:
                mut[at] = "0123456789 \n\\"[rnd(13)];
                break;
            case 2:
                n = at;
                break;
            default:
                memmove(mut + at, mut + at + 1, n - at - 1);
                n--;
                break;
            }
            if (!n)
                break;
        }
        char err[128];
        vamos_bpe *b = vamos_bpe_parse(mut, n, err, sizeof err);
        if (!b) {
            cr_assert(!strncmp(err, "line ", 5), "%s", err);
            continue;
        }
        accepted++;
        int32_t ids[64];
        for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
            int k = vamos_bpe_encode(b, lines[i], ids, 64, NULL);
            for (int j = 0; j < k; j++)
                cr_assert(ids[j] >= 0 && ids[j] < vamos_bpe_size(b));
            free(vamos_bpe_decode(b, ids, k));
        }
        vamos_bpe_free(b);
    }
    cr_assert_gt(accepted, 0);
    free(mut);
    free(text);
}
