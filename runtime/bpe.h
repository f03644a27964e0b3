/* bpe.h - byte-pair-encoding subwords: read a vocabulary, encode, decode.
 *
 * Pre-tokenisation. A line is cut into words: a maximal run of "letters"
 * (ASCII letters and digits, and every byte >= 0x80, so UTF-8 words stay
 * whole), or a single other non-space character (each punctuation mark is
 * its own word; so are the common non-ASCII ones, ¡ ¿ « » “ ” ‘ ’ – — …). Whitespace (ASCII space, \t \n \v \f \r) only separates;
 * a word that follows whitespace or starts the line gets the marker "▁"
 * (U+2581) in front:
 *
 *     "Hello, world!  (x)"  ->  "▁Hello" "," "▁world" "!" "▁(" "x" ")"
 *
 * A word is then a sequence of characters (a valid UTF-8 sequence, or else a
 * single byte; the marker is a character like any other), and merges apply
 * within a word only. Decoding concatenates the token strings, turns every
 * "▁" back into a space and drops the one in front, so decode(encode(s)) is
 * s with its whitespace normalised: runs collapsed to one space, leading and
 * trailing whitespace gone (and characters outside the alphabet as "<unk>").
 * Only ASCII whitespace separates words: other Unicode spaces and
 * punctuation (¿ « » …) are letters, kept inside words; a "▁" in the input
 * itself comes back as a space.
 *
 * The vocabulary: the specials <pad> 0, <eos> 1, <bos> 2, <unk> 3; then the
 * alphabet (single characters, sorted by bytes); then one token per merge,
 * in merge order. The file (UTF-8 text, written by compiler/train/bpe_learn.c):
 *
 *     #vamos-bpe v1
 *     N M                       tokens, merges
 *     N token lines             "\\" is a backslash, "\n" newline, "\t" tab
 *     M merge lines "L R"       ids of the two tokens merge i joins; its
 *                               result is token 4 + (N - 4 - M) + i
 *
 * The reader checks everything: the header, the counts, the specials, that
 * each alphabet token is one character and appears once, that every merge
 * joins two earlier non-special tokens and that the result's string is
 * their concatenation. (Two merges giving the same string, "a"+"bc" and
 * "ab"+"c", are accepted as two tokens.)
 *
 * Encoding is standard BPE: of the adjacent pairs in a word, the one whose
 * merge came first is merged (all its occurrences, left to right), until no
 * pair has a merge. Ids carry no <bos>/<eos>; the caller adds them.
 *
 * No function crashes on any input: malformed files give a message, any
 * line encodes (ids out of range decode to nothing). A parsed vocabulary is
 * never written to again, so threads may share it.
 */
#ifndef VAMOS_RUNTIME_BPE_H
#define VAMOS_RUNTIME_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { VAMOS_BPE_PAD = 0, VAMOS_BPE_EOS = 1, VAMOS_BPE_BOS = 2, VAMOS_BPE_UNK = 3, VAMOS_BPE_SPECIALS = 4 };

/* The word marker "▁" (U+2581) as UTF-8. */
#define VAMOS_BPE_MARKER "\xE2\x96\x81"
#define VAMOS_BPE_MARKER_LEN 3

typedef struct vamos_bpe vamos_bpe;

/* Parse the file text (size bytes); NULL with a message naming the line
 * number on a malformed file (or "out of memory"). */
vamos_bpe *vamos_bpe_parse(const char *text, size_t size, char *err, size_t errlen);
void vamos_bpe_free(vamos_bpe *b);
/* The number of tokens. */
int vamos_bpe_size(const vamos_bpe *b);
/* The string of token id (the marker included); NULL out of range. */
const char *vamos_bpe_token(const vamos_bpe *b, int id);
/* Encode one line into ids[0..max); returns the number of ids (truncated at
 * max; *cut set when truncated, may be NULL). */
int vamos_bpe_encode(const vamos_bpe *b, const char *line, int32_t *ids, int max, bool *cut);
/* Decode ids into a malloc'd NUL-terminated string (NULL if out of memory).
 * <pad> <eos> <bos> and ids out of range are skipped, <unk> is "<unk>". */
char *vamos_bpe_decode(const vamos_bpe *b, const int32_t *ids, int n);

/* Shared with the learner, so that both cut text the same way. */

/* The next word of line at or after *pos: true with its bytes at
 * line[*start, *start + *len) and *marked when it takes the marker (it
 * follows whitespace or starts the line); *pos moves past it. False at the
 * end of the line. */
bool vamos_bpe_next_word(const char *line, size_t *pos, size_t *start, size_t *len, bool *marked);
/* The length of the character at s (n > 0 bytes left): a valid UTF-8
 * sequence (strict: no overlongs, surrogates or code points above
 * U+10FFFF), or else 1; *valid tells which. */
int vamos_bpe_char_len(const char *s, size_t n, bool *valid);

#endif
