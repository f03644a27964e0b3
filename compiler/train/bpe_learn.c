/* bpe_learn.c - learn BPE merges from a corpus (see bpe_learn.h).
 *
 * Counting. The lines become a table of distinct words with frequencies,
 * each word an array of symbol ids (initially its characters; characters
 * outside the alphabet are <unk> and never pair). All symbols live in one
 * array; a merge rewrites a word in place, shorter.
 *
 * Incremental pair counts. Every adjacent pair has a record with its count
 * (summed word frequencies) and the list of words it was seen in. The list
 * may hold words that lost the pair since, and a word may appear more than
 * once; whoever reads it re-checks the word, and a per-word stamp skips
 * repeats. Merging pair (a, b) into c visits only the words on (a, b)'s
 * list: for each word that still has the pair, its pairs are taken out of
 * the counts, the word is rewritten, and its pairs are put back. Only pairs
 * containing c can be new to a word, so only those get the word appended to
 * their list and only their counts can have grown.
 *
 * Choosing the best pair. A max-heap of (pair, count when pushed) ordered
 * by count, then by the pair's strings, then by ids (two tokens may have
 * the same string). Counts that change are not updated in place: a pair
 * whose count grew gets a new entry, and a popped entry whose count no
 * longer matches is pushed again with the current count (when it is still
 * at least 2) or dropped. Every pair with count c >= 2 keeps an entry of at
 * least c, so the first popped entry that matches its pair's count is the
 * true best pair, ties included.
 */
#include "bpe_learn.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"

/* ---- Memory: a bump allocator for strings, growable arrays ---- */

typedef struct Chunk {
    struct Chunk *next;
    size_t used, cap;
    char data[];
} Chunk;

static char *pool_alloc(Chunk **pool, size_t n)
{
    Chunk *c = *pool;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = *pool;
        c->used = 0;
        c->cap = cap;
        *pool = c;
    }
    char *p = c->data + c->used;
    c->used += n;
    return p;
}

static void pool_free(Chunk *c)
{
    while (c) {
        Chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* Make room for one more element in the array whose pointer is at arrp
 * (n used, *cap allocated). The pointer is read and written with memcpy, so
 * any element type's pointer can be passed. */
static bool grow(void *arrp, size_t elem, size_t n, size_t *cap)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? 2 * *cap : 16;
    void *old, *p;
    memcpy(&old, arrp, sizeof old);
    if (c > SIZE_MAX / elem || !(p = realloc(old, c * elem)))
        return false;
    memcpy(arrp, &p, sizeof p);
    *cap = c;
    return true;
}

/* ---- Strings ---- */

typedef struct Str {
    const char *s;
    size_t len;
} Str;

static int str_cmp(Str a, Str b)
{
    int c = memcmp(a.s, b.s, a.len < b.len ? a.len : b.len);
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static int str_qcmp(const void *a, const void *b)
{
    return str_cmp(*(const Str *)a, *(const Str *)b);
}

static size_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xCBF29CE484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001B3u;
    return (size_t)(h ^ h >> 32);
}

/* A string -> count table (words, characters); keys are not copied. */
typedef struct Item {
    Str key;
    int64_t count;
    int32_t id;      /* characters: token id, or <unk> */
    bool valid;      /* characters: a valid UTF-8 sequence */
} Item;

typedef struct StrMap {
    int32_t *slot;   /* item index, -1 free */
    size_t mask;
    Item *item;
    size_t n, cap;
} StrMap;

static size_t map_slot(const StrMap *m, const char *s, size_t len)
{
    size_t i = hash_bytes(s, len) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        int32_t k = m->slot[i];
        if (k < 0 || (m->item[k].key.len == len && !memcmp(m->item[k].key.s, s, len)))
            return i;
    }
}

/* The item of s, or -1. */
static int32_t map_find(const StrMap *m, const char *s, size_t len)
{
    return m->slot ? m->slot[map_slot(m, s, len)] : -1;
}

/* Add s (absent; it must outlive the map); its index, or -1 out of memory. */
static int32_t map_add(StrMap *m, const char *s, size_t len)
{
    if (m->n >= INT32_MAX / 4)
        return -1;
    if (2 * (m->n + 1) > m->mask + 1 || !m->slot) {
        size_t cap = m->slot ? 2 * (m->mask + 1) : 1024;
        int32_t *slot = malloc(cap * sizeof *slot);
        if (!slot)
            return -1;
        memset(slot, 0xFF, cap * sizeof *slot);
        free(m->slot);
        m->slot = slot;
        m->mask = cap - 1;
        for (size_t k = 0; k < m->n; k++)
            m->slot[map_slot(m, m->item[k].key.s, m->item[k].key.len)] = (int32_t)k;
    }
    if (!grow(&m->item, sizeof *m->item, m->n, &m->cap))
        return -1;
    int32_t k = (int32_t)m->n++;
    m->item[k] = (Item){ .key = { s, len } };
    m->slot[map_slot(m, s, len)] = k;
    return k;
}

