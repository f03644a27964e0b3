/* strset.c - open-addressing string set (see strset.h). */
#include "strset.h"

#include <string.h>
#include <xxhash.h>

static size_t slot_of(const StrSet *s, const char *key)
{
    size_t mask = (size_t)s->cap - 1, i = (size_t)XXH3_64bits(key, strlen(key)) & mask;
    while (s->keys[i] && strcmp(s->keys[i], key))
        i = (i + 1) & mask;
    return i;
}

int strset_get(const StrSet *s, const char *key)
{
    if (!s->cap)
        return -1;
    size_t i = slot_of(s, key);
    return s->keys[i] ? s->vals[i] : -1;
}

void strset_put(Arena *a, StrSet *s, const char *key, int val)
{
    if (2 * (s->n + 1) > s->cap) {
        StrSet bigger = { .cap = s->cap ? 2 * s->cap : 64 };
        bigger.keys = arena_alloc(a, sizeof(char *) * (size_t)bigger.cap);
        bigger.vals = arena_alloc(a, sizeof(int) * (size_t)bigger.cap);
        for (int i = 0; i < s->cap; i++)
            if (s->keys[i])
                strset_put(a, &bigger, s->keys[i], s->vals[i]);
        *s = bigger;
    }
    size_t i = slot_of(s, key);
    s->keys[i] = key;
    s->vals[i] = val;
    s->n++;
}
