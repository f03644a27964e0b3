/* metrics.h - corpus BLEU (sacreBLEU's defaults: 13a tokenisation, 4-grams,
 * brevity penalty, 'exp' smoothing) and chrF (sacreBLEU's defaults:
 * character 6-grams, word n-grams 0, beta 2, whitespace ignored).
 *
 * Both metrics are corpus-level: every segment is reduced at once to
 * sufficient statistics (n-gram match and total counts, lengths), the
 * statistics are summed over the corpus, and the score is computed from the
 * sums - exactly what sacrebleu.corpus_bleu / corpus_chrf do with a single
 * reference stream.  It is not the mean of sentence scores.
 *
 * Differences from sacreBLEU, by design: an empty reference is scored as a
 * reference with no n-grams (sacreBLEU raises an error), and bytes that are
 * not valid UTF-8 count as one character each (sacreBLEU refuses to decode
 * them).  Everything else is meant to agree to the last bit; see metrics.c.
 */
#ifndef VAMOS_METRICS_H
#define VAMOS_METRICS_H

typedef struct vamos_metrics vamos_metrics;   /* accumulates sufficient statistics */

vamos_metrics *vamos_metrics_new(void);        /* NULL when out of memory */

/* Add one segment: hypothesis and its single reference, UTF-8 strings
 * (NULL reads as ""). 0, or -1 when out of memory (the corpus statistics are
 * then left as they were, so the call may be retried). */
int vamos_metrics_add(vamos_metrics *m, const char *hyp, const char *ref);

double vamos_metrics_bleu(const vamos_metrics *m);   /* 0..100 */
double vamos_metrics_chrf(const vamos_metrics *m);   /* 0..100 */
void vamos_metrics_free(vamos_metrics *m);

/* sacreBLEU's 13a tokenisation of one line (Tokenizer13a.__call__; NULL reads
 * as ""), malloc'd; NULL when out of memory. Exposed for tests. Note that
 * sacreBLEU's BLEU strips trailing whitespace from a segment before calling
 * the tokenizer; vamos_metrics_add does that too, this function does not. */
char *vamos_tok13a(const char *line);

#endif
