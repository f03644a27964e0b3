/* bpe_learn.h - learn a byte-pair-encoding vocabulary from a corpus.
 *
 * The lines are cut into words as runtime/bpe.h describes ("▁" marking a
 * word after whitespace); a word starts as its characters. The alphabet is
 * every character seen at least min_char_count times (words weighted by
 * their frequency), plus the marker always; rarer characters and invalid
 * UTF-8 bytes stay out of it (they encode as <unk>, and no merge involves
 * them). Then, until the vocabulary has `size` tokens, the most frequent
 * adjacent pair within words is merged into a new token; ties go to the
 * pair whose (left string, right string) is smallest bytewise, so the
 * result depends only on the multiset of lines. Learning stops early when
 * no pair occurs twice.
 *
 * The result is the vocabulary file runtime/bpe.c reads: specials, the
 * alphabet sorted by bytes, one token per merge, then the merges.
 */
#ifndef VAMOS_BPE_LEARN_H
#define VAMOS_BPE_LEARN_H

#include <stddef.h>

/* Learn a BPE vocabulary of at most `size` tokens from lines[0..n) (a NULL
 * line counts as empty); writes the file text into a malloc'd string *out
 * (NUL-terminated, length *outlen). 0, or -1 with a message (the vocabulary
 * is too small for the alphabet, out of memory). */
int bpe_learn(const char *const *lines, size_t n, int size, int min_char_count, char **out, size_t *outlen,
              char *err, size_t errlen);

#endif
