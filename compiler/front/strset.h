/* strset.h - a set of strings in the arena (open addressing, xxHash), for
 * duplicate checks that must stay linear: weight names, vocabulary words. */
#ifndef VAMOS_STRSET_H
#define VAMOS_STRSET_H

#include <stdbool.h>

#include "arena.h"

typedef struct StrSet {
    const char **keys;
    int *vals;
    int cap, n;
} StrSet;

/* The value stored with s, or -1 if s is not in the set. */
int strset_get(const StrSet *s, const char *key);
/* Add key -> val (key must not be present; it is not copied). */
void strset_put(Arena *a, StrSet *s, const char *key, int val);

#endif
