/* vamos/vamos.h - translation models linked into your own program.
 *
 * `vamos build --lib` compiles a model, with its weights and vocabularies,
 * into an object file or library whose symbols all begin with a prefix
 * (--prefix, default the model's name), so one program can hold several
 * models. The library defines one descriptor, PREFIX_linked:
 *
 *     vamos build en-es.vam -w en-es.safetensors --lib -o libenes.a --prefix en_es
 *     cc app.c libenes.a $(pkg-config --cflags --libs vamos)
 *
 *     #include <vamos/vamos.h>
 *     VAMOS_DECLARE_MODEL(en_es);
 *
 *     char err[512];
 *     vamos_translator *t = vamos_open(&en_es_linked, NULL, err, sizeof err);
 *     if (!t) { fprintf(stderr, "%s\n", err); return 1; }
 *     char *out = vamos_translate_text(t, "Open file", err, sizeof err);
 *     puts(out);                 // "Abrir archivo"
 *     free(out);
 *     vamos_close(t);
 *
 * A translator is not thread-safe: use one per thread (models' weights are
 * read-only and shared). Kernels run on the runtime's thread pool
 * (vamos/parallel.h: vamos_set_threads). Errors are returned as a message
 * in err, never printed; nothing here exits the program.
 */
#ifndef VAMOS_VAMOS_H
#define VAMOS_VAMOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What `vamos build --lib` defines as PREFIX_linked. prep and step are
 * NULL for a model without derived one-word decoding. */
typedef struct vamos_linked_model {
    const unsigned char *blob;   /* the model: name, vocabularies, graphs, weights */
    const char *cpu;             /* the CPU features its code needs */
    int32_t (*encoder)(void *const *buf, const int64_t *sym);
    int32_t (*decoder)(void *const *buf, const int64_t *sym);
    int32_t (*prep)(void *const *buf, const int64_t *sym);
    int32_t (*step)(void *const *buf, const int64_t *sym);
    const char *source_lang;     /* language codes ("en", "es"; vamos build --langs), or NULL */
    const char *target_lang;
} vamos_linked_model;

/* A shared library (vamos build --lib -o NAME.so) also defines
 *     const vamos_linked_model *const vamos_library;
 * pointing at its descriptor, so a program can dlopen() models it was not
 * linked with (vamos serve does). */

#define VAMOS_DECLARE_MODEL(prefix) extern const vamos_linked_model prefix##_linked

/* How to translate; a zero field takes the default. */
typedef struct vamos_settings {
    int beam;      /* beam size, 1..64 (default 1: greedy) */
    int max_len;   /* target words at most (default: 2 * source words + 10) */
    int batch;     /* sentences decoded together (default 16) */
    int refill;    /* vamos_translate_feed: take more sentences once this percent of the
                      rows are free, 1..100 (default 100: once all are; see stream.c) */
} vamos_settings;

typedef struct vamos_translator vamos_translator;

/* Open a linked model: checks that this CPU can run its code and that the
 * blob is whole. settings may be NULL. Returns NULL with a message in err. */
vamos_translator *vamos_open(const vamos_linked_model *model, const vamos_settings *settings,
                             char *err, size_t errlen);

/* The model's name (as in its `model NAME {`). */
const char *vamos_name(const vamos_translator *t);

/* Translate one sentence (any bytes). Returns a malloc'd line, or NULL
 * with a message in err. */
char *vamos_translate_text(vamos_translator *t, const char *text, char *err, size_t errlen);

/* Translate count sentences, batched. outs[i] gets a malloc'd line.
 * Returns 0, or -1 with a message (no outs set). */
int vamos_translate_lines(vamos_translator *t, const char *const *texts, int count, char **outs,
                          char *err, size_t errlen);

/* Continuous batching: sentences join a running decoder as its rows free
 * up (once settings.refill percent of them are), and each translation is
 * handed back as soon as it ends (a server's requests, whenever they
 * arrive).
 *
 *   next(ctx, max, wait, texts, tags): up to max sentences into texts[]
 *       (each valid until its done()) with a tag each; returns how many,
 *       0 when none is waiting (wait false; with wait true, it blocks
 *       until one is), or -1 when no more will come.
 *   done(ctx, tag, out, err): a sentence's translation, a malloc'd line
 *       the callee owns, or NULL with a message in err. Every sentence
 *       taken gets exactly one done().
 *
 * Called from the thread in vamos_translate_feed only. */
typedef struct vamos_feed {
    int (*next)(void *ctx, int max, bool wait, const char **texts, void **tags);
    void (*done)(void *ctx, void *tag, char *out, const char *err);
    void *ctx;
} vamos_feed;

/* Translate what f feeds, greedy, until next() returns -1 and every
 * sentence taken is done; settings.batch sentences decode side by side.
 * Each sentence's words are those vamos_translate_lines gives it. A
 * sentence of more than 127 source tokens is translated in a batch of its
 * own (the others wait meanwhile); so is everything with a beam over 1,
 * or for a model without a one-word step or whose step's rows share one
 * position (vamos check says). Returns 0, or -1 with a message in err
 * (f's sentences then all done). */
int vamos_translate_feed(vamos_translator *t, const vamos_feed *f, char *err, size_t errlen);

void vamos_close(vamos_translator *t);

#ifdef __cplusplus
}
#endif

#endif
