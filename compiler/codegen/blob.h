/* blob.h - serialise a compiled model for the runtime (vamos/model.h). */
#ifndef VAMOS_BLOB_H
#define VAMOS_BLOB_H

#include <stdbool.h>
#include <stddef.h>

#include "compile.h"

/* A growable byte buffer. */
typedef struct Blob { unsigned char *p; size_t n, cap; bool oom; } Blob;

/* The model's blob: name, symbols, vocabularies, both graphs with their
 * memory plan (buffers shared when `reuse`), then the weights at a 64-byte
 * boundary. w NULL leaves the weights out (every size 0): the JIT points
 * the runtime at the bound weights instead. Returns 0, or -1 out of memory. */
int blob_make(const Model *m, const Bound *w, bool reuse, Blob *b);

#endif
