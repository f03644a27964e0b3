/* two_models.c - one program that links two models built with
 * `vamos build --lib` (test_aot.c builds and runs it): each argument is
 * translated by both, one line each, "PREFIX\tTRANSLATION". Written
 * against the installed interface only: vamos/vamos.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vamos/vamos.h"

VAMOS_DECLARE_MODEL(sq);
VAMOS_DECLARE_MODEL(en_es);

int main(int argc, char **argv)
{
    char err[512];
    const vamos_linked_model *models[] = { &sq_linked, &en_es_linked };
    const vamos_settings greedy = { .beam = 1 };
    for (int k = 0; k < 2; k++) {
        vamos_translator *t = vamos_open(models[k], &greedy, err, sizeof err);
        if (!t) {
            fprintf(stderr, "open: %s\n", err);
            return 1;
        }
        char **outs = calloc((size_t)argc, sizeof *outs);
        if (!outs || vamos_translate_lines(t, (const char *const *)argv + 1, argc - 1, outs, err, sizeof err)) {
            fprintf(stderr, "translate: %s\n", outs ? err : "out of memory");
            return 1;
        }
        for (int i = 0; i < argc - 1; i++) {
            char *one = vamos_translate_text(t, argv[i + 1], err, sizeof err);
            if (!one || strcmp(one, outs[i]))   /* one at a time == batched */
                return fprintf(stderr, "'%s': alone %s, batched %s\n", argv[i + 1], one ? one : err, outs[i]), 1;
            printf("%s\t%s\n", vamos_name(t), outs[i]);
            free(one);
            free(outs[i]);
        }
        free(outs);
        vamos_close(t);
    }
    vamos_settings bad = { .beam = 65 };
    if (vamos_open(&sq_linked, &bad, err, sizeof err) != NULL)
        return fprintf(stderr, "beam 65 was accepted\n"), 1;
    fprintf(stderr, "%s\n", err);   /* the test reads the message */
    return 0;
}
