/* bpe.c - byte-pair-encoding subwords: the vocabulary reader, the encoder
 * and the decoder (see bpe.h for the scheme and the file format).
 *
 * The vocabulary keeps every token string in one block, a hash from
 * character string to alphabet id (to start a word) and a hash from pair
 * (left id, right id) to merge rank (to merge it). Both are open-addressing
 * tables of at most half load.
 *
 * Encoding a word is the usual "lowest rank first" BPE, done in
 * O(n log n) rather than by rescanning: the word is a doubly linked list of
 * symbols and a min-heap holds (rank, position) of every adjacent pair that
 * has a merge. Popping in (rank, position) order merges all occurrences of
 * the best pair left to right, as the rescanning algorithm does: a merge
 * only creates pairs that contain its result, and those have later ranks
 * (a merge's operands are earlier tokens), so no pair of the current rank
 * can appear while its occurrences are being merged. Entries that went
 * stale (a side already merged away) are recognised by re-reading the pair
 * and skipped.
 */
#include "bpe.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vamos_bpe {
    int ntok, nalpha, nmerge;
    int32_t marker;        /* id of "▁", or <unk> when not in the alphabet */
    char *blob;            /* all token strings, NUL-terminated */
    const char **tok;      /* ntok pointers into blob */
    uint32_t *toklen;
    int32_t *merge_result; /* per merge rank: the token it makes */
    /* pair -> merge rank; a free slot has rank -1 */
    uint64_t *pair_key;
    int32_t *pair_rank;
    size_t pair_mask;
    /* alphabet character -> id; a free slot holds -1 */
    int32_t *char_slot;
    size_t char_mask;
};

static const char *const special_names[VAMOS_BPE_SPECIALS] = { "<pad>", "<eos>", "<bos>", "<unk>" };

