/* test_metrics.c - corpus BLEU / chrF and the 13a tokenizer (compiler/train/metrics.c).
 *
 * Every expected score below is worked out by hand in the comment next to it
 * from sacreBLEU 2.x's definitions (bleu.py compute_bleu, chrf.py
 * _compute_f_score), so a test failure means a real disagreement with
 * sacreBLEU rather than with a previous run of this code. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* Corpus scores of n (hyp, ref) pairs. */
static void score(const char *const *pairs, size_t n, double *bleu, double *chrf)
{
    vamos_metrics *m = vamos_metrics_new();
    cr_assert_not_null(m);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(vamos_metrics_add(m, pairs[2 * i], pairs[2 * i + 1]), 0);
    *bleu = vamos_metrics_bleu(m);
    *chrf = vamos_metrics_chrf(m);
    vamos_metrics_free(m);
}

static void expect_tok(const char *in, const char *want)
{
    char *got = vamos_tok13a(in);
    cr_assert_not_null(got);
    cr_expect_str_eq(got, want, "tok13a(\"%s\")", in ? in : "(null)");
    free(got);
}

/* ------------------------------------------------------------ 13a */

Test(tok13a, punctuation_is_split_off)
{
    expect_tok("Hello, world!", "Hello , world !");
    expect_tok("(hi)...", "( hi ) . . .");
    expect_tok("x.y,z", "x . y , z");
    expect_tok("a.\n", "a .");
    /* ' and - are not in the punctuation class; "5-" is split by the
     * digit-dash rule only. */
    expect_tok("it's 5-year-old", "it's 5 - year-old");
    expect_tok("1990-2000", "1990 - 2000");
}

Test(tok13a, numbers_keep_their_separators)
{
    expect_tok("3.14", "3.14");
    /* "0." is not split (digit before the period) but ". " is. */
    expect_tok("1,000.50 $5.", "1,000.50 $ 5 .");
}

Test(tok13a, abbreviations)
{
    /* Rule 2 splits "e." and "g.", rule 3 the period before the space. */
    expect_tok("e.g. this", "e . g . this");
}

Test(tok13a, entities_and_mteval_cleanup)
{
    expect_tok("&quot;Hi&quot; &amp; &lt;b&gt;", "\" Hi \" & < b >");
    /* Replacements run one after another, each once: &amp;quot; becomes
     * &quot; only after the &quot; pass is over. */
    expect_tok("&amp;quot;", "& quot ;");
    expect_tok("a<skipped>b", "ab");
    expect_tok("end-\nof line\nbreak", "endof line break");
}

Test(tok13a, unicode_text_and_whitespace)
{
    expect_tok("café.", "café .");
    /* U+00A0 and U+3000 are whitespace to Python's str.split(). */
    expect_tok("a\xc2\xa0" "b\xe3\x80\x80" "c", "a b c");
    /* U+200B is not. */
    expect_tok("a\xe2\x80\x8b" "b", "a\xe2\x80\x8b" "b");
    /* Invalid UTF-8 bytes are ordinary (non-punctuation) characters. */
    expect_tok("\xff.\xfe", "\xff . \xfe");
}

Test(tok13a, empty_and_null)
{
    expect_tok("", "");
    expect_tok("  \t ", "");
    expect_tok(NULL, "");
}

/* ------------------------------------------------------------ BLEU */

Test(bleu, perfect_match_is_100)
{
    static const char *const p[] = {"The cat sat on the mat.", "The cat sat on the mat."};
    double b, c;
    score(p, 1, &b, &c);
    /* All precisions 100, BP 1: exp(4 log 100 / 4) = 100 up to rounding
     * (sacreBLEU prints 100.00000000000004 here too). */
    cr_expect_float_eq(b, 100.0, 1e-9);
    cr_expect_eq(c, 100.0);
}

