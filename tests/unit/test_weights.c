/* test_weights.c - safetensors load/save, checksums, and damage handling. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "json.h"
#include "vamos/weights.h"

/* Per-test scratch directory (criterion runs each test in its own process). */
static char g_dir[64];

/* Create the scratch directory. */
static void dir_setup(void)
{
    strcpy(g_dir, "/tmp/vamos_tw_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
}

/* Remove the scratch directory and everything in it. */
static void dir_teardown(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        remove(p);
    }
    if (d)
        closedir(d);
    rmdir(g_dir);
}

TestSuite(weights, .init = dir_setup, .fini = dir_teardown);
TestSuite(json);

/* Path of file name inside the scratch directory. */
static const char *tpath(char buf[512], const char *name)
{
    snprintf(buf, 512, "%s/%s", g_dir, name);
    return buf;
}

/* Write len bytes to path. */
static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* Read the whole file at path into a malloc'd buffer. */
static unsigned char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Write a safetensors file from a header string (header_len bytes) and blob. */
static void write_st_n(const char *path, const char *header, size_t hlen,
                       const void *blob, size_t blob_len)
{
    unsigned char *b = malloc(8 + hlen + blob_len + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, header, hlen);
    if (blob_len)
        memcpy(b + 8 + hlen, blob, blob_len);
    write_bytes(path, b, 8 + hlen + blob_len);
    free(b);
}

/* Write a safetensors file from a NUL-terminated header and blob. */
static void write_st(const char *path, const char *header, const void *blob,
                     size_t blob_len)
{
    write_st_n(path, header, strlen(header), blob, blob_len);
}

/* Lowercase hex XXH3 of data into out[17]. */
static const char *sum_hex(const void *data, size_t n, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, (uint64_t)XXH3_64bits(data, n));
    return out;
}

/* Load path expecting failure; returns the message (static per call site). */
static void expect_fail(const char *path, unsigned flags, const char *needle)
{
    char err[512] = "";
    vamos_weights *w = vamos_weights_load(path, flags, err, sizeof err);
    cr_assert_null(w, "%s: expected failure containing \"%s\"", path, needle);
    cr_assert_eq(strncmp(err, path, strlen(path)), 0,
                 "message not prefixed by path: %s", err);
    cr_assert_not_null(strstr(err, needle), "expected \"%s\" in: %s", needle,
                       err);
}

/* Header with one F32 tensor "t" of shape [2] holding 8 bytes + extra JSON. */
static void write_one(const char *path, const char *entry, const char *meta,
                      const void *blob, size_t blob_len)
{
    char h[2048];
    snprintf(h, sizeof h, "{%s%s\"t\":%s}", meta ? meta : "", meta ? "," : "",
             entry);
    write_st(path, h, blob, blob_len);
}

static const float k_a[6] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-7f, 6.0f};
static const int32_t k_ids[4] = {5, -7, 2, 2147483647};
static const float k_s = 42.0f;

/* The small three-tensor model used by several tests. */
static void model(vamos_tensor t[3])
{
    memset(t, 0, 3 * sizeof *t);
    t[0] = (vamos_tensor){.name = "layer0.wq", .dtype = VAMOS_F32, .rank = 2,
                          .shape = {2, 3}, .data = k_a, .nbytes = sizeof k_a};
    t[1] = (vamos_tensor){.name = "prompt", .dtype = VAMOS_I32, .rank = 1,
                          .shape = {4}, .data = k_ids, .nbytes = sizeof k_ids};
    t[2] = (vamos_tensor){.name = "scale", .dtype = VAMOS_F32, .rank = 0,
                          .data = &k_s, .nbytes = sizeof k_s};
}

/* Save the small model to path. */
static void save_model(const char *path)
{
    vamos_tensor t[3];
    const char *meta[] = {"vamos.model", "statquest"};
    char err[512] = "";
    model(t);
    cr_assert_eq(vamos_weights_save(path, t, 3, meta, 1, err, sizeof err), 0,
                 "%s", err);
}

/* Assert that a and b describe the same tensor with the same bytes. */
static void assert_same_tensor(const vamos_tensor *a, const vamos_tensor *b)
{
    cr_assert_str_eq(a->name, b->name);
    cr_assert_eq(a->dtype, b->dtype, "%s", a->name);
    cr_assert_eq(a->rank, b->rank, "%s", a->name);
    for (int d = 0; d < a->rank; d++)
        cr_assert_eq(a->shape[d], b->shape[d], "%s dim %d", a->name, d);
    cr_assert_eq(a->nbytes, b->nbytes, "%s", a->name);
    cr_assert_eq(memcmp(a->data, b->data, a->nbytes), 0, "%s", a->name);
}

