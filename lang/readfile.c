/* readfile.c - read a whole file into the arena, with a size limit. */
#include "readfile.h"

#include <errno.h>
#include <stdio.h>

char *read_file(Arena *a, const char *path, long limit, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    /* grow by doubling: works for pipes and files that change under us */
    size_t cap = 4096, n = 0;
    char *buf = arena_alloc(a, cap + 1);
    errno = 0;
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || (long)n > limit)
            break;
        buf = arena_grow(a, buf, n, cap * 2 + 1);
        cap *= 2;
    }
    int bad = ferror(f), why = errno;   /* a directory: EISDIR, kept for the message */
    fclose(f);
    if (bad) {
        errno = why ? why : EIO;
        return NULL;
    }
    if ((long)n > limit) {
        errno = EFBIG;
        return NULL;
    }
    buf[n] = 0;
    *len = (long)n;
    return buf;
}