static void map_free(StrMap *m)
{
    free(m->slot);
    free(m->item);
}

/* ---- The learner's state ---- */

typedef struct Pair {
    int32_t l, r;
    int64_t count;
    int32_t *words;        /* words it was seen in (may be stale, repeated) */
    size_t nwords, wcap;
    int32_t last_word;     /* the last word appended, to skip runs */
    int32_t touched;       /* stamp: merge that last grew it */
} Pair;

typedef struct Entry {
    int32_t pair;
    int64_t count;
} Entry;

typedef struct Learn {
    Chunk *pool;
    Str *tok;              /* token strings by id */
    size_t ntok, tokcap;
    int32_t *sym;          /* symbols of every word */
    size_t *woff;          /* word w: sym[woff[w], woff[w] + wlen[w]) */
    int32_t *wlen, *wstamp;
    int64_t *wfreq;
    size_t nwords;
    Pair *pair;
    size_t npair, paircap;
    int32_t *pslot;        /* pair hash: pair index, -1 free */
    size_t pmask;
    Entry *heap;
    size_t nheap, heapcap;
    int32_t *touched;      /* pairs grown by the current merge */
    size_t ntouched, touchedcap;
    int32_t (*merge)[2];
    size_t nmerge, mergecap;
    bool oom;
} Learn;

static size_t pair_hash(int32_t l, int32_t r)
{
    uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    k ^= k >> 31;
    k *= 0x9E3779B97F4A7C15u;
    return (size_t)(k ^ k >> 29);
}

static size_t pair_slot(const Learn *L, int32_t l, int32_t r)
{
    size_t i = pair_hash(l, r) & L->pmask;
    for (;; i = (i + 1) & L->pmask) {
        int32_t k = L->pslot[i];
        if (k < 0 || (L->pair[k].l == l && L->pair[k].r == r))
            return i;
    }
}

/* The pair (l, r), created with count 0 if new; -1 out of memory. */
static int32_t pair_get(Learn *L, int32_t l, int32_t r)
{
    if (L->pslot) {
        int32_t k = L->pslot[pair_slot(L, l, r)];
        if (k >= 0)
            return k;
    }
    if (L->npair >= INT32_MAX / 4)
        return -1;
    if (2 * (L->npair + 1) > L->pmask + 1 || !L->pslot) {
        size_t cap = L->pslot ? 2 * (L->pmask + 1) : 4096;
        int32_t *slot = malloc(cap * sizeof *slot);
        if (!slot)
            return -1;
        memset(slot, 0xFF, cap * sizeof *slot);
        free(L->pslot);
        L->pslot = slot;
        L->pmask = cap - 1;
        for (size_t k = 0; k < L->npair; k++)
            L->pslot[pair_slot(L, L->pair[k].l, L->pair[k].r)] = (int32_t)k;
    }
    if (!grow(&L->pair, sizeof *L->pair, L->npair, &L->paircap))
        return -1;
    int32_t k = (int32_t)L->npair++;
    L->pair[k] = (Pair){ .l = l, .r = r, .last_word = -1, .touched = -1 };
    L->pslot[pair_slot(L, l, r)] = k;
    return k;
}

/* Heap order: higher count, then smaller (left, right) strings, then ids. */
static bool better(const Learn *L, Entry a, Entry b)
{
    if (a.count != b.count)
        return a.count > b.count;
    const Pair *p = &L->pair[a.pair], *q = &L->pair[b.pair];
    int c = str_cmp(L->tok[p->l], L->tok[q->l]);
    if (!c)
        c = str_cmp(L->tok[p->r], L->tok[q->r]);
    if (c)
        return c < 0;
    return p->l != q->l ? p->l < q->l : p->r < q->r;
}

