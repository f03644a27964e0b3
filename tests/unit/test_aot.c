/* test_aot.c - standalone translators built by `vamos build`, run as
 * subprocesses: translations, dependencies, bad input, and the base model
 * against the interpreter. */
#include <criterion/criterion.h>
#include <stdarg.h>

#include "helpers.h"

static int sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(char **out, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return run_cmd(cmd, out);
}

#define SQ_BIN "/tmp/vamos-aot-statquest"

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void build_statquest(void)
{
    char *out;
    int st = sh(&out, "%s build models/statquest.vam -w models/statquest.safetensors -o " SQ_BIN, vamos_bin());
    cr_assert_eq(st, 0, "%s", out);
    free(out);
}

Test(aot, statquest_translator)
{
    build_statquest();
    char *out;
    cr_assert_eq(sh(&out, "cd / && " SQ_BIN " \"Let's go\""), 0);
    cr_assert_str_eq(out, "vamos\n");
    free(out);
    cr_assert_eq(sh(&out, SQ_BIN " \"to go\""), 0);
    cr_assert_str_eq(out, "ir\n");
    free(out);
    cr_assert_eq(sh(&out, "printf \"Let's go\\nto go\\n\" | " SQ_BIN), 0);
    cr_assert_str_eq(out, "vamos\nir\n");
    free(out);
    cr_assert_eq(sh(&out, "printf \"Let's go\\nto go\\n\\nto go\\n\" | " SQ_BIN " --beam 3 --batch 3"), 0);
    cr_assert_str_eq(out, "vamos\nir\n\nir\n");
    free(out);
    cr_assert_eq(sh(&out, SQ_BIN " --beam 0 x"), 2);
    free(out);
    cr_assert_eq(sh(&out, SQ_BIN " --version"), 0);
    cr_assert(!strncmp(out, "statquest (weights xxh3 ", 24) && strlen(out) == 24 + 16 + 2, "%s", out);
    free(out);
    cr_assert_eq(sh(&out, SQ_BIN " --help"), 0);
    cr_assert(strstr(out, "usage: translator"));
    free(out);
    cr_assert_eq(sh(&out, SQ_BIN " --bogus"), 2);
    free(out);
    /* a sentence that begins with '-' after --; writes and reads checked */
    cr_assert_eq(sh(&out, SQ_BIN " -- \"-x go\""), 0, "%s", out);
    free(out);
    cr_assert_eq(sh(&out, "echo go | " SQ_BIN " > /dev/full"), 1);
    cr_assert(strstr(out, "cannot write"), "%s", out);
    free(out);
    cr_assert_eq(sh(&out, SQ_BIN " < /tmp"), 1);
    cr_assert(strstr(out, "Is a directory"), "%s", out);
    free(out);
    /* a whole line is translated while the next is still being written
     * (2 s of margin for a translation of milliseconds) */
    cr_assert_eq(sh(&out, "rm -f /tmp/vamos-aot-prompt; ( printf \"Let's go\\nto\"; sleep 4; printf \" go\\n\" ) | "
                          SQ_BIN " > /tmp/vamos-aot-prompt & sleep 2; cat /tmp/vamos-aot-prompt; wait"), 0);
    cr_assert_str_eq(out, "vamos\n", "the first line waited for the second");
    free(out);
    remove("/tmp/vamos-aot-prompt");
}

/* Input past the limits is translated in part, and the translator says
 * so, naming the line; every input line still gets its output line. */
Test(aot, long_input_is_cut_with_a_warning)
{
    build_statquest();
    char *out;
    cr_assert_eq(sh(&out, "{ yes go | head -n 1100 | tr '\\n' ' '; printf '\\nto go\\n'; } | " SQ_BIN), 0);
    cr_assert(strstr(out, "translator: warning: line 1 has 1100 words; only its first 1024 are translated\n"), "%s", out);
    cr_assert(strlen(out) > 4 && !strcmp(out + strlen(out) - 4, "\nir\n"), "%s", out);
    free(out);
    /* stdout and stderr apart: whether the first line is translated before
     * the long one is read depends on how the pipe delivers them */
    cr_assert_eq(sh(&out, "{ echo to go; head -c 1100000 /dev/zero | tr '\\0' a; printf '\\nto go\\n'; } | " SQ_BIN
                          " 2>/tmp/vamos-aot-long.err"), 0);
    cr_assert(!strncmp(out, "ir\n", 3) && !strcmp(out + strlen(out) - 4, "\nir\n"), "%s", out);
    cr_assert_eq(count_lines(out), 3, "one line out per line in: %s", out);
    free(out);
    cr_assert_eq(sh(&out, "cat /tmp/vamos-aot-long.err"), 0);
    cr_assert_str_eq(out, "translator: warning: line 2 is longer than 1048576 bytes; the rest of it is dropped\n");
    free(out);
    cr_assert_eq(sh(&out, SQ_BIN " \"to go\""), 0);   /* no warning when nothing is cut */
    cr_assert_str_eq(out, "ir\n");
    free(out);
}

