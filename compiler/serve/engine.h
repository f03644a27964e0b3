/* engine.h - the models a server holds, and their continuous batching.
 *
 * Each model is a shared library built by `vamos build --lib -o NAME.so`,
 * opened with dlopen() and used through its own copy of the public API
 * (include/vamos/vamos.h), so a server can hold models of any build.
 *
 * Each model has one worker thread. A request's sentences go into the
 * model's queue as one job; whenever the worker is free it takes every
 * job queued (from every connection) and translates their sentences as
 * one batch (vamos_translate_lines sorts and pads them), then wakes the
 * requests it finished. While it translates, new jobs queue up for the
 * next batch: under load the batches fill by themselves. */
#ifndef VAMOS_ENGINE_H
#define VAMOS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct Served Served;

/* Open the library at path with threads kernel threads (0: its default).
 * NULL with a message. */
Served *served_open(const char *path, int threads, char *err, size_t errlen);
void served_close(Served *s);

const char *served_name(const Served *s);
/* Its language codes (vamos build --langs), or "" when it carries none. */
const char *served_source(const Served *s);
const char *served_target(const Served *s);

/* Translate n sentences (as one job among the others queued); outs[i]
 * gets a malloc'd line. Blocks until done. 0, or -1 with a message. */
int served_translate(Served *s, const char *const *texts, int n, char **outs, char *err, size_t errlen);

/* Batches run and sentences translated so far. */
void served_counts(const Served *s, long *batches, long *sentences);

#endif