static void heap_push(Learn *L, int32_t pair)
{
    if (!grow(&L->heap, sizeof *L->heap, L->nheap, &L->heapcap)) {
        L->oom = true;
        return;
    }
    Entry e = { pair, L->pair[pair].count };
    size_t i = L->nheap++;
    while (i > 0 && better(L, e, L->heap[(i - 1) / 2])) {
        L->heap[i] = L->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    L->heap[i] = e;
}

static Entry heap_pop(Learn *L)
{
    Entry top = L->heap[0], last = L->heap[--L->nheap];
    size_t i = 0, n = L->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && better(L, L->heap[c + 1], L->heap[c]))
            c++;
        if (!better(L, L->heap[c], last))
            break;
        L->heap[i] = L->heap[c];
        i = c;
    }
    if (n > 0)
        L->heap[i] = last;
    return top;
}

/* The best pair with a count of 2 or more, or -1. */
static int32_t best_pair(Learn *L)
{
    while (L->nheap > 0 && !L->oom) {
        Entry e = heap_pop(L);
        int64_t now = L->pair[e.pair].count;
        if (now == e.count)
            return e.pair;
        if (now >= 2 && now < e.count)
            heap_push(L, e.pair);
    }
    return -1;
}

/* Add delta * frequency of word w to the counts of its pairs. With c >= 0
 * (or all), pairs containing token c are new to the word: the word joins
 * their lists and they are marked touched by merge `stamp`. */
static void count_word(Learn *L, int32_t w, int64_t delta, int32_t c, bool all, int32_t stamp)
{
    const int32_t *s = L->sym + L->woff[w];
    for (int32_t i = 0; i + 1 < L->wlen[w]; i++) {
        if (s[i] == VAMOS_BPE_UNK || s[i + 1] == VAMOS_BPE_UNK)
            continue;
        int32_t k = pair_get(L, s[i], s[i + 1]);
        if (k < 0) {
            L->oom = true;
            return;
        }
        Pair *p = &L->pair[k];
        p->count += delta * L->wfreq[w];
        if (delta < 0 || !(all || s[i] == c || s[i + 1] == c))
            continue;
        if (p->last_word != w) {
            if (!grow(&p->words, sizeof *p->words, p->nwords, &p->wcap)) {
                L->oom = true;
                return;
            }
            p->words[p->nwords++] = w;
            p->last_word = w;
        }
        if (p->touched != stamp) {
            p->touched = stamp;
            if (!grow(&L->touched, sizeof *L->touched, L->ntouched, &L->touchedcap)) {
                L->oom = true;
                return;
            }
            L->touched[L->ntouched++] = k;
        }
    }
}

/* Merge pair k into a new token; false out of memory. */
static bool apply_merge(Learn *L, int32_t k)
{
    int32_t l = L->pair[k].l, r = L->pair[k].r, stamp = (int32_t)L->nmerge;
    Str a = L->tok[l], b = L->tok[r];
    char *s = pool_alloc(&L->pool, a.len + b.len + 1);
    if (!s || !grow(&L->tok, sizeof *L->tok, L->ntok, &L->tokcap) ||
        !grow(&L->merge, sizeof *L->merge, L->nmerge, &L->mergecap))
        return false;
    memcpy(s, a.s, a.len);
    memcpy(s + a.len, b.s, b.len);
    s[a.len + b.len] = 0;
    int32_t c = (int32_t)L->ntok;
    L->tok[L->ntok++] = (Str){ s, a.len + b.len };
    L->merge[L->nmerge][0] = l;
    L->merge[L->nmerge++][1] = r;

    /* the pair's word list is taken over: the pair is gone after this */
    int32_t *words = L->pair[k].words;
    size_t nwords = L->pair[k].nwords;
    L->pair[k].words = NULL;
    L->pair[k].nwords = L->pair[k].wcap = 0;
    L->ntouched = 0;
    for (size_t i = 0; i < nwords && !L->oom; i++) {
        int32_t w = words[i];
        if (L->wstamp[w] == stamp)
            continue;
        L->wstamp[w] = stamp;
        int32_t *sym = L->sym + L->woff[w], n = L->wlen[w], j = 0;
        bool has = false;
        for (int32_t t = 0; t + 1 < n && !has; t++)
            has = sym[t] == l && sym[t + 1] == r;
        if (!has)
            continue;
        count_word(L, w, -1, -1, false, stamp);
        for (int32_t t = 0; t < n;) {
            if (t + 1 < n && sym[t] == l && sym[t + 1] == r) {
                sym[j++] = c;
                t += 2;
            } else {
                sym[j++] = sym[t++];
            }
        }
        L->wlen[w] = j;
        count_word(L, w, +1, c, false, stamp);
    }
    free(words);
    for (size_t i = 0; i < L->ntouched && !L->oom; i++)
        if (L->pair[L->touched[i]].count >= 2)
            heap_push(L, L->touched[i]);
    return !L->oom;
}

