/* weights.h - model weights as checksummed safetensors files.
 *
 * Saving a model (tensors are written in the given order):
 *
 *     float wq[4 * 4] = {...};
 *     int32_t ids[3] = {5, 7, 2};
 *     vamos_tensor t[2] = {
 *         {.name = "layer0.wq", .dtype = VAMOS_F32, .rank = 2,
 *          .shape = {4, 4}, .data = wq, .nbytes = sizeof wq},
 *         {.name = "prompt", .dtype = VAMOS_I32, .rank = 1,
 *          .shape = {3}, .data = ids, .nbytes = sizeof ids},
 *     };
 *     const char *meta[] = {"vamos.model", "statquest"};   // key, value, ...
 *     char err[256];
 *     if (vamos_weights_save("m.safetensors", t, 2, meta, 1, err, sizeof err))
 *         fprintf(stderr, "%s\n", err);
 *
 * Loading it back (everything is validated and every checksum verified):
 *
 *     vamos_weights *w = vamos_weights_load("m.safetensors", 0, err,
 *                                           sizeof err);
 *     if (!w) { fprintf(stderr, "%s\n", err); return 1; }
 *     const vamos_tensor *wq = vamos_weights_find(w, "layer0.wq");
 *     const float *x = wq->data;               // 4-byte aligned, read-only
 *     const char *model = vamos_weights_meta(w, "vamos.model");  // "statquest"
 *     vamos_weights_free(w);                   // invalidates all pointers
 *
 * File format: safetensors (https://github.com/huggingface/safetensors), i.e.
 * a little-endian u64 N, N bytes of JSON header, then the data blob. The
 * header maps each tensor name to {"dtype", "shape", "data_offsets"} and may
 * hold a "__metadata__" object of string -> string. Vamos adds one rule: for
 * every tensor NAME, __metadata__ has "xxh3:NAME" = 16 lowercase hex digits
 * of XXH3_64bits over the tensor's raw bytes. Loading rejects, with a
 * message "PATH: tensor 'NAME': ..." or "PATH: header: ...":
 *   - dtypes other than F32 and I32;
 *   - a missing (unless VAMOS_WEIGHTS_UNCHECKED), malformed or mismatching
 *     checksum, and checksums for tensors that do not exist;
 *   - any malformed header: bad JSON or UTF-8, missing/unknown/mistyped
 *     fields, rank > 8, negative dims, sizes that do not match the dtype and
 *     shape, duplicate or empty names, names with control characters;
 *   - data that is not exactly covered by the tensors (overlaps, gaps,
 *     trailing bytes, offsets past the end), truncated files, headers over
 *     100 MB.
 * Any input, however damaged, yields either a clean load or an error.
 * Data is stored little-endian; only little-endian hosts are supported.
 */
#ifndef VAMOS_WEIGHTS_H
#define VAMOS_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VAMOS_MAX_RANK 8

/* Element types Vamos stores; both are 4 bytes wide. */
typedef enum vamos_dtype { VAMOS_F32, VAMOS_I32 } vamos_dtype;

/* A dense row-major tensor; shape[0] is outermost, rank 0 is a scalar.
 * nbytes must equal 4 * product(shape[0..rank)). */
typedef struct vamos_tensor {
    const char *name;
    vamos_dtype dtype;
    int rank;
    int64_t shape[VAMOS_MAX_RANK];
    const void *data;
    size_t nbytes;
} vamos_tensor;

/* Loaded weights; owns the file contents and every string handed out. */
typedef struct vamos_weights vamos_weights;

/* Flags for vamos_weights_load. */
enum {
    /* Accept tensors without an "xxh3:NAME" entry (e.g. files written by
     * other tools). Checksums that are present are still verified. */
    VAMOS_WEIGHTS_UNCHECKED = 1u << 0
};

/* Read and validate the whole file at path. Returns NULL on error with a
 * NUL-terminated message in err (if err and errlen > 0). */
vamos_weights *vamos_weights_load(const char *path, unsigned flags, char *err,
                                  size_t errlen);

/* The same from size bytes at data (copied); name stands for the file in
 * messages. */
vamos_weights *vamos_weights_load_mem(const char *name, const void *data, size_t size, unsigned flags, char *err,
                                      size_t errlen);

/* Number of tensors. */
int vamos_weights_count(const vamos_weights *w);

/* Tensor i, 0 <= i < count, in the order of their data in the file (which is
 * the save order for files written by vamos_weights_save); NULL if out of
 * range. */
const vamos_tensor *vamos_weights_at(const vamos_weights *w, int i);

/* Tensor called name, or NULL. O(log n). */
const vamos_tensor *vamos_weights_find(const vamos_weights *w,
                                       const char *name);

/* Value of __metadata__ entry key (including "xxh3:NAME" ones), or NULL. */
const char *vamos_weights_meta(const vamos_weights *w, const char *key);

/* Identity of the weights: XXH3 chained over every tensor in vamos_weights_at
 * order (name, dtype, shape, checksum of the data). Equal for two files with
 * the same tensors in the same order, whatever their other metadata. */
uint64_t vamos_weights_hash(const vamos_weights *w);

/* Free everything; NULL is fine. */
void vamos_weights_free(vamos_weights *w);

/* Write n tensors to path in the given order, with their checksums and the
 * n_meta string pairs meta_kv[2i] -> meta_kv[2i+1] in __metadata__ (keys
 * starting with "xxh3:" are reserved). Writes path.tmp, syncs it and renames
 * it over path, so path is never left half-written. Returns 0, or -1 with a
 * message in err (invalid tensors or metadata, I/O errors). */
int vamos_weights_save(const char *path, const vamos_tensor *t, int n,
                       const char *const *meta_kv, int n_meta, char *err,
                       size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
