/* readfile.h - read a whole file into the arena, with a size limit. */
#ifndef VAMOS_READFILE_H
#define VAMOS_READFILE_H

#include "arena.h"

/* Returns the NUL-terminated contents (length in *len), or NULL with errno
 * set; a file over `limit` bytes gives NULL with errno = EFBIG. */
char *read_file(Arena *a, const char *path, long limit, long *len);

#endif