Test(bleu, two_segment_corpus)
{
    /* Segment 1: hyp "the cat sat on the mat", ref "the cat is on the mat"
     *   1-grams: hyp the x2, cat, sat, on, mat = 6; matched the x2, cat, on,
     *            mat = 5
     *   2-grams: 5; matched "the cat", "on the", "the mat" = 3
     *   3-grams: 4; matched "on the mat" = 1
     *   4-grams: 3; matched 0
     * Segment 2: hyp "a dog barks", ref "the dog barks loudly"
     *   1-grams: 3, matched dog, barks = 2; 2-grams: 2, matched "dog barks"
     *   = 1; 3-grams: 1, matched 0; 4-grams: 0
     * Corpus: correct = 7 4 1 0, total = 9 7 5 3, c = 9, r = 10.
     *   BP = exp(1 - 10/9) = 0.894839316814...
     *   p = 700/9, 400/7, 100/5, and for the unmatched 4-grams 'exp'
     *   smoothing gives 100 / (2 * 3) = 50/3
     *   geometric mean = (700/9 * 400/7 * 20 * 50/3)^(1/4)
     *                  = (280000000/189)^(1/4) = 34.887837979736...
     *   BLEU = 31.2190091029181... */
    static const char *const p[] = {
        "the cat sat on the mat", "the cat is on the mat",
        "a dog barks", "the dog barks loudly",
    };
    double b, c;
    score(p, 2, &b, &c);
    double want = exp(1.0 - 10.0 / 9.0) * pow(280000000.0 / 189.0, 0.25);
    cr_expect_float_eq(b, want, 1e-6, "BLEU %.15f, want %.15f", b, want);
    cr_expect_float_eq(b, 31.2190091029181, 1e-6);
}

Test(bleu, clipping_and_exp_smoothing)
{
    /* hyp "the the the the", ref "the cat": correct = 1 0 0 0 (the 4 "the"
     * are clipped to the reference's 1), total = 4 3 2 1, c = 4 >= r = 2 so
     * BP = 1.  p1 = 25; the smoothing factor doubles at each unmatched
     * order: p2 = 100/(2*3), p3 = 100/(4*2), p4 = 100/(8*1).
     * BLEU = (25 * 50/3 * 12.5 * 12.5)^(1/4) = 65104.1666...^(1/4)
     *      = 15.973577606156... */
    static const char *const p[] = {"the the the the", "the cat"};
    double b, c;
    score(p, 1, &b, &c);
    cr_expect_float_eq(b, pow(25.0 * 100.0 / 6.0 * 12.5 * 12.5, 0.25), 1e-9);
    cr_expect_float_eq(b, 15.9735776061568, 1e-6);
}

Test(bleu, brevity_penalty)
{
    /* hyp "the cat sat on" is a prefix of "the cat sat on the mat": all four
     * precisions are 100 but c = 4 < r = 6, BP = exp(1 - 6/4) = exp(-0.5).
     * BLEU = 100 exp(-0.5) = 60.653065971263... */
    static const char *const p[] = {"the cat sat on", "the cat sat on the mat"};
    double b, c;
    score(p, 1, &b, &c);
    cr_expect_float_eq(b, 100.0 * exp(-0.5), 1e-9);
}

Test(bleu, corpus_without_4grams_scores_0)
{
    /* "the cat" has no 3- or 4-grams: compute_bleu stops at total[2] == 0,
     * precisions 3 and 4 stay 0 and my_log(0) = -9999999999 makes the
     * score 0 even though the match is perfect.  chrF has no such cliff:
     * effective orders 1..5 all match perfectly. */
    static const char *const p[] = {"the cat", "the cat"};
    double b, c;
    score(p, 1, &b, &c);
    cr_expect_eq(b, 0.0);
    cr_expect_eq(c, 100.0);
}

Test(bleu, trailing_whitespace_is_stripped_before_13a)
{
    /* sacreBLEU tokenises sent.rstrip(): "d-\n" keeps its dash (the "-\n"
     * join would otherwise remove it), so this is a perfect match. */
    static const char *const p[] = {"a b c d-\n", "a b c d-"};
    double b, c;
    score(p, 1, &b, &c);
    cr_expect_float_eq(b, 100.0, 1e-9);
}

Test(bleu, tokenisation_matters)
{
    /* Without 13a "mat." would be one token and nothing would match at the
     * end; with it hyp and ref are the same 7 tokens. */
    static const char *const p[] = {"the cat sat on the mat.", "the cat sat on the mat ."};
    double b, c;
    score(p, 1, &b, &c);
    cr_expect_float_eq(b, 100.0, 1e-9);
}