/* A translator built for x86-64-v3 (valgrind knows no AVX-512) runs
 * good and bad input under valgrind without an error or a leak. */
Test(aot, valgrind_finds_nothing, .timeout = 300)
{
    char *out;
    if (sh(&out, "command -v valgrind") != 0) {
        free(out);
        cr_skip_test("valgrind is not installed (scripts/setup.sh --test installs it)");
    }
    free(out);
    int st = sh(&out, "%s build models/statquest.vam -w models/statquest.safetensors --cpu x86-64-v3 -o "
                      "/tmp/vamos-aot-statquest-v3", vamos_bin());
    cr_assert_eq(st, 0, "%s", out);
    free(out);
    st = sh(&out, "printf \"Let's go\\nto go\\n\\377\\376 go\\n\\n\\ngo go go go go go\\n\" | valgrind -q "
                  "--error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect "
                  "/tmp/vamos-aot-statquest-v3 --batch 2 && valgrind -q --error-exitcode=99 "
                  "/tmp/vamos-aot-statquest-v3 --beam 3 \"to go\"");
    cr_assert_eq(st, 0, "valgrind reports (exit %d):\n%s", st, out);
    cr_expect_str_eq(out, "vamos\nir\nir\n\n\nir\nir\n");   /* and no valgrind report at all */
    free(out);
}

/* --cpu names a level it knows or is refused before any work. */
Test(aot, unknown_cpu_is_refused)
{
    char *out;
    int st = sh(&out, "%s build models/statquest.vam -w models/statquest.safetensors --cpu pentium -o /tmp/x", vamos_bin());
    cr_expect_eq(st, 2, "%s", out);
    cr_expect(strstr(out, "--cpu takes native, x86-64, x86-64-v2, x86-64-v3 or x86-64-v4, not 'pentium'"), "%s", out);
    free(out);
}

/* ldd lists libc, libm (and the loader), never LLVM or libstdc++. */
Test(aot, depends_on_libc_and_libm_only)
{
    build_statquest();
    char *out;
    cr_assert_eq(sh(&out, "ldd " SQ_BIN), 0);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        bool ok = strstr(line, "linux-vdso") || strstr(line, "libc.so") || strstr(line, "libm.so") ||
                  strstr(line, "libpthread") || strstr(line, "ld-linux");
        cr_assert(ok, "unexpected dependency: %s", line);
    }
    free(out);
}

/* Invalid UTF-8, empty lines, NULs, binary garbage and a 100 kB line: one
 * output line each, exit 0. */
Test(aot, bad_input_one_line_each)
{
    build_statquest();
    FILE *f = fopen("/tmp/vamos-aot-input", "wb");
    cr_assert(f);
    fputs("Let's go\n", f);
    fputs("\n\n", f);
    fputs("\xff\xfe\xc3\x28 go \xe2\x82\n", f);
    fwrite("to\0go\n", 1, 6, f);               /* a NUL byte inside a line */
    for (int i = 0; i < 300; i++)
        fputc((i * 37) % 256 == '\n' ? 'a' : (i * 37) % 256, f);
    fputc('\n', f);
    for (int i = 0; i < 100000; i++)
        fputc(i % 7 ? 'g' : ' ', f);
    fputc('\n', f);
    fputs("to go", f);                         /* no final newline */
    fclose(f);
    char *out;
    cr_assert_eq(sh(&out, SQ_BIN " < /tmp/vamos-aot-input"), 0, "%s", out);
    /* the 100000-byte line is 14286 words: said on stderr, then taken out */
    static const char warn[] = "translator: warning: line 7 has 14286 words; only its first 1024 are translated\n";
    char *w = strstr(out, warn);
    cr_assert(w, "%s", out);
    memmove(w, w + strlen(warn), strlen(w + strlen(warn)) + 1);
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 8, "%d output lines:\n%s", lines, out);
    /* unknown words are skipped (statquest has no <unk>): "go" is left */
    cr_assert_str_eq(out, "vamos\n\n\nir\nir\n\n\nir\n");
    free(out);
}

