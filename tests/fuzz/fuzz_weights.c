/* fuzz_weights.c - the safetensors reader on any bytes, with and without
 * required checksums: it loads them or says why not, and what it loads
 * is consistent (every tensor found by its name, its bytes inside the
 * file). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vamos/weights.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (unsigned flags = 0; flags <= VAMOS_WEIGHTS_UNCHECKED; flags += VAMOS_WEIGHTS_UNCHECKED) {
        char err[256] = "";
        vamos_weights *w = vamos_weights_load_mem("fuzz.safetensors", data, size, flags, err, sizeof err);
        if (!w) {
            if (!err[0])
                abort();   /* a failure must say why */
            continue;
        }
        size_t total = 0;
        for (int i = 0; i < vamos_weights_count(w); i++) {
            const vamos_tensor *t = vamos_weights_at(w, i);
            if (vamos_weights_find(w, t->name) != t || t->nbytes > size)
                abort();
            total += t->nbytes;
            volatile unsigned char sum = 0;
            for (size_t b = 0; b < t->nbytes; b++)   /* every byte readable */
                sum ^= ((const unsigned char *)t->data)[b];
        }
        if (total > size)
            abort();
        (void)vamos_weights_meta(w, "format");
        (void)vamos_weights_hash(w);
        vamos_weights_free(w);
    }
    return 0;
}