Test(bleu, empty_inputs)
{
    double b, c;
    /* Empty hypothesis: c = 0, no matches. */
    static const char *const p[] = {"", "the cat sat on the mat"};
    score(p, 1, &b, &c);
    cr_expect_eq(b, 0.0);
    cr_expect_eq(c, 0.0);

    /* Empty corpus, NULL object, NULL strings. */
    vamos_metrics *m = vamos_metrics_new();
    cr_assert_not_null(m);
    cr_expect_eq(vamos_metrics_bleu(m), 0.0);
    cr_expect_eq(vamos_metrics_chrf(m), 0.0);
    cr_expect_eq(vamos_metrics_add(m, NULL, NULL), 0);
    cr_expect_eq(vamos_metrics_add(m, "x", ""), 0);
    cr_expect_eq(vamos_metrics_bleu(m), 0.0);
    cr_expect_eq(vamos_metrics_chrf(m), 0.0);
    vamos_metrics_free(m);
    cr_expect_eq(vamos_metrics_add(NULL, "a", "a"), -1);
    cr_expect_eq(vamos_metrics_bleu(NULL), 0.0);
    cr_expect_eq(vamos_metrics_chrf(NULL), 0.0);
    vamos_metrics_free(NULL);
}

/* ------------------------------------------------------------ chrF */

Test(chrf, tiny_pair)
{
    /* hyp "ab", ref "abc":
     *   order 1: hyp 2, ref 3, match 2    order 2: hyp 1, ref 2, match 1
     *   order 3: hyp 0, ref 1             orders 4-6: nothing
     * Effective orders (hyp > 0 and ref > 0): 1 and 2.
     *   P = (2/2 + 1/1) / 2 = 1,  R = (2/3 + 1/2) / 2 = 7/12
     *   F2 = 5 P R / (4 P + R) = (35/12) / (55/12) = 7/11
     * chrF = 700/11 = 63.6363... */
    static const char *const p[] = {"ab", "abc"};
    double b, c;
    score(p, 1, &b, &c);
    cr_expect_float_eq(c, 700.0 / 11.0, 1e-9);
}

Test(chrf, hyp_ngrams_not_counted_where_ref_has_none)
{
    /* Segment 1, hyp "abcd", ref "ab":
     *   order 1: hyp 4, ref 2, match 2    order 2: hyp 3, ref 1, match 1
     *   order 3: the reference has no 3-grams, so sacreBLEU records hyp 0
     *   (not 2); likewise order 4 (not 1).
     * Segment 2, hyp = ref = "xyz": orders 1-3: 3/3/3, 2/2/2, 1/1/1.
     * Corpus: order 1: hyp 7, ref 5, match 5; order 2: 5, 3, 3;
     *         order 3: 1, 1, 1 (it would be 3, 1, 1 without the rule).
     *   P = (5/7 + 3/5 + 1) / 3 = 27/35,  R = 1
     *   F2 = 5 (27/35) / (4 (27/35) + 1) = 135/143
     * chrF = 13500/143 = 94.4055944... */
    static const char *const p[] = {"abcd", "ab", "xyz", "xyz"};
    double b, c;
    score(p, 2, &b, &c);
    cr_expect_float_eq(c, 13500.0 / 143.0, 1e-9);

    /* Segment 1 alone: P = (2/4 + 1/3) / 2 = 5/12, R = 1,
     * F2 = (25/12) / (20/12 + 1) = 25/32. */
    score(p, 1, &b, &c);
    cr_expect_float_eq(c, 78.125, 1e-9);
}

Test(chrf, whitespace_is_ignored)
{
    static const char *const p[] = {
        "a b", "ab",
        "a\xc2\xa0" "b\tc\n", "abc",   /* NBSP, tab, newline */
    };
    double b, c;
    score(p, 2, &b, &c);
    cr_expect_eq(c, 100.0);
}

Test(chrf, characters_are_code_points)
{
    /* "é" (C3 A9) and "è" (C3 A8) share a byte but no character:
     * order 1: hyp 1, ref 1, match 0 -> P = R = 0 -> chrF 0. */
    static const char *const p[] = {"\xc3\xa9", "\xc3\xa8"};
    double b, c;
    score(p, 1, &b, &c);
    cr_expect_eq(c, 0.0);

    /* Invalid bytes are one character each: 2 unigrams, 1 bigram, all
     * matched. */
    static const char *const q[] = {"\xff\xfe", "\xff\xfe"};
    score(q, 1, &b, &c);
    cr_expect_eq(c, 100.0);
}

/* ------------------------------------------------------------ robustness */

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