/* The base model with random weights: the translator's greedy output
 * equals the interpreter's, word for word. */
Test(aot, base_matches_the_interpreter, .timeout = 900)
{
    char *out;
    cr_assert_eq(sh(&out, "%s init models/base.vam -o /tmp/vamos-aot-base.safetensors --seed 5", vamos_bin()), 0, "%s", out);
    free(out);
    cr_assert_eq(sh(&out, "%s build models/base.vam -w /tmp/vamos-aot-base.safetensors -o /tmp/vamos-aot-base", vamos_bin()), 0, "%s", out);
    free(out);
    const char *sentences[] = { "w17 w42 w1999", "w5", "w31999 w300 w7 w7 w12" };
    for (int i = 0; i < 3; i++) {
        char *a, *b;
        cr_assert_eq(sh(&a, "/tmp/vamos-aot-base --max-len 4 \"%s\"", sentences[i]), 0);
        cr_assert_eq(sh(&b, "%s run --interp models/base.vam -w /tmp/vamos-aot-base.safetensors --max-len 4 \"%s\"",
                        vamos_bin(), sentences[i]), 0);
        cr_assert_str_eq(a, b, "'%s': translator says %s, interpreter says %s", sentences[i], a, b);
        free(a);
        free(b);
    }
    /* a padded batch gives what one sentence at a time gives */
    FILE *f = fopen("/tmp/vamos-aot-base-in", "w");
    for (int i = 0; i < 3; i++)
        fprintf(f, "%s\n", sentences[i]);
    fclose(f);
    char *one, *batched;
    cr_assert_eq(sh(&one, "/tmp/vamos-aot-base --max-len 4 --batch 1 --window 1 < /tmp/vamos-aot-base-in"), 0);
    cr_assert_eq(sh(&batched, "/tmp/vamos-aot-base --max-len 4 --batch 3 < /tmp/vamos-aot-base-in"), 0);
    cr_assert_str_eq(one, batched);
    /* threads split rows, never a sum: the same words on 1 and 3 threads */
    char *t1, *t3;
    cr_assert_eq(sh(&t1, "/tmp/vamos-aot-base --max-len 4 --batch 3 --threads 1 < /tmp/vamos-aot-base-in"), 0);
    cr_assert_eq(sh(&t3, "/tmp/vamos-aot-base --max-len 4 --batch 3 --threads 3 < /tmp/vamos-aot-base-in"), 0);
    cr_assert_str_eq(t1, batched);
    cr_assert_str_eq(t3, batched);
    free(t1), free(t3);
    free(one);
    free(batched);
    remove("/tmp/vamos-aot-base");
    remove("/tmp/vamos-aot-base.safetensors");
}

/* The shipped en-es translator on lines of many lengths: sorted into
 * batches, bounded by sentences or tokens, finished sentences leaving
 * the batch, on 1 or 2 threads, it writes what it writes one sentence at
 * a time, word for word and in input order. */
