/* fuzz_dsl.c - the front end on any bytes: lexer, parser, name
 * resolution, elaboration, shape checking and every graph pass (fusion
 * included). Any input must end in a model or in diagnostics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "compile.h"
#include "fuzz.h"

static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    sink = fopen("/dev/null", "w");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;   /* the limits tests cover big files; fuzz the structure */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    Arena a = { 0 };
    Diag d;
    diag_init(&d, sink);
    Model *m = compile_text(&a, &d, "fuzz.vam", text, (long)size, NULL);
    if (!m && d.errors == 0)
        abort();   /* a failure must say why */
    arena_free(&a);
    free(text);
    return 0;
}