Test(weights, round_trip_f32_i32_with_metadata)
{
    char p[512], err[512] = "";
    vamos_tensor t[3];
    model(t);
    save_model(tpath(p, "m.safetensors"));
    vamos_weights *w = vamos_weights_load(p, 0, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(vamos_weights_count(w), 3);
    for (int i = 0; i < 3; i++) {
        const vamos_tensor *l = vamos_weights_at(w, i);
        assert_same_tensor(l, &t[i]);
        cr_assert_eq((uintptr_t)l->data % 4, 0);
        cr_assert_eq(vamos_weights_find(w, t[i].name), l);
    }
    const vamos_tensor *wq = vamos_weights_find(w, "layer0.wq");
    cr_assert_float_eq(((const float *)wq->data)[2], 3.25f, 0);
    cr_assert_eq(((const int32_t *)vamos_weights_find(w, "prompt")->data)[3],
                 2147483647);
    cr_assert_null(vamos_weights_at(w, -1));
    cr_assert_null(vamos_weights_at(w, 3));
    cr_assert_null(vamos_weights_find(w, "layer0"));
    cr_assert_str_eq(vamos_weights_meta(w, "vamos.model"), "statquest");
    cr_assert_null(vamos_weights_meta(w, "vamos.missing"));
    char hex[17];
    cr_assert_str_eq(vamos_weights_meta(w, "xxh3:prompt"),
                     sum_hex(k_ids, sizeof k_ids, hex));
    cr_assert_neq(vamos_weights_hash(w), 0);
    vamos_weights_free(w);
    cr_assert_eq(access(tpath(p, "m.safetensors.tmp"), F_OK), -1);
}

Test(weights, file_layout_is_aligned_and_padded)
{
    char p[512];
    size_t len;
    save_model(tpath(p, "m.safetensors"));
    unsigned char *b = read_bytes(p, &len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | b[i];
    cr_assert_eq((8 + n) % 8, 0);
    cr_assert_eq(len, 8 + n + sizeof k_a + sizeof k_ids + sizeof k_s);
    cr_assert_eq(b[8], '{');
    size_t last = 8 + (size_t)n - 1;
    while (b[last] == ' ')
        last--;
    cr_assert_eq(b[last], '}');
    cr_assert_eq(memcmp(b + 8 + n, k_a, sizeof k_a), 0);
    free(b);
}

Test(weights, hash_identifies_tensors_not_metadata)
{
    char p[512], q[512], err[512];
    vamos_tensor t[3];
    float a2[6];
    const char *meta[] = {"other", "value", "k", "v"};
    model(t);
    save_model(tpath(p, "a.safetensors"));
    cr_assert_eq(vamos_weights_save(tpath(q, "b.safetensors"), t, 3, meta, 2,
                                    err, sizeof err), 0, "%s", err);
    vamos_weights *wa = vamos_weights_load(p, 0, err, sizeof err);
    vamos_weights *wb = vamos_weights_load(q, 0, err, sizeof err);
    cr_assert(wa && wb);
    cr_assert_eq(vamos_weights_hash(wa), vamos_weights_hash(wb));
    vamos_weights_free(wb);
    memcpy(a2, k_a, sizeof a2);
    a2[5] = 6.5f;
    t[0].data = a2;
    cr_assert_eq(vamos_weights_save(q, t, 3, NULL, 0, err, sizeof err), 0);
    wb = vamos_weights_load(q, 0, err, sizeof err);
    cr_assert_not_null(wb, "%s", err);
    cr_assert_neq(vamos_weights_hash(wa), vamos_weights_hash(wb));
    vamos_weights_free(wb);
    t[0].data = k_a;
    t[0].shape[0] = 3, t[0].shape[1] = 2;
    cr_assert_eq(vamos_weights_save(q, t, 3, NULL, 0, err, sizeof err), 0);
    wb = vamos_weights_load(q, 0, err, sizeof err);
    cr_assert_neq(vamos_weights_hash(wa), vamos_weights_hash(wb));
    vamos_weights_free(wb);
    vamos_weights_free(wa);
}

Test(weights, empty_file_and_empty_tensor)
{
    char p[512], err[512];
    vamos_tensor t = {.name = "nothing", .dtype = VAMOS_F32, .rank = 2,
                      .shape = {0, 3}, .data = NULL, .nbytes = 0};
    cr_assert_eq(vamos_weights_save(tpath(p, "e.safetensors"), NULL, 0, NULL,
                                    0, err, sizeof err), 0, "%s", err);
    vamos_weights *w = vamos_weights_load(p, 0, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(vamos_weights_count(w), 0);
    cr_assert_null(vamos_weights_find(w, "x"));
    cr_assert_null(vamos_weights_meta(w, "x"));
    vamos_weights_free(w);
    cr_assert_eq(vamos_weights_save(p, &t, 1, NULL, 0, err, sizeof err), 0,
                 "%s", err);
    w = vamos_weights_load(p, 0, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(vamos_weights_at(w, 0)->nbytes, 0);
    cr_assert_eq(vamos_weights_at(w, 0)->shape[1], 3);
    vamos_weights_free(w);
}

Test(weights, names_needing_json_escapes)
{
    static const char *names[] = {
        "quote\"d", "back\\slash", "caf\xc3\xa9", "slash/ed",
        "emoji \xf0\x9f\x98\x80", "{\"x\":[1]}",
        /* The last four have control characters, which names may not. */
        "new\nline", "tab\tbed", "del\x7f", "\x01start"};
    enum { N = sizeof names / sizeof *names };
    char p[512], err[512];
    float v[N];
    vamos_tensor t[N];
    const char *meta[] = {"k\"e\\y\n", "v\"a\\l\x1f\xe2\x82\xac"};
    for (int i = 0; i < N; i++) {
        v[i] = (float)i;
        t[i] = (vamos_tensor){.name = names[i], .dtype = VAMOS_F32, .rank = 1,
                              .shape = {1}, .data = &v[i], .nbytes = 4};
    }
    /* Names with control characters are refused on save. */
    cr_assert_eq(vamos_weights_save(tpath(p, "n.safetensors"), t, N, meta, 1,
                                    err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "control character"), "%s", err);
    cr_assert_eq(vamos_weights_save(p, t, N - 4, meta, 1, err, sizeof err), 0,
                 "%s", err);
    vamos_weights *w = vamos_weights_load(p, 0, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(vamos_weights_count(w), N - 4);
    for (int i = 0; i < N - 4; i++)
        assert_same_tensor(vamos_weights_find(w, names[i]), &t[i]);
    cr_assert_str_eq(vamos_weights_meta(w, meta[0]), meta[1]);
    vamos_weights_free(w);
}

Test(weights, save_rejects_bad_input)
{
    char p[512], err[512];
    float v[4] = {0};
    const char *bad_meta[] = {"xxh3:a", "0000000000000000"};
    const char *dup_meta[] = {"k", "1", "k", "2"};
    const char *null_meta[] = {"k", NULL};
    struct {
        vamos_tensor t;
        const char *needle;
    } cases[] = {
        {{.name = "", .rank = 1, .shape = {1}, .data = v, .nbytes = 4},
         "name is empty"},
        {{.name = NULL, .rank = 1, .shape = {1}, .data = v, .nbytes = 4},
         "has no name"},
        {{.name = "a\x02", .rank = 1, .shape = {1}, .data = v, .nbytes = 4},
         "control character"},
        {{.name = "bad\xff", .rank = 1, .shape = {1}, .data = v, .nbytes = 4},
         "not valid UTF-8"},
        {{.name = "__metadata__", .rank = 1, .shape = {1}, .data = v,
          .nbytes = 4}, "reserved"},
        {{.name = "a", .rank = 2, .shape = {2, 3}, .data = v, .nbytes = 16},
         "tensor 'a': nbytes is 16 but F32 [2, 3] needs 24"},
        {{.name = "a", .rank = 9, .data = v, .nbytes = 4}, "rank 9"},
        {{.name = "a", .rank = 1, .shape = {-1}, .data = v, .nbytes = 4},
         "shape[0] is -1"},
        {{.name = "a", .rank = 1, .shape = {1}, .data = NULL, .nbytes = 4},
         "data is NULL"},
        {{.name = "a", .dtype = (vamos_dtype)7, .rank = 1, .shape = {1},
          .data = v, .nbytes = 4}, "unknown dtype"},
        {{.name = "a", .rank = 3, .shape = {INT64_MAX / 2, 4, 4}, .data = v,
          .nbytes = 4}, "too many elements"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err[0] = 0;
        cr_assert_eq(vamos_weights_save(tpath(p, "s.safetensors"),
                                        &cases[i].t, 1, NULL, 0, err,
                                        sizeof err), -1, "case %zu", i);
        cr_assert_not_null(strstr(err, cases[i].needle), "case %zu: %s", i,
                           err);
        cr_assert_eq(access(p, F_OK), -1, "case %zu left a file", i);
    }
    vamos_tensor two[2] = {
        {.name = "a", .rank = 1, .shape = {1}, .data = v, .nbytes = 4},
        {.name = "a", .rank = 1, .shape = {1}, .data = v, .nbytes = 4}};
    cr_assert_eq(vamos_weights_save(p, two, 2, NULL, 0, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "tensor 'a': appears twice"), "%s", err);
    cr_assert_eq(vamos_weights_save(p, two, 1, bad_meta, 1, err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "reserved for checksums"), "%s", err);
    cr_assert_eq(vamos_weights_save(p, two, 1, dup_meta, 2, err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "'k' appears twice"), "%s", err);
    cr_assert_eq(vamos_weights_save(p, two, 1, null_meta, 1, err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "NULL value"), "%s", err);
    cr_assert_eq(vamos_weights_save(p, two, -1, NULL, 0, err, sizeof err), -1);
}

Test(weights, save_into_missing_directory)
{
    char p[512], err[512] = "";
    vamos_tensor t[3];
    model(t);
    tpath(p, "no/such/dir/m.safetensors");
    cr_assert_eq(vamos_weights_save(p, t, 3, NULL, 0, err, sizeof err), -1);
    cr_assert_eq(strncmp(err, p, strlen(p)), 0, "%s", err);
    cr_assert_not_null(strstr(err, "No such file or directory"), "%s", err);
}

Test(weights, save_replaces_existing_file)
{
    char p[512], err[512];
    vamos_tensor t[3];
    model(t);
    write_bytes(tpath(p, "m.safetensors"), "old junk", 8);
    cr_assert_eq(vamos_weights_save(p, t, 1, NULL, 0, err, sizeof err), 0);
    vamos_weights *w = vamos_weights_load(p, 0, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(vamos_weights_count(w), 1);
    vamos_weights_free(w);
}

Test(weights, unsupported_dtypes_are_named)
{
    static const char *dtypes[] = {"F16", "BF16", "F64", "I64", "U8", "BOOL",
                                   "f32", "F32 "};
    char p[512], h[512], msg[256], hex[17];
    unsigned char blob[16] = {0};
    tpath(p, "d.safetensors");
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++) {
        snprintf(h, sizeof h, "{\"__metadata__\":{\"xxh3:h\":\"%s\"},"
                 "\"h\":{\"dtype\":\"%s\",\"shape\":[2],"
                 "\"data_offsets\":[0,4]}}", sum_hex(blob, 4, hex), dtypes[i]);
        write_st(p, h, blob, 4);
        snprintf(msg, sizeof msg, ": tensor 'h': dtype %s is not supported"
                 " (Vamos reads F32 and I32)", dtypes[i]);
        expect_fail(p, 0, msg);
        expect_fail(p, VAMOS_WEIGHTS_UNCHECKED, msg);
    }
}

Test(weights, every_truncation_fails_cleanly)
{
    char p[512], q[512], err[512];
    size_t len;
    save_model(tpath(p, "m.safetensors"));
    unsigned char *b = read_bytes(p, &len);
    tpath(q, "cut.safetensors");
    for (size_t cut = 0; cut < len; cut++) {
        write_bytes(q, b, cut);
        err[0] = 0;
        vamos_weights *w = vamos_weights_load(q, 0, err, sizeof err);
        cr_assert_null(w, "prefix of %zu bytes loaded", cut);
        cr_assert_eq(strncmp(err, q, strlen(q)), 0, "cut %zu: %s", cut, err);
        cr_assert_gt(strlen(err), strlen(q) + 10, "cut %zu: %s", cut, err);
    }
    free(b);
}

Test(weights, trailing_bytes_are_rejected)
{
    char p[512];
    size_t len;
    save_model(tpath(p, "m.safetensors"));
    unsigned char *b = read_bytes(p, &len);
    b = realloc(b, len + 4);
    memset(b + len, 0, 4);
    write_bytes(p, b, len + 4);
    expect_fail(p, 0, "header: the tensors cover 44 bytes of data but the"
                " file has 48");
    free(b);
}

/* Index of the tensor whose data covers byte off of the blob, or -1. */
static int owner_of(const vamos_weights *w, const unsigned char *file,
                    size_t off, size_t hdr_end)
{
    (void)file;
    if (off < hdr_end)
        return -1;
    size_t pos = hdr_end;
    for (int i = 0; i < vamos_weights_count(w); i++) {
        size_t nb = vamos_weights_at(w, i)->nbytes;
        if (off < pos + nb)
            return i;
        pos += nb;
    }
    return -1;
}

/* Load a copy of orig with byte off XORed by mask and check the outcome. */
static void check_flip(const char *q, const unsigned char *orig, size_t len,
                       size_t off, unsigned char mask,
                       const vamos_weights *good, size_t hdr_end)
{
    char err[512] = "";
    unsigned char *b = malloc(len);
    memcpy(b, orig, len);
    b[off] ^= mask;
    write_bytes(q, b, len);
    vamos_weights *w = vamos_weights_load(q, 0, err, sizeof err);
    int owner = owner_of(good, orig, off, hdr_end);
    if (owner >= 0) {
        char want[1024];
        snprintf(want, sizeof want, "%s: tensor '%s': checksum mismatch", q,
                 vamos_weights_at(good, owner)->name);
        cr_assert_null(w, "data byte %zu ^ %02x loaded", off, mask);
        cr_assert_not_null(strstr(err, want), "byte %zu: %s", off, err);
    } else if (w) {
        cr_assert_eq(vamos_weights_count(w), vamos_weights_count(good));
        for (int i = 0; i < vamos_weights_count(w); i++)
            assert_same_tensor(vamos_weights_at(w, i),
                               vamos_weights_at(good, i));
        cr_assert_eq(vamos_weights_hash(w), vamos_weights_hash(good));
    } else {
        cr_assert_eq(strncmp(err, q, strlen(q)), 0, "byte %zu: %s", off, err);
        cr_assert_gt(strlen(err), strlen(q) + 10, "byte %zu: %s", off, err);
    }
    vamos_weights_free(w);
    free(b);
}

Test(weights, every_byte_flip_is_caught_or_harmless)
{
    static const unsigned char masks[] = {0xff, 0x01, 0x02, 0x04, 0x08,
                                          0x10, 0x20, 0x40, 0x80};
    char p[512], q[512], err[512];
    size_t len;
    save_model(tpath(p, "m.safetensors"));
    unsigned char *orig = read_bytes(p, &len);
    vamos_weights *good = vamos_weights_load(p, 0, err, sizeof err);
    cr_assert_not_null(good, "%s", err);
    size_t hdr_end = len - (sizeof k_a + sizeof k_ids + sizeof k_s);
    tpath(q, "flip.safetensors");
    for (size_t off = 0; off < len; off++)
        for (size_t m = 0; m < sizeof masks; m++)
            check_flip(q, orig, len, off, masks[m], good, hdr_end);
    vamos_weights_free(good);
    free(orig);
}

Test(weights, random_damage_never_crashes)
{
    char p[512], q[512], err[512];
    size_t len;
    uint64_t s = 0x9e3779b97f4a7c15u;
    save_model(tpath(p, "m.safetensors"));
    unsigned char *orig = read_bytes(p, &len);
    unsigned char *b = calloc(1, len + 64);
    tpath(q, "rnd.safetensors");
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(b, orig, len);
        size_t n = len;
        int k = 1 + iter % 6;
        for (int j = 0; j < k; j++) {
            s ^= (s & (UINT64_MAX >> 13)) << 13, s ^= s >> 7;
            s ^= (s & (UINT64_MAX >> 17)) << 17;
            b[8 + s % (n - 8)] = (unsigned char)(s >> 32);
        }
        if (iter % 3 == 0)
            n = 8 + (s >> 40) % (len - 8 + 40);
        write_bytes(q, b, n);
        err[0] = 0;
        vamos_weights *w = vamos_weights_load(q, 0, err, sizeof err);
        if (!w)
            cr_assert_gt(strlen(err), strlen(q) + 10, "%s", err);
        vamos_weights_free(w);
    }
    free(b);
    free(orig);
}

Test(weights, short_and_absurd_files)
{
    char p[512];
    unsigned char b[16] = {0};
    tpath(p, "s.safetensors");
    write_bytes(p, b, 0);
    expect_fail(p, 0, "file is 0 bytes, too short");
    write_bytes(p, b, 7);
    expect_fail(p, 0, "file is 7 bytes, too short");
    b[0] = 0xff, b[1] = 0xff, b[2] = 0xff, b[3] = 0xff;
    write_bytes(p, b, 16);
    expect_fail(p, 0, "header: length 4294967295 is absurd");
    memset(b, 0xff, 8);
    write_bytes(p, b, 16);
    expect_fail(p, 0, "is absurd");
    memset(b, 0, 8);
    b[0] = 9;
    write_bytes(p, b, 16);
    expect_fail(p, 0, "header: length 9 runs past the end of the file");
    b[0] = 0;
    write_bytes(p, b, 8);
    expect_fail(p, 0, "header: invalid JSON at byte 0");
    expect_fail(tpath(p, "missing.safetensors"), 0,
                "cannot open: No such file or directory");
    expect_fail(g_dir, 0, "not a regular file");
    expect_fail(tpath(p, "s.safetensors"), 0x80, "unknown flags");
}

Test(weights, bad_json_headers)
{
    static const struct {
        const char *h;
        size_t n; /* 0: strlen */
        const char *needle;
    } cases[] = {
        {"{", 0, "header: invalid JSON at byte 1"},
        {"[]", 0, "header: is not a JSON object"},
        {"1", 0, "header: is not a JSON object"},
        {"\"x\"", 0, "header: is not a JSON object"},
        {"{\"a\":}", 0, "expected a value"},
        {"{\"a\":{},}", 0, "expected a string key"},
        {"{\"a\" {}}", 0, "expected ':'"},
        {"{} x", 0, "unexpected 'x' after the value"},
        {"{}\0  ", 5, "unexpected byte 0x00"},
        {"{\"a\":1.5}", 0, "only integers"},
        {"{\"a\":01}", 0, "leading zeros"},
        {"{\"a\":99999999999999999999}", 0, "does not fit in 64 bits"},
        {"{\"a\":tru}", 0, "expected a value"},
        {"{\"a\":[1 2]}", 0, "expected ',' or ']'"},
        {"{\"a\xff\":1}", 0, "invalid UTF-8"},
        {"{\"\xc0\x80\":1}", 0, "invalid UTF-8"},
        {"{\"\xed\xa0\x80\":1}", 0, "invalid UTF-8"},
        {"{\"a\tb\":1}", 0, "control character 0x09"},
        {"{\"\\ud800\":1}", 0, "not followed by a low surrogate"},
        {"{\"\\udc00\":1}", 0, "lone low surrogate"},
        {"{\"\\u12\":1}", 0, "4 hex digits"},
        {"{\"\\x\":1}", 0, "invalid escape \\'x'"},
        {"{\"abc", 0, "unterminated string"},
        {"{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}", 0, "nesting deeper than 8"},
        {"  {}", 0, NULL},
    };
    char p[512], err[512];
    tpath(p, "j.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = cases[i].n ? cases[i].n : strlen(cases[i].h);
        write_st_n(p, cases[i].h, n, NULL, 0);
        if (!cases[i].needle) {
            vamos_weights *w = vamos_weights_load(p, 0, err, sizeof err);
            cr_assert_not_null(w, "case %zu: %s", i, err);
            vamos_weights_free(w);
            continue;
        }
        expect_fail(p, 0, cases[i].needle);
    }
}

Test(weights, bad_entries)
{
    static const struct {
        const char *entry, *meta, *needle;
        size_t blob;
    } cases[] = {
        {"1", NULL, "tensor 't': entry is not a JSON object", 8},
        {"{\"shape\":[2],\"data_offsets\":[0,8]}", NULL,
         "tensor 't': missing field dtype", 8},
        {"{\"dtype\":\"F32\",\"data_offsets\":[0,8]}", NULL,
         "tensor 't': missing field shape", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2]}", NULL,
         "tensor 't': missing field data_offsets", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}",
         NULL, "tensor 't': unknown field 'x'", 8},
        {"{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[0,8]}", NULL, "field dtype appears twice", 8},
        {"{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}", NULL,
         "tensor 't': dtype is not a string", 8},
        {"{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}", NULL,
         "tensor 't': shape is not an array", 8},
        {"{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}", NULL,
         "tensor 't': shape[0] is not an integer", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}", NULL,
         "tensor 't': shape[1] is -1, must be >= 0", 8},
        {"{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],"
         "\"data_offsets\":[0,8]}", NULL, "9 dimensions", 8},
        {"{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
         "\"data_offsets\":[0,8]}", NULL, "has too many elements", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2305843009213693952],"
         "\"data_offsets\":[0,8]}", NULL, "has too many elements", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}", NULL,
         "data_offsets is not an array [begin, end]", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}", NULL,
         "data_offsets[1] is not an integer >= 0", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}", NULL,
         "end before they begin", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}", NULL,
         "tensor 't': data_offsets [0, 12] hold 12 bytes but F32 [2] needs 8",
         12},
        {"{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[4,12]}", NULL,
         "tensor 't': data_offsets [4, 12] go past the end of the data (8"
         " bytes)", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}", NULL,
         "tensor 't': data starts at byte 4 but the data before it ends at 0",
         12},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"__metadata__\":[]", "header: __metadata__ is not a JSON object",
         8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"__metadata__\":{\"a\":1}",
         "header: __metadata__ entry 'a' is not a string", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"__metadata__\":{\"a\":\"x\\u0000y\"}", "contains a NUL character",
         8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}",
         "header: __metadata__ key 'a' appears twice", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"__metadata__\":{},\"__metadata__\":{}",
         "header: __metadata__ appears twice", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"__metadata__\":{\"xxh3:t\":\"ABCDEF0123456789\"}",
         "tensor 't': checksum 'ABCDEF0123456789' in __metadata__ is not 16"
         " lowercase hex digits", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"__metadata__\":{\"xxh3:t\":\"12\"}", "is not 16 lowercase hex", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"__metadata__\":{\"xxh3:gone\":\"0000000000000000\"}",
         "header: __metadata__ has checksum 'xxh3:gone' for a tensor that does"
         " not exist", 8},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]}",
         "tensor '': name is empty", 12},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"a\\u0001b\":{\"dtype\":\"F32\",\"shape\":[],"
         "\"data_offsets\":[8,12]}",
         "tensor 'a\\x01b': name contains a control character", 12},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"a\\u0000\":{\"dtype\":\"F32\",\"shape\":[],"
         "\"data_offsets\":[8,12]}",
         "tensor 'a\\x00': name contains a control character", 12},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}",
         "tensor 't': appears twice in the header", 16},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}",
         "\"u\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "tensor 't': data [4, 12) overlaps tensor 'u'", 12},
        {"{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
         "\"u\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}",
         "tensor 'u': data [4, 4) overlaps tensor 't'", 8},
    };
    char p[512];
    unsigned char blob[16] = {0};
    tpath(p, "e.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_one(p, cases[i].entry, cases[i].meta, blob, cases[i].blob);
        expect_fail(p, VAMOS_WEIGHTS_UNCHECKED, cases[i].needle);
    }
}