Test(aot, batched_decoding_equals_one_at_a_time, .timeout = 600)
{
    char *out;
    cr_assert_eq(sh(&out, "%s build models/en-es.vam -w models/en-es.safetensors -o /tmp/vamos-aot-enes", vamos_bin()),
                 0, "%s", out);
    free(out);
    static const char *words[] = { "open", "the", "file", "cannot", "save", "settings", "show", "hidden", "files",
                                   "print", "this", "page", "error", "while", "reading", "from", "disk", "new",
                                   "window", "close", "all", "tabs", "--verbose", "42" };
    FILE *f = fopen("/tmp/vamos-aot-enes-in", "w");
    cr_assert(f);
    unsigned x = 7;
    for (int i = 0; i < 70; i++) {
        int n = i % 9 == 8 ? 0 : 1 + (int)((x = x * 1103515245u + 12345u) >> 16) % 14;   /* some empty lines */
        for (int k = 0; k < n; k++)
            fprintf(f, "%s%s", k ? " " : "", words[((x = x * 1103515245u + 12345u) >> 16) % 24]);
        fprintf(f, "\n");
    }
    fclose(f);
    /* each group: first the one-sentence-at-a-time run, then the settings
     * that must give its output */
    static const char *groups[][6] = {
        { "--batch 1 --window 1", "", "--batch 7", "--batch-tokens 40", "--batch 64 --window 16 --threads 1",
          "--batch 3 --threads 2" },
        /* beam search: sentences' beams batched as rows of one decoder batch */
        { "--beam 4 --batch 1 --window 1", "--beam 4", "--beam 4 --batch 5 --threads 1", "--beam 4 --batch-tokens 30" },
    };
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        char *one;
        cr_assert_eq(sh(&one, "/tmp/vamos-aot-enes %s < /tmp/vamos-aot-enes-in", groups[g][0]), 0);
        int lines = 0;
        for (const char *p = one; *p; p++)
            lines += *p == '\n';
        cr_assert_eq(lines, 70, "one output line per input line, not %d", lines);
        for (int i = 1; i < 6 && groups[g][i]; i++) {
            char *b;
            cr_assert_eq(sh(&b, "/tmp/vamos-aot-enes %s < /tmp/vamos-aot-enes-in", groups[g][i]), 0);
            cr_assert_str_eq(b, one, "'%s' differs from '%s'", groups[g][i], groups[g][0]);
            free(b);
        }
        free(one);
    }
    remove("/tmp/vamos-aot-enes");
    remove("/tmp/vamos-aot-enes-in");
}

/* `vamos build --lib`: two models in one program, each under its own
 * prefix, as a static library and an object file, then as two shared
 * libraries; every line equals the model's own translator's. */
/* Continuous batching (vamos_translate_feed) gives every sentence the
 * words a batch gives it: sentences joining one or two a step as rows
 * free (refill 1), into 8 or 3 rows (so rows are refilled many times), or
 * three at a time once all 8 rows are free (the default), among them an empty line,
 * lines longer than a row takes at first (the rows' layout grows while
 * others decode) and one too long for any row (tests/serve/feed.txt). */
Test(aot, fed_sentences_equal_batched_ones, .timeout = 600)
{
    char *out;
    const char *libdir = "/tmp/vamos-aot-feed";
    char rt[4200];
    snprintf(rt, sizeof rt, "%s", vamos_bin());
    char *slash = strrchr(rt, '/');
    snprintf(slash ? slash + 1 : rt, sizeof rt - (size_t)(slash ? slash + 1 - rt : 0), "libvamosrt.a");
    cr_assert_eq(sh(&out, "rm -rf %s && mkdir -p %s && %s build models/en-es.vam -w models/en-es.safetensors --lib -o %s/libenes.a"
                          " && cc -Wall -Werror -Iinclude tests/unit/feed.c %s/libenes.a %s -lm -lpthread -o %s/feed",
                    libdir, libdir, vamos_bin(), libdir, libdir, rt, libdir), 0, "%s", out);
    free(out);
    cr_assert_eq(sh(&out, "%s/feed tests/serve/feed.txt 8 1 2>&1", libdir), 0, "%s", out);
    cr_assert(strstr(out, "same 130 of 130 (130 answers"), "%s", out);
    free(out);
    cr_assert_eq(sh(&out, "%s/feed tests/serve/feed.txt 3 2 2>&1", libdir), 0, "%s", out);
    cr_assert(strstr(out, "same 130 of 130 (130 answers"), "%s", out);
    free(out);
    cr_assert_eq(sh(&out, "%s/feed tests/serve/feed.txt 8 3 100 2>&1", libdir), 0, "%s", out);   /* the default refill */
    cr_assert(strstr(out, "same 130 of 130 (130 answers"), "%s", out);
    free(out);
}

