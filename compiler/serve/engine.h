/* engine.h - the models a server holds, and their continuous batching.
 *
 * Each model is a shared library built by `vamos build --lib -o NAME.so`,
 * opened with dlopen() and used through its own copy of the public API
 * (include/vamos/vamos.h), so a server can hold models of any build.
 *
 * Each model has a worker thread per kernel thread. A request's sentences
 * go into the model's queue as one job. Each worker runs the library's
 * continuous-batching decoder (vamos_translate_feed): whenever its rows
 * free up, it takes the sentences queued (from every connection, in the
 * order they came) into them, and answers each sentence as it ends; a
 * request is answered when its last sentence is. The rows never wait for
 * a batch's longest sentence, and no request waits for a batch to fill.
 *
 * A library of an older build (no vamos_translate_feed) is served in
 * batches: whenever a worker is free it takes every job queued and
 * translates their sentences as one batch (vamos_translate_lines), then
 * wakes the requests it finished. */
#ifndef VAMOS_ENGINE_H
#define VAMOS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct Served Served;

/* Sentences a model decodes together at most by default (vamos serve
 * --batch; split between its workers' rows), and, for a library of an
 * older build, how long a batch that is not full waits for more when the
 * last one held several requests (--batch-wait): without the wait, one
 * batch's answers brought their clients' next requests back a few at a
 * time, and the worker took the first few as a small batch (with 64
 * clients, waiting 3 to 8 ms took en-es from 0.64x to 0.78x the
 * translator's own sentences/s, Zen 4). A lone request never waits. */
#define SERVED_BATCH 64
#define SERVED_WAIT_MS 5

/* Open the library at path with threads kernel threads (0: its default),
 * at most batch_max sentences decoded together (0: SERVED_BATCH). stream:
 * continuous batching when the library has it (requests that come one by
 * one), a worker taking more sentences once refill percent of its rows
 * are free (vamos_settings.refill, 0: the library's default); else batches, which wait wait_ms (-1: SERVED_WAIT_MS) to fill (one
 * big job, sorted by length: vamos po's catalog). NULL with a message. */
Served *served_open(const char *path, int threads, int batch_max, int wait_ms, bool stream, int refill, char *err,
                    size_t errlen);
void served_close(Served *s);

const char *served_name(const Served *s);
/* Its language codes (vamos build --langs), or "" when it carries none. */
const char *served_source(const Served *s);
const char *served_target(const Served *s);

/* Translate n sentences (as one job among the others queued); outs[i]
 * gets a malloc'd line. Blocks until done. 0, or -1 with a message. */
int served_translate(Served *s, const char *const *texts, int n, char **outs, char *err, size_t errlen);

/* Batches run (streaming: groups of sentences taken into rows) and
 * sentences translated so far, and the share of the time since the first
 * began that the workers spent translating. */
void served_counts(const Served *s, long *batches, long *sentences, double *busy);

#endif