Test(weights, missing_checksum_needs_flag)
{
    char p[512], h[512], err[512], hex[17];
    const float blob[2] = {1.5f, 2.5f};
    tpath(p, "c.safetensors");
    write_one(p, "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
              "\"__metadata__\":{\"format\":\"pt\"}", blob, 8);
    expect_fail(p, 0, ": tensor 't' has no checksum in __metadata__ (not"
                " written by Vamos?)");
    vamos_weights *w = vamos_weights_load(p, VAMOS_WEIGHTS_UNCHECKED, err,
                                          sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_float_eq(((const float *)vamos_weights_find(w, "t")->data)[1],
                       2.5f, 0);
    cr_assert_str_eq(vamos_weights_meta(w, "format"), "pt");
    vamos_weights_free(w);
    /* No __metadata__ at all. */
    write_one(p, "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
              NULL, blob, 8);
    expect_fail(p, 0, "tensor 't' has no checksum");
    w = vamos_weights_load(p, VAMOS_WEIGHTS_UNCHECKED, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    vamos_weights_free(w);
    /* Checksums that are present are verified even with the flag. */
    snprintf(h, sizeof h, "\"__metadata__\":{\"xxh3:t\":\"%s\"}",
             sum_hex(blob, 4, hex));
    write_one(p, "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", h,
              blob, 8);
    expect_fail(p, VAMOS_WEIGHTS_UNCHECKED, "tensor 't': checksum mismatch"
                " (file says ");
    expect_fail(p, 0, "): the file is corrupted");
}

Test(weights, unaligned_blob_is_copied_to_alignment)
{
    char p[512], h[512], err[512], hex[17];
    const float blob[3] = {1.0f, 2.0f, 3.0f};
    snprintf(h, sizeof h, "{\"__metadata__\":{\"xxh3:t\":\"%s\"},\"t\":{"
             "\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}",
             sum_hex(blob, 12, hex));
    for (int pad = 0; pad < 8; pad++) {
        char hp[600];
        snprintf(hp, sizeof hp, "%s%*s", h, pad, "");
        write_st(tpath(p, "u.safetensors"), hp, blob, 12);
        vamos_weights *w = vamos_weights_load(p, 0, err, sizeof err);
        cr_assert_not_null(w, "pad %d: %s", pad, err);
        const vamos_tensor *t = vamos_weights_find(w, "t");
        cr_assert_eq((uintptr_t)t->data % 4, 0, "pad %d", pad);
        cr_assert_eq(memcmp(t->data, blob, 12), 0, "pad %d", pad);
        vamos_weights_free(w);
    }
}

Test(weights, long_bad_names_are_shown_cut)
{
    char p[512], err[512], name[400], h[1024];
    float v = 1.0f;
    vamos_tensor t = {.name = name, .rank = 0, .data = &v, .nbytes = 4};
    memset(name, 0x80, sizeof name - 1);
    name[sizeof name - 1] = '\0';
    tpath(p, "l.safetensors");
    cr_assert_eq(vamos_weights_save(p, &t, 1, NULL, 0, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "...': name is not valid UTF-8"), "%s", err);
    cr_assert_lt(strlen(err), 300);
    for (int i = 0; i < 100; i++)
        memcpy(h + 6 * i, "\\u001f", 6);
    snprintf(h + 600, sizeof h - 600, "\":{\"dtype\":\"F32\",\"shape\":[],"
             "\"data_offsets\":[0,4]}}");
    memmove(h + 2, h, strlen(h) + 1);
    h[0] = '{', h[1] = '"';
    write_st(p, h, &v, 4);
    expect_fail(p, 0, "tensor '\\x1f\\x1f");
    expect_fail(p, 0, "\\x1f...': name contains a control character");
}

Test(weights, error_buffer_may_be_small_or_null)
{
    char p[512], tiny[5];
    tpath(p, "missing.safetensors");
    cr_assert_null(vamos_weights_load(p, 0, NULL, 0));
    cr_assert_null(vamos_weights_load(p, 0, tiny, sizeof tiny));
    cr_assert_eq(strlen(tiny), 4);
    cr_assert_eq(vamos_weights_save(NULL, NULL, 0, NULL, 0, tiny, 1), -1);
    cr_assert_eq(tiny[0], '\0');
}

/* Parse text expecting success. */
static json_value parse_ok(const char *text, size_t n)
{
    json_value v;
    char err[256] = "";
    cr_assert_eq(json_parse(text, n, 16, &v, err, sizeof err), 0, "%s: %s",
                 text, err);
    return v;
}

Test(json, strings_and_escapes)
{
    const char *t = "{\"k\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20AC"
                    "\\ud83d\\ude00\\u0000z\"}";
    json_value v = parse_ok(t, strlen(t));
    const json_value *s = json_get(&v, "k");
    const char want[] = "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac"
                        "\xf0\x9f\x98\x80\0z";
    cr_assert_eq(s->kind, JSON_STRING);
    cr_assert_eq(s->len, sizeof want - 1);
    cr_assert_eq(memcmp(s->u.str, want, sizeof want), 0);
    cr_assert_null(json_get(&v, "missing"));
    json_free(&v);
}

Test(json, integers_and_literals)
{
    const char *t = " [0, -0, 9223372036854775807, -9223372036854775808, true,"
                    " false, null, [], {}] \n";
    json_value v = parse_ok(t, strlen(t));
    cr_assert_eq(v.kind, JSON_ARRAY);
    cr_assert_eq(v.len, 9);
    cr_assert_eq(v.u.items[2].u.num, INT64_MAX);
    cr_assert_eq(v.u.items[3].u.num, INT64_MIN);
    cr_assert_eq(v.u.items[4].kind, JSON_BOOL);
    cr_assert_eq(v.u.items[4].u.num, 1);
    cr_assert_eq(v.u.items[6].kind, JSON_NULL);
    cr_assert_eq(v.u.items[8].kind, JSON_OBJECT);
    json_free(&v);
}

Test(json, rejects_malformed)
{
    static const char *bad[] = {
        "", " ", "-", "--1", "1.", "1e5", "+1", "9223372036854775808",
        "-9223372036854775809", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\"}",
        "{1:2}", "\"\\u00g0\"", "\"\\ud800\\u0041\"", "\"abc", "[", "]",
        "nul", "truex", "\"\xf5\x80\x80\x80\"", "\"\xe2\x82\"", "[1][2]",
        "'a'", "\"\\", "\"\\u", "{\"a\":1 \"b\":2}",
    };
    char err[256];
    json_value v;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        cr_assert_eq(json_parse(bad[i], strlen(bad[i]), 16, &v, err,
                                sizeof err), -1, "accepted: %s", bad[i]);
        cr_assert_eq(strncmp(err, "invalid JSON at byte ", 21), 0, "%s", err);
        cr_assert_eq(v.kind, JSON_NULL);
    }
}

Test(json, depth_limit)
{
    char deep[2 * 3000 + 1];
    json_value v;
    char err[256];
    for (int d = 1; d <= 3000; d *= 3) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        int rc = json_parse(deep, 2 * (size_t)d, 64, &v, err, sizeof err);
        cr_assert_eq(rc, d <= 64 ? 0 : -1, "depth %d", d);
        json_free(&v);
    }
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    cr_assert_eq(json_parse(deep, 128, 64, &v, err, sizeof err), 0);
    json_free(&v);
    cr_assert_eq(json_parse(deep, 128, 63, &v, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "nesting deeper than 63"), "%s", err);
}

Test(json, writer_escapes_round_trip)
{
    const char *s = "q\"b\\n\nt\tc\x01\x1f\x7f\xc3\xa9/";
    json_buf b = {0};
    json_buf_puts(&b, "[");
    json_buf_string(&b, s);
    json_buf_puts(&b, ",");
    json_buf_int(&b, INT64_MIN);
    json_buf_puts(&b, "]");
    cr_assert_not(b.failed);
    json_value v = parse_ok(b.data, b.len);
    cr_assert_str_eq(v.u.items[0].u.str, s);
    cr_assert_eq(v.u.items[1].u.num, INT64_MIN);
    json_free(&v);
    json_buf_free(&b);
    cr_assert(json_utf8_valid("\xf4\x8f\xbf\xbf", 4));
    cr_assert_not(json_utf8_valid("\xf4\x90\x80\x80", 4));
    cr_assert_not(json_utf8_valid("\xe0\x80\x80", 3));
}