Test(aot, two_models_link_into_one_program, .timeout = 600)
{
    char *out, *want = NULL;
    const char *libdir = "/tmp/vamos-aot-lib";
    char rt[4200];
    snprintf(rt, sizeof rt, "%s", vamos_bin());
    char *slash = strrchr(rt, '/');
    snprintf(slash ? slash + 1 : rt, sizeof rt - (size_t)(slash ? slash + 1 - rt : 0), "libvamosrt.a");
    cr_assert_eq(sh(&out, "rm -rf %s && mkdir -p %s", libdir, libdir), 0);
    free(out);
    cr_assert_eq(sh(&out, "nm --defined-only %s | grep -c ' T main$'", rt), 1, "the runtime library defines main");
    free(out);
    cr_assert_eq(sh(&out, "%s build models/statquest.vam -w models/statquest.safetensors --lib --prefix sq -o %s/sq.o",
                    vamos_bin(), libdir), 0, "%s", out);
    cr_assert(strstr(out, "sq_linked"), "%s", out);
    free(out);
    cr_assert_eq(sh(&out, "%s build models/en-es.vam -w models/en-es.safetensors --lib -o %s/libenes.a", vamos_bin(),
                    libdir), 0, "%s", out);
    cr_assert(strstr(out, "en_es_linked"), "the default prefix is the model's name: %s", out);
    free(out);
    cr_assert_eq(sh(&out, "cc -Wall -Werror -Iinclude tests/unit/two_models.c %s/sq.o %s/libenes.a %s -lm -lpthread -o %s/two",
                    libdir, libdir, rt, libdir), 0, "%s", out);
    free(out);
    /* what each model's own translator says */
    cr_assert_eq(sh(&out, "%s build models/en-es.vam -w models/en-es.safetensors -o %s/enes", vamos_bin(), libdir), 0);
    free(out);
    build_statquest();
    const char *lines = "'Let'\"'\"'s go' 'to go' 'Open file' 'Show hidden files'";
    cr_assert_eq(sh(&want, "for s in %s; do printf 'statquest\\t'; " SQ_BIN " -- \"$s\"; done; "
                           "for s in %s; do printf 'en_es\\t'; %s/enes -- \"$s\"; done", lines, lines, libdir), 0);
    cr_assert(strstr(want, "statquest\tvamos\n") && strstr(want, "en_es\tAbrir archivo\n"), "%s", want);
    cr_assert_eq(sh(&out, "%s/two %s 2>/dev/null", libdir, lines), 0, "%s", out);
    cr_assert_str_eq(out, want);
    free(out);
    cr_assert_eq(sh(&out, "%s/two x 2>&1 >/dev/null", libdir), 0);
    cr_assert(strstr(out, "vamos_settings.beam is 65"), "%s", out);
    free(out);
    /* the same as shared libraries, each holding the runtime */
    cr_assert_eq(sh(&out, "%s build models/statquest.vam -w models/statquest.safetensors --lib --prefix sq -o %s/libsq.so"
                          " && %s build models/en-es.vam -w models/en-es.safetensors --lib -o %s/libenes.so"
                          " && cc -Iinclude tests/unit/two_models.c -L%s -lsq -lenes -Wl,-rpath,%s -o %s/two_so",
                    vamos_bin(), libdir, vamos_bin(), libdir, libdir, libdir, libdir), 0, "%s", out);
    free(out);
    cr_assert_eq(sh(&out, "%s/two_so %s 2>/dev/null", libdir, lines), 0, "%s", out);
    cr_assert_str_eq(out, want);
    free(out);
    free(want);
    /* usage errors: exit 2, nothing written */
    cr_assert_eq(sh(&out, "%s build models/statquest.vam -w models/statquest.safetensors --lib -o %s/x.txt 2>&1",
                    vamos_bin(), libdir), 2);
    cr_assert(strstr(out, "NAME.o, NAME.a or NAME.so"), "%s", out);
    free(out);
    cr_assert_eq(sh(&out, "%s build models/statquest.vam -w models/statquest.safetensors --lib --prefix 9x -o %s/x.o 2>&1",
                    vamos_bin(), libdir), 2);
    cr_assert(strstr(out, "C identifier"), "%s", out);
    free(out);
    cr_assert_eq(sh(&out, "%s build models/statquest.vam -w models/statquest.safetensors --prefix sq -o %s/x 2>&1",
                    vamos_bin(), libdir), 2);
    free(out);
    cr_assert_eq(sh(&out, "ls %s/x.txt %s/x.o %s/x 2>&1", libdir, libdir, libdir), 2);
    free(out);
}
