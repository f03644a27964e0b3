/* average.c - `vamos average`: the mean of several weight files.
 *
 * Checkpoint averaging: the weights a training run wrote after its last few
 * epochs, averaged tensor by tensor, usually translate better than any one
 * of them (the noise of the last steps cancels out). Every file must hold
 * the same tensors (names, dtypes, shapes) in any order; F32 tensors are
 * averaged element by element (summed in double, in the order the files
 * are given), I32 tensors must be equal. The result has the first file's
 * tensor order and its "vamos.model" name.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vamos/weights.h"

static const char *usage =
    "usage: vamos average -o OUT.safetensors W1.safetensors W2.safetensors ...\n\n"
    "Average weight files tensor by tensor (checkpoint averaging), for example the\n"
    "weights a training run wrote after each of its last epochs. Every file must\n"
    "hold the same tensors with the same shapes.\n\n"
    "  -o FILE   the averaged weights\n";

/* Check that b holds exactly a's tensors; 0, or -1 with a message naming
 * the tensor. */
static int same_tensors(const vamos_weights *a, const char *pa, const vamos_weights *b, const char *pb)
{
    if (vamos_weights_count(a) != vamos_weights_count(b)) {
        fprintf(stderr, "vamos average: %s has %d tensors, %s has %d\n", pa, vamos_weights_count(a), pb,
                vamos_weights_count(b));
        return -1;
    }
    for (int i = 0; i < vamos_weights_count(a); i++) {
        const vamos_tensor *x = vamos_weights_at(a, i), *y = vamos_weights_find(b, x->name);
        if (!y) {
            fprintf(stderr, "vamos average: %s: tensor '%s' is missing (it is in %s)\n", pb, x->name, pa);
            return -1;
        }
        if (x->dtype != y->dtype || x->rank != y->rank || memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->rank)) {
            fprintf(stderr, "vamos average: %s: tensor '%s' differs in dtype or shape from %s's\n", pb, x->name, pa);
            return -1;
        }
        if (x->dtype == VAMOS_I32 && memcmp(x->data, y->data, x->nbytes)) {
            fprintf(stderr, "vamos average: %s: integer tensor '%s' differs from %s's and cannot be averaged\n", pb,
                    x->name, pa);
            return -1;
        }
    }
    return 0;
}

int cmd_average_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, 0, 'h' }, { "output", required_argument, 0, 'o' }, { 0, 0, 0, 0 },
    };
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return 0;
        case 'o': out = optarg; break;
        default: fputs(usage, stderr); return 2;
        }
    }
    int n = argc - optind;
    if (!out || n < 1) {
        fprintf(stderr, "vamos average: %s\n\n%s", !out ? "-o OUT.safetensors is required" : "no weight files given",
                usage);
        return 2;
    }
    char **paths = argv + optind;
    vamos_weights **w = calloc((size_t)n, sizeof *w);
    vamos_tensor *t = NULL;
    float **sums = NULL;
    int rc = 1, nt = 0;
    char err[1024];
    if (!w)
        goto oom;
    for (int f = 0; f < n; f++) {
        if (!(w[f] = vamos_weights_load(paths[f], 0, err, sizeof err))) {
            fprintf(stderr, "vamos average: %s\n", err);
            goto done;
        }
        if (f && same_tensors(w[0], paths[0], w[f], paths[f]))
            goto done;
    }
    nt = vamos_weights_count(w[0]);
    t = calloc((size_t)nt + 1, sizeof *t);
    sums = calloc((size_t)nt + 1, sizeof *sums);
    if (!t || !sums)
        goto oom;
    for (int i = 0; i < nt; i++) {
        const vamos_tensor *x = vamos_weights_at(w[0], i);
        t[i] = *x;
        if (x->dtype != VAMOS_F32)
            continue;   /* equal in every file: the first file's */
        size_t ne = x->nbytes / sizeof(float);
        double *acc = calloc(ne + 1, sizeof *acc);
        if (!acc || !(sums[i] = malloc((ne + 1) * sizeof(float)))) {
            free(acc);
            goto oom;
        }
        for (int f = 0; f < n; f++) {
            const float *p = vamos_weights_find(w[f], x->name)->data;
            for (size_t e = 0; e < ne; e++)
                acc[e] += p[e];
        }
        for (size_t e = 0; e < ne; e++)
            sums[i][e] = (float)(acc[e] / n);
        free(acc);
        t[i].data = sums[i];
    }
    const char *model = vamos_weights_meta(w[0], "vamos.model");
    const char *meta[] = { "vamos.model", model ? model : "" };
    if (vamos_weights_save(out, t, nt, meta, model ? 1 : 0, err, sizeof err)) {
        fprintf(stderr, "vamos average: %s\n", err);
        goto done;
    }
    printf("wrote %s: the mean of %d weight files (%d tensors)\n", out, n, nt);
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "vamos average: out of memory\n");
done:
    for (int i = 0; sums && i < nt; i++)
        free(sums[i]);
    free(sums);
    free(t);
    for (int f = 0; w && f < n; f++)
        vamos_weights_free(w[f]);
    free(w);
    return rc;
}
