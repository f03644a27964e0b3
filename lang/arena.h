/* arena.h - bump allocation for compiler lifetimes.
 *
 * Everything the front end and the compiler build (AST, graph, strings)
 * lives in one arena and dies with it: nothing is freed node by node.
 */
#ifndef VAMOS_ARENA_H
#define VAMOS_ARENA_H

#include <stddef.h>

typedef struct ArenaChunk ArenaChunk;
typedef struct Arena { ArenaChunk *head; size_t used_total; } Arena;

void *arena_alloc(Arena *a, size_t size);          /* zeroed, 16-aligned */
void *arena_grow(Arena *a, void *old, size_t old_size, size_t new_size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

#endif