Test(metrics, random_bytes_never_crash)
{
    /* Arbitrary bytes, punctuation, entities and broken UTF-8. */
    static const char *const atoms[] = {
        "a", "b", "1", ".", ",", "-", " ", "\n", "-\n", "&amp;", "&quot;",
        "<skipped>", "\xc3", "\xa9", "\xc3\xa9", "\xe2\x80\xa8", "\xf0\x9f",
        "\xff", "\xed\xa0\x80", "\xc2\xa0", "!", "(", "'",
    };
    enum { NATOMS = sizeof atoms / sizeof atoms[0] };
    uint32_t seed = 12345;
    vamos_metrics *m = vamos_metrics_new();
    cr_assert_not_null(m);
    char h[512], r[512];
    for (int seg = 0; seg < 2000; seg++) {
        char *bufs[2] = {h, r};
        for (int k = 0; k < 2; k++) {
            size_t len = 0, want = lcg(&seed) % 40;
            for (size_t i = 0; i < want; i++) {
                if (lcg(&seed) % 4 == 0) {
                    bufs[k][len++] = (char)(1 + lcg(&seed) % 255);
                } else {
                    const char *a = atoms[lcg(&seed) % NATOMS];
                    memcpy(bufs[k] + len, a, strlen(a));
                    len += strlen(a);
                }
            }
            bufs[k][len] = '\0';
        }
        cr_assert_eq(vamos_metrics_add(m, h, r), 0);
        char *t = vamos_tok13a(h);
        cr_assert_not_null(t);
        free(t);
    }
    double b = vamos_metrics_bleu(m), c = vamos_metrics_chrf(m);
    cr_expect(b >= 0.0 && b <= 100.0 + 1e-9, "BLEU %f", b);
    cr_expect(c >= 0.0 && c <= 100.0 + 1e-9, "chrF %f", c);
    vamos_metrics_free(m);
}

Test(metrics, long_segment_grows_tables)
{
    /* 3000 distinct tokens: thousands of distinct word and character
     * n-grams in one segment, far beyond the tables' initial size. */
    size_t cap = 3000 * 8;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    size_t len = 0;
    for (int i = 0; i < 3000; i++)
        len += (size_t)snprintf(s + len, cap - len, "w%d ", i);
    static const char *const tail = "and a final short segment";
    vamos_metrics *m = vamos_metrics_new();
    cr_assert_not_null(m);
    cr_assert_eq(vamos_metrics_add(m, s, s), 0);
    cr_assert_eq(vamos_metrics_add(m, tail, tail), 0);
    cr_expect_float_eq(vamos_metrics_bleu(m), 100.0, 1e-9);
    cr_expect_eq(vamos_metrics_chrf(m), 100.0);
    vamos_metrics_free(m);
    free(s);
}

Test(metrics, ten_thousand_segments)
{
    /* Size and consistency, not exact figures: 10k segments of 12-30
     * random words, each hypothesis being its reference minus the last
     * word.  Both scores must land strictly between 50 and 100, and
     * scoring the corpus twice over (every statistic doubled, so every
     * ratio unchanged) must give the same scores. */
    static const char *const words[] = {
        "the", "cat", "sat", "on", "mat", "a", "dog", "barked", "at",
        "postman", "yesterday", "while", "it", "rained", "heavily", ".", ",",
    };
    enum { NWORDS = sizeof words / sizeof words[0] };
    vamos_metrics *once = vamos_metrics_new(), *twice = vamos_metrics_new();
    cr_assert(once && twice);
    uint32_t seed = 7;
    char ref[512], hyp[512];
    for (int seg = 0; seg < 10000; seg++) {
        size_t n = 12 + lcg(&seed) % 19, len = 0, cut = 0;
        for (size_t i = 0; i < n; i++) {
            const char *w = words[lcg(&seed) % NWORDS];
            if (i == n - 1)
                cut = len;
            len += (size_t)snprintf(ref + len, sizeof ref - len, "%s%s", i ? " " : "", w);
        }
        memcpy(hyp, ref, cut);
        hyp[cut] = '\0';
        cr_assert_eq(vamos_metrics_add(once, hyp, ref), 0);
        cr_assert_eq(vamos_metrics_add(twice, hyp, ref), 0);
        cr_assert_eq(vamos_metrics_add(twice, hyp, ref), 0);
    }
    double b = vamos_metrics_bleu(once), c = vamos_metrics_chrf(once);
    cr_expect(b > 50.0 && b < 100.0, "BLEU %f", b);
    cr_expect(c > 50.0 && c < 100.0, "chrF %f", c);
    cr_expect_float_eq(vamos_metrics_bleu(twice), b, 1e-9);
    cr_expect_float_eq(vamos_metrics_chrf(twice), c, 1e-9);
    vamos_metrics_free(once);
    vamos_metrics_free(twice);
}