/* ---- Output ---- */

typedef struct Buf {
    char *p;
    size_t n, cap;
    bool failed;
} Buf;

static void put(Buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->n < n + 1) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void put_token(Buf *b, Str t)
{
    for (size_t i = 0; i < t.len; i++) {
        char c = t.s[i];
        if (c == '\\')
            put(b, "\\\\", 2);
        else if (c == '\n')
            put(b, "\\n", 2);
        else if (c == '\t')
            put(b, "\\t", 2);
        else
            put(b, &c, 1);
    }
    put(b, "\n", 1);
}

/* ---- Learning ---- */

static const char *const special_names[VAMOS_BPE_SPECIALS] = { "<pad>", "<eos>", "<bos>", "<unk>" };

/* Count the words of the lines (keys copied to the pool). */
static bool count_words(Learn *L, StrMap *words, const char *const *lines, size_t n)
{
    char *tmp = NULL;
    size_t tmpcap = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        const char *line = lines[i] ? lines[i] : "";
        size_t pos = 0, start, len;
        bool marked;
        while (ok && vamos_bpe_next_word(line, &pos, &start, &len, &marked)) {
            size_t m = marked ? VAMOS_BPE_MARKER_LEN : 0;
            if (len + m > tmpcap) {
                char *p = realloc(tmp, len + m);
                if (!p) {
                    ok = false;
                    break;
                }
                tmp = p;
                tmpcap = len + m;
            }
            memcpy(tmp, VAMOS_BPE_MARKER, m);
            memcpy(tmp + m, line + start, len);
            int32_t k = map_find(words, tmp, len + m);
            if (k < 0) {
                char *key = pool_alloc(&L->pool, len + m);
                ok = key && (k = map_add(words, key, len + m)) >= 0;
                if (ok)
                    memcpy(key, tmp, len + m);
            }
            if (ok)
                words->item[k].count++;
        }
    }
    free(tmp);
    return ok;
}

/* Count the characters of the words; keys point into the words. */
static bool count_chars(StrMap *chars, const StrMap *words)
{
    for (size_t w = 0; w < words->n; w++) {
        Str s = words->item[w].key;
        for (size_t i = 0; i < s.len;) {
            bool valid;
            size_t k = (size_t)vamos_bpe_char_len(s.s + i, s.len - i, &valid);
            int32_t c = map_find(chars, s.s + i, k);
            if (c < 0 && (c = map_add(chars, s.s + i, k)) < 0)
                return false;
            chars->item[c].count += words->item[w].count;
            chars->item[c].valid = valid;
            i += k;
        }
    }
    if (map_find(chars, VAMOS_BPE_MARKER, VAMOS_BPE_MARKER_LEN) < 0) {
        int32_t c = map_add(chars, VAMOS_BPE_MARKER, VAMOS_BPE_MARKER_LEN);
        if (c < 0)
            return false;
        chars->item[c].valid = true;
    }
    return true;
}