/* ---- Pre-tokenisation and characters (shared with the learner) ---- */

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool is_letter(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The byte length of the non-ASCII punctuation mark s starts with (a word
 * of its own, like ASCII punctuation), or 0: Spanish ¡ ¿, quotes « » “ ”
 * ‘ ’, dashes – —, the ellipsis … and the middle dot. Without this,
 * "¿Desea" and "«archivo»" would be learnt as words of their own. */
static size_t punct_len(const unsigned char *s)
{
    if (s[0] == 0xC2 && (s[1] == 0xA1 || s[1] == 0xBF || s[1] == 0xAB || s[1] == 0xBB || s[1] == 0xB7))
        return 2;
    if (s[0] == 0xE2 && s[1] == 0x80 && s[2] &&
        (s[2] == 0x9C || s[2] == 0x9D || s[2] == 0x98 || s[2] == 0x99 || s[2] == 0x93 || s[2] == 0x94 || s[2] == 0xA6))
        return 3;
    return 0;
}

bool vamos_bpe_next_word(const char *line, size_t *pos, size_t *start, size_t *len, bool *marked)
{
    const unsigned char *s = (const unsigned char *)line;
    size_t i = *pos;
    bool space = i == 0;
    while (s[i] && is_space(s[i])) {
        i++;
        space = true;
    }
    if (!s[i]) {
        *pos = i;
        return false;
    }
    size_t j = i + 1, p = punct_len(s + i);
    if (p)
        j = i + p;
    else if (is_letter(s[i]))
        while (s[j] && is_letter(s[j]) && !punct_len(s + j))
            j++;
    *start = i;
    *len = j - i;
    *marked = space;
    *pos = j;
    return true;
}

int vamos_bpe_char_len(const char *str, size_t n, bool *valid)
{
    uint32_t cp;
    int len = utf8_seq((const unsigned char *)str, n, &cp);   /* 0: invalid (or n == 0) */
    *valid = len > 0;
    return n == 0 ? 0 : len > 0 ? len : 1;
}

/* ---- Hash tables ---- */

static size_t table_size(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

static uint64_t pair_of(int32_t l, int32_t r)
{
    return (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
}

static size_t pair_hash(uint64_t key)
{
    key ^= key >> 31;
    key *= 0x9E3779B97F4A7C15u;
    return (size_t)(key ^ key >> 29);
}

static size_t str_hash(const char *s, size_t n)
{
    uint64_t h = 0xCBF29CE484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001B3u;
    return (size_t)(h ^ h >> 32);
}

/* The merge rank of pair (l, r), or -1. */
static int32_t rank_of(const vamos_bpe *b, int32_t l, int32_t r)
{
    uint64_t key = pair_of(l, r);
    for (size_t i = pair_hash(key) & b->pair_mask;; i = (i + 1) & b->pair_mask) {
        if (b->pair_rank[i] < 0)
            return -1;
        if (b->pair_key[i] == key)
            return b->pair_rank[i];
    }
}

/* The slot holding s[0, n) or the free slot where it would go. */
static size_t char_slot(const vamos_bpe *b, const char *s, size_t n)
{
    size_t i = str_hash(s, n) & b->char_mask;
    for (;; i = (i + 1) & b->char_mask) {
        int32_t id = b->char_slot[i];
        if (id < 0 || (b->toklen[id] == n && !memcmp(b->tok[id], s, n)))
            return i;
    }
}

/* The alphabet id of character s[0, n), or <unk>. */
static int32_t char_id(const vamos_bpe *b, const char *s, size_t n)
{
    int32_t id = b->char_slot[char_slot(b, s, n)];
    return id >= 0 ? id : VAMOS_BPE_UNK;
}

/* ---- Reading the file ---- */

typedef struct Lines {
    const char *text;
    size_t size, pos;
    int no;               /* number of the line last read (1-based) */
} Lines;

/* The next line (without its newline); false at the end of the text. */
static bool next_line(Lines *l, const char **s, size_t *n)
{
    if (l->pos >= l->size)
        return false;
    const char *p = l->text + l->pos, *nl = memchr(p, '\n', l->size - l->pos);
    *s = p;
    *n = nl ? (size_t)(nl - p) : l->size - l->pos;
    l->pos += *n + (nl != NULL);
    l->no++;
    return true;
}

/* A decimal number in s[*i, n) of at most 10 digits, no sign. */
static bool read_number(const char *s, size_t n, size_t *i, long long *out)
{
    size_t k = *i;
    long long v = 0;
    while (k < n && k - *i < 10 && s[k] >= '0' && s[k] <= '9')
        v = v * 10 + (s[k++] - '0');
    if (k == *i || (k < n && s[k] >= '0' && s[k] <= '9'))
        return false;
    *i = k;
    *out = v;
    return true;
}

/* "A B": two numbers and one space. */
static bool read_two(const char *s, size_t n, long long *a, long long *b)
{
    size_t i = 0;
    if (!read_number(s, n, &i, a) || i >= n || s[i] != ' ')
        return false;
    i++;
    return read_number(s, n, &i, b) && i == n;
}

void vamos_bpe_free(vamos_bpe *b)
{
    if (!b)
        return;
    free(b->blob);
    free(b->tok);
    free(b->toklen);
    free(b->merge_result);
    free(b->pair_key);
    free(b->pair_rank);
    free(b->char_slot);
    free(b);
}

/* In vamos_bpe_parse: the message, and b freed. */
#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), vamos_bpe_free(b), (vamos_bpe *)NULL)

vamos_bpe *vamos_bpe_parse(const char *text, size_t size, char *err, size_t errlen)
{
    static const char header[] = "#vamos-bpe v1";
    char dummy[1];
    if (!err || !errlen)
        err = dummy, errlen = sizeof dummy;
    err[0] = 0;
    if (!text)
        text = "", size = 0;
    Lines l = { text, size, 0, 0 };
    const char *s;
    size_t n;
    vamos_bpe *b = NULL;

    if (!next_line(&l, &s, &n) || n != sizeof header - 1 || memcmp(s, header, n))
        return FAIL("line 1: not a vamos BPE file (expected the header \"%s\")", header);
    long long ntok, nmerge;
    if (!next_line(&l, &s, &n))
        return FAIL("line 2: the file ends before the counts");
    if (!read_two(s, n, &ntok, &nmerge))
        return FAIL("line 2: expected \"<tokens> <merges>\"");
    if (ntok < VAMOS_BPE_SPECIALS || nmerge > ntok - VAMOS_BPE_SPECIALS)
        return FAIL("line 2: %lld tokens cannot hold the 4 specials and %lld merges", ntok, nmerge);
    if (ntok > INT32_MAX)
        return FAIL("line 2: %lld tokens are too many", ntok);
    /* every token and merge takes a line of two bytes or more (bar the
     * last), which bounds the allocations by the file size */
    if ((unsigned long long)(ntok + nmerge) > size)
        return FAIL("line 2: %lld tokens and %lld merges do not fit in a file of %zu bytes", ntok, nmerge, size);

    b = calloc(1, sizeof *b);
    if (!b)
        return FAIL("out of memory");
    b->ntok = (int)ntok;
    b->nmerge = (int)nmerge;
    b->nalpha = (int)(ntok - VAMOS_BPE_SPECIALS - nmerge);
    b->blob = malloc(size + 1);
    b->tok = calloc((size_t)ntok, sizeof *b->tok);
    b->toklen = calloc((size_t)ntok, sizeof *b->toklen);
    b->merge_result = calloc((size_t)nmerge + 1, sizeof *b->merge_result);
    size_t pcap = table_size((size_t)nmerge), ccap = table_size((size_t)b->nalpha);
    b->pair_key = calloc(pcap, sizeof *b->pair_key);
    b->pair_rank = malloc(pcap * sizeof *b->pair_rank);
    b->char_slot = malloc(ccap * sizeof *b->char_slot);
    if (!b->blob || !b->tok || !b->toklen || !b->merge_result || !b->pair_key || !b->pair_rank || !b->char_slot)
        return FAIL("out of memory");
    memset(b->pair_rank, 0xFF, pcap * sizeof *b->pair_rank);
    memset(b->char_slot, 0xFF, ccap * sizeof *b->char_slot);
    b->pair_mask = pcap - 1;
    b->char_mask = ccap - 1;

    /* tokens */
    char *out = b->blob;
    int first_merge = VAMOS_BPE_SPECIALS + b->nalpha;
    for (int id = 0; id < b->ntok; id++) {
        if (!next_line(&l, &s, &n))
            return FAIL("line %d: the file ends after %d of %d tokens", l.no + 1, id, b->ntok);
        char *t = out;
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (c == '\\') {
                char e = i + 1 < n ? s[++i] : 0;
                if (e == '\\')
                    c = '\\';
                else if (e == 'n')
                    c = '\n';
                else if (e == 't')
                    c = '\t';
                else
                    return FAIL("line %d: unknown escape in token %d (only \\\\ \\n \\t)", l.no, id);
            } else if (c == 0) {
                return FAIL("line %d: NUL byte in token %d", l.no, id);
            }
            *out++ = c;
        }
        *out++ = 0;
        size_t len = (size_t)(out - 1 - t);
        b->tok[id] = t;
        b->toklen[id] = (uint32_t)len;
        if (len == 0)
            return FAIL("line %d: token %d is empty", l.no, id);
        if (id < VAMOS_BPE_SPECIALS) {
            if (strcmp(t, special_names[id]))
                return FAIL("line %d: token %d must be %s", l.no, id, special_names[id]);
        } else if (id < first_merge) {
            bool valid;
            if ((size_t)vamos_bpe_char_len(t, len, &valid) != len || !valid)
                return FAIL("line %d: alphabet token %d is not one UTF-8 character", l.no, id);
            size_t slot = char_slot(b, t, len);
            if (b->char_slot[slot] >= 0)
                return FAIL("line %d: alphabet token %d repeats token %d", l.no, id, b->char_slot[slot]);
            b->char_slot[slot] = id;
        }
    }

    /* merges */
    for (int m = 0; m < b->nmerge; m++) {
        int res = first_merge + m;
        long long lt, rt;
        if (!next_line(&l, &s, &n))
            return FAIL("line %d: the file ends after %d of %d merges", l.no + 1, m, b->nmerge);
        if (!read_two(s, n, &lt, &rt))
            return FAIL("line %d: expected a merge \"<left id> <right id>\"", l.no);
        if (lt < VAMOS_BPE_SPECIALS || lt >= res || rt < VAMOS_BPE_SPECIALS || rt >= res)
            return FAIL("line %d: merge %d (token %d) joins %lld and %lld, but only tokens %d to %d come "
                        "before it",
                        l.no, m, res, lt, rt, VAMOS_BPE_SPECIALS, res - 1);
        int32_t li = (int32_t)lt, ri = (int32_t)rt;
        size_t ll = b->toklen[li], rl = b->toklen[ri];
        if (b->toklen[res] != ll + rl || memcmp(b->tok[res], b->tok[li], ll) ||
            memcmp(b->tok[res] + ll, b->tok[ri], rl))
            return FAIL("line %d: merge %d joins tokens %d and %d, whose strings do not make token %d", l.no, m,
                        li, ri, res);
        uint64_t key = pair_of(li, ri);
        size_t i = pair_hash(key) & b->pair_mask;
        while (b->pair_rank[i] >= 0 && b->pair_key[i] != key)
            i = (i + 1) & b->pair_mask;
        if (b->pair_rank[i] >= 0)
            return FAIL("line %d: merge %d repeats merge %d", l.no, m, b->pair_rank[i]);
        b->pair_key[i] = key;
        b->pair_rank[i] = m;
        b->merge_result[m] = res;
    }
    if (l.pos < l.size)
        return FAIL("line %d: text after the last merge", l.no + 1);
    b->marker = char_id(b, VAMOS_BPE_MARKER, VAMOS_BPE_MARKER_LEN);
    return b;
}

int vamos_bpe_size(const vamos_bpe *b)
{
    return b ? b->ntok : 0;
}

const char *vamos_bpe_token(const vamos_bpe *b, int id)
{
    return b && id >= 0 && id < b->ntok ? b->tok[id] : NULL;
}

/* ---- Encoding ---- */

typedef struct Entry {
    int32_t rank, pos;
} Entry;

typedef struct Out {
    int32_t *ids;
    int n, max;
    bool cut;
} Out;

/* Append id; false (and cut) when full. */
static bool emit(Out *o, int32_t id)
{
    if (o->n >= o->max) {
        o->cut = true;
        return false;
    }
    o->ids[o->n++] = id;
    return true;
}

static bool before(Entry a, Entry b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(Entry *h, int *n, Entry e)
{
    int i = (*n)++;
    while (i > 0 && before(e, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

static Entry heap_pop(Entry *h, int *n)
{
    Entry top = h[0], last = h[--*n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && before(h[c + 1], h[c]))
            c++;
        if (!before(h[c], last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

/* The characters of word w[0, len) (after the marker when marked) as ids
 * into sym; returns their number. */
static int word_chars(const vamos_bpe *b, const char *w, size_t len, bool marked, int32_t *sym)
{
    int n = 0;
    if (marked)
        sym[n++] = b->marker;
    for (size_t i = 0; i < len;) {
        bool valid;
        size_t k = (size_t)vamos_bpe_char_len(w + i, len - i, &valid);
        sym[n++] = valid ? char_id(b, w + i, k) : VAMOS_BPE_UNK;
        i += k;
    }
    return n;
}

enum { SMALL_WORD = 64 };

/* Encode one word; false once the output is full. */
static bool encode_word(const vamos_bpe *b, const char *w, size_t len, bool marked, Out *o)
{
    size_t most = len + 1; /* characters at most */
    int32_t small[3 * SMALL_WORD];
    Entry small_heap[3 * SMALL_WORD];
    int32_t *sym = small, *big = NULL;
    Entry *heap = small_heap;
    if (most > SMALL_WORD) {
        if (most <= (size_t)INT32_MAX / 3)
            big = malloc(3 * most * sizeof *big + 3 * most * sizeof *heap);
        if (!big) {
            /* out of memory (or a word of gigabytes): the characters,
             * unmerged, are still a valid encoding */
            int32_t one[5];
            size_t i = 0;
            if (marked && !emit(o, b->marker))
                return false;
            while (i < len) {
                bool valid;
                size_t k = (size_t)vamos_bpe_char_len(w + i, len - i, &valid);
                word_chars(b, w + i, k, false, one);
                if (!emit(o, one[0]))
                    return false;
                i += k;
            }
            return true;
        }
        sym = big;
        heap = (Entry *)(big + 3 * most);
    }
    int n = word_chars(b, w, len, marked, sym);
    int32_t *next = sym + most, *prev = next + most;
    int nh = 0;
    for (int i = 0; i < n; i++) {
        next[i] = i + 1 < n ? i + 1 : -1;
        prev[i] = i - 1;
        int32_t r = i + 1 < n ? rank_of(b, sym[i], sym[i + 1]) : -1;
        if (r >= 0)
            heap_push(heap, &nh, (Entry){ r, i });
    }
    while (nh > 0) {
        Entry e = heap_pop(heap, &nh);
        int i = e.pos, j = next[i];
        if (sym[i] < 0 || j < 0 || rank_of(b, sym[i], sym[j]) != e.rank)
            continue; /* stale */
        sym[i] = b->merge_result[e.rank];
        sym[j] = -1;
        next[i] = next[j];
        if (next[j] >= 0)
            prev[next[j]] = i;
        int32_t r;
        if (prev[i] >= 0 && (r = rank_of(b, sym[prev[i]], sym[i])) >= 0)
            heap_push(heap, &nh, (Entry){ r, prev[i] });
        if (next[i] >= 0 && (r = rank_of(b, sym[i], sym[next[i]])) >= 0)
            heap_push(heap, &nh, (Entry){ r, i });
    }
    bool room = true;
    for (int i = n > 0 ? 0 : -1; room && i >= 0; i = next[i])
        room = emit(o, sym[i]);
    free(big);
    return room;
}

int vamos_bpe_encode(const vamos_bpe *b, const char *line, int32_t *ids, int max, bool *cut)
{
    Out o = { ids, 0, ids && max > 0 ? max : 0, false };
    if (b && line) {
        size_t pos = 0, start, len;
        bool marked;
        while (vamos_bpe_next_word(line, &pos, &start, &len, &marked))
            if (!encode_word(b, line + start, len, marked, &o))
                break;
    }
    if (cut)
        *cut = o.cut;
    return o.n;
}

/* ---- Decoding ---- */

char *vamos_bpe_decode(const vamos_bpe *b, const int32_t *ids, int n)
{
    if (!b)
        return NULL;
    if (!ids || n < 0)
        n = 0;
    size_t total = 1;
    for (int i = 0; i < n; i++)
        if (ids[i] >= VAMOS_BPE_UNK && ids[i] < b->ntok)
            total += b->toklen[ids[i]];
    char *text = malloc(total), *p = text;
    if (!text)
        return NULL;
    for (int i = 0; i < n; i++) {
        if (ids[i] < VAMOS_BPE_UNK || ids[i] >= b->ntok)
            continue;
        const char *t = b->tok[ids[i]];
        size_t len = b->toklen[ids[i]];
        if (ids[i] == VAMOS_BPE_UNK) {
            memcpy(p, t, len);
            p += len;
            continue;
        }
        for (size_t k = 0; k < len;) {
            if (len - k >= VAMOS_BPE_MARKER_LEN && !memcmp(t + k, VAMOS_BPE_MARKER, VAMOS_BPE_MARKER_LEN)) {
                *p++ = ' ';
                k += VAMOS_BPE_MARKER_LEN;
            } else {
                *p++ = t[k++];
            }
        }
    }
    *p = 0;
    if (text[0] == ' ')
        memmove(text, text + 1, (size_t)(p - text));
    return text;
}
