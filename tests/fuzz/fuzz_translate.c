/* fuzz_translate.c - a translator's input path on any bytes: UTF-8
 * decoding, tokenising, batching, the encoder, greedy and beam decoding
 * and detokenising, as a built translator runs them (the runtime over
 * statquest compiled in process). The input is split into lines, as the
 * translator reads standard input; its length picks greedy or a beam,
 * and one sentence or a batch. Every line gets a translation or an error
 * message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "blob.h"
#include "compile.h"
#include "fuzz.h"
#include "jit.h"
#include "vamos/translate.h"

#ifndef VAMOS_SOURCE_DIR
#define VAMOS_SOURCE_DIR "."
#endif
#define MAX_LINES 8

/* the model, compiled once; freed at exit (the leak checker looks) */
static Arena arena;
static Bound weights;
static Jit *jit;
static Blob blob;
static vamos_model rt;
static vamos_session *session;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_translate: %s\n", what);
    exit(1);
}

static void free_model(void)
{
    vamos_session_free(session);
    vamos_model_close(&rt);
    free(blob.p);
    jit_free(jit);
    bound_free(&weights);
    arena_free(&arena);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static Diag d;   /* its files outlive the call */
    char err[512];
    diag_init(&d, stderr);
    Model *m = compile_file(&arena, &d, VAMOS_SOURCE_DIR "/models/statquest.vam", NULL);
    if (!m)
        die("cannot compile models/statquest.vam");
    if (bind_weights(m, VAMOS_SOURCE_DIR "/models/statquest.safetensors", &weights, stderr))
        die("cannot load models/statquest.safetensors");
    if (!(jit = jit_compile(m, err, sizeof err)) || jit_translator(jit, m, &weights, &blob, &rt, err, sizeof err))
        die(err);
    if (!(session = vamos_session_new(&rt)))
        die("out of memory");
    atexit(free_model);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 14)
        return 0;
    char *text = malloc(size + 1), *lines[MAX_LINES];
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    int n = 0;
    for (char *p = text; n < MAX_LINES;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = 0;
        p = nl + 1;
    }
    vamos_opts o = { .beam = 1 + (int)(size % 3), .max_len = (int)(size % 7) };
    char err[256] = "", *outs[MAX_LINES];
    if (size % 2) {
        for (int i = 0; i < n; i++) {
            char *out = vamos_translate(session, lines[i], &o, NULL, err, sizeof err);
            if (!out && !err[0])
                abort();   /* a failure must say why */
            free(out);
        }
    } else if (vamos_translate_batch(session, (const char *const *)lines, n, &o, NULL, outs, err, sizeof err) == 0) {
        for (int i = 0; i < n; i++)
            free(outs[i]);
    } else if (!err[0]) {
        abort();
    }
    free(text);
    return 0;
}