static int learn(Learn *L, const char *const *lines, size_t n, int size, int min_char_count, Buf *out, char *err,
                 size_t errlen)
{
    StrMap words = { 0 }, chars = { 0 };
    Str *alpha = NULL;
    int rc = -1;
    if (!count_words(L, &words, lines, n) || !count_chars(&chars, &words))
        goto oom;

    /* the alphabet, sorted by bytes, after the specials */
    alpha = malloc((chars.n + 1) * sizeof *alpha);
    if (!alpha)
        goto oom;
    size_t nalpha = 0;
    for (size_t c = 0; c < chars.n; c++) {
        Item *it = &chars.item[c];
        it->id = VAMOS_BPE_UNK;
        bool marker = it->key.len == VAMOS_BPE_MARKER_LEN && !memcmp(it->key.s, VAMOS_BPE_MARKER, it->key.len);
        /* a control character (BEL, ESC, DEL: they occur in the data) would make a
         * token the vocabulary loader rejects; like a rare one, it is <unk> */
        bool control = it->key.len == 1 && ((unsigned char)it->key.s[0] < 0x20 || it->key.s[0] == 0x7f);
        if (it->valid && !control && (it->count >= min_char_count || marker))
            alpha[nalpha++] = it->key;
    }
    if (size < 0 || (size_t)size < VAMOS_BPE_SPECIALS + nalpha) {
        snprintf(err, errlen, "a vocabulary of %d tokens cannot hold the 4 specials and the %zu characters of the "
                 "alphabet", size, nalpha);
        goto out;
    }
    qsort(alpha, nalpha, sizeof *alpha, str_qcmp);
    for (int i = 0; i < VAMOS_BPE_SPECIALS; i++) {
        if (!grow(&L->tok, sizeof *L->tok, L->ntok, &L->tokcap))
            goto oom;
        L->tok[L->ntok++] = (Str){ special_names[i], strlen(special_names[i]) };
    }
    for (size_t a = 0; a < nalpha; a++) {
        if (!grow(&L->tok, sizeof *L->tok, L->ntok, &L->tokcap))
            goto oom;
        chars.item[map_find(&chars, alpha[a].s, alpha[a].len)].id = (int32_t)L->ntok;
        L->tok[L->ntok++] = alpha[a];
    }

    /* the words as symbols */
    size_t nsym = 0;
    for (size_t w = 0; w < words.n; w++)
        nsym += words.item[w].key.len;
    L->nwords = words.n;
    L->sym = malloc((nsym + 1) * sizeof *L->sym);
    L->woff = malloc((words.n + 1) * sizeof *L->woff);
    L->wlen = malloc((words.n + 1) * sizeof *L->wlen);
    L->wstamp = malloc((words.n + 1) * sizeof *L->wstamp);
    L->wfreq = malloc((words.n + 1) * sizeof *L->wfreq);
    if (!L->sym || !L->woff || !L->wlen || !L->wstamp || !L->wfreq)
        goto oom;
    nsym = 0;
    for (size_t w = 0; w < words.n; w++) {
        Str s = words.item[w].key;
        L->woff[w] = nsym;
        L->wfreq[w] = words.item[w].count;
        L->wstamp[w] = -1;
        for (size_t i = 0; i < s.len;) {
            bool valid;
            size_t k = (size_t)vamos_bpe_char_len(s.s + i, s.len - i, &valid);
            L->sym[nsym++] = chars.item[map_find(&chars, s.s + i, k)].id;
            i += k;
        }
        L->wlen[w] = (int32_t)(nsym - L->woff[w]);
    }

    /* count, then merge */
    for (size_t w = 0; w < words.n && !L->oom; w++)
        count_word(L, (int32_t)w, +1, -1, true, -1);
    for (size_t k = 0; k < L->npair && !L->oom; k++)
        if (L->pair[k].count >= 2)
            heap_push(L, (int32_t)k);
    if (L->oom)
        goto oom;
    while (L->ntok < (size_t)size) {
        int32_t k = best_pair(L);
        if (L->oom || (k >= 0 && !apply_merge(L, k)))
            goto oom;
        if (k < 0)
            break;
    }

    char line[64];
    put(out, "#vamos-bpe v1\n", 14);
    put(out, line, (size_t)snprintf(line, sizeof line, "%zu %zu\n", L->ntok, L->nmerge));
    for (size_t t = 0; t < L->ntok; t++)
        put_token(out, L->tok[t]);
    for (size_t m = 0; m < L->nmerge; m++)
        put(out, line, (size_t)snprintf(line, sizeof line, "%d %d\n", L->merge[m][0], L->merge[m][1]));
    if (out->failed)
        goto oom;
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    free(alpha);
    map_free(&words);
    map_free(&chars);
    return rc;
}

int bpe_learn(const char *const *lines, size_t n, int size, int min_char_count, char **out, size_t *outlen,
              char *err, size_t errlen)
{
    char dummy[1];
    if (!err || !errlen)
        err = dummy, errlen = sizeof dummy;
    err[0] = 0;
    if (!out || !outlen || (!lines && n)) {
        snprintf(err, errlen, "bpe_learn: no lines or nowhere to write");
        return -1;
    }
    *out = NULL;
    *outlen = 0;
    Learn L = { 0 };
    Buf b = { 0 };
    int rc = learn(&L, lines, n, size, min_char_count, &b, err, errlen);
    if (rc == 0) {
        *out = b.p;
        *outlen = b.n;
    } else {
        free(b.p);
    }
    for (size_t k = 0; k < L.npair; k++)
        free(L.pair[k].words);
    free(L.pair);
    free(L.pslot);
    free(L.heap);
    free(L.touched);
    free(L.merge);
    free(L.tok);
    free(L.sym);
    free(L.woff);
    free(L.wlen);
    free(L.wstamp);
    free(L.wfreq);
    pool_free(L.pool);
    return rc;
}
