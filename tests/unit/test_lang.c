/* test_lang.c - the lexer and parser on good inputs, the bad-input corpus
 * (tests/lang/bad/NAME.vam with its exact diagnostics in NAME.err), and a
 * robustness sweep over mutated models: never a crash, every diagnostic in
 * the file:line:col form. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>

#include "arena.h"
#include "helpers.h"
#include "parse.h"

static int parse_text(const char *text, DeclList *out, char **diags)
{
    Arena a = { 0 };
    size_t len;
    FILE *f = open_memstream(diags, &len);
    Diag d;
    diag_init(&d, f);
    int file = diag_add_file(&d, "t.vam", text, (long)strlen(text));
    int errors = parse_file(&a, &d, file, out);
    fclose(f);
    arena_free(&a);
    return errors;
}

Test(parser, good_inputs)
{
    const char *good[] = {
        "",
        "# only a comment\n",
        "const a = 1 + 2 * 3 - -4 // 2 % 3\n",
        "def f(x, y: int = 2, z: [..., n, 4], t: tokens<v>[b, n], u: tokens[...]) { return x }\n",
        "def g(x: [b, s, d]) { for i in 0..3 { x = f(x, y: i) as layers[i].inner } return x }\n",
        "def h(c: bool) { if c and not false { return 1 } else if 1 >= 2 or 3 != 4 { return 2 } else { return 3 } }\n",
        "model m { vocab a = [\"x\", \"y\",] vocab b = file \"v.txt\" const k = 1.5e-3 encoder(x: tokens<a>[b, n]) { return x } decoder(y: tokens<b>[b, m], mem: [b, n, 2]) { return y; } }\n",
        "def k() { param w[2, 3] = zeros; param v[3]; return [w, v, \"s\\n\\\"q\\\"\", none, true] }\n",
        "def l(x) { return x @ x @ x }\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        DeclList decls = { 0 };
        char *diags;
        cr_assert_eq(parse_text(good[i], &decls, &diags), 0, "input %zu: %s", i, diags);
        free(diags);
    }
}

/* The parser's structure: precedence, keyword arguments, `as` paths. */
Test(parser, precedence_and_calls)
{
    Arena a = { 0 };
    Diag d;
    diag_init(&d, stderr);
    const char *text = "const a = 1 + 2 * 3 @ 4\ndef f() { return g(1, k: 2) as p.q[3] }\n";
    int file = diag_add_file(&d, "t.vam", text, (long)strlen(text));
    DeclList decls = { 0 };
    cr_assert_eq(parse_file(&a, &d, file, &decls), 0);
    cr_assert_eq(decls.n, 2);
    Expr *e = decls.items[0]->konst.value;           /* 1 + (2 * (3 @ 4)) */
    cr_assert_eq(e->kind, E_BINARY);
    cr_assert_eq(e->bin.op, B_ADD);
    cr_assert_eq(e->bin.r->bin.op, B_MUL);
    cr_assert_eq(e->bin.r->bin.r->bin.op, B_MATMUL);
    cr_assert_eq(e->loc.line, 1);
    cr_assert_eq(e->loc.col, 13);
    Expr *c = decls.items[1]->fn.body.items[0]->ret.value;
    cr_assert_eq(c->kind, E_CALL);
    cr_assert_str_eq(c->call.fn, "g");
    cr_assert_eq(c->call.nargs, 2);
    cr_assert_null(c->call.args[0].name);
    cr_assert_str_eq(c->call.args[1].name, "k");
    cr_assert_eq(c->call.nas, 3);
    cr_assert_str_eq(c->call.as[1].name, "q");
    cr_assert_eq(c->call.as[2].index->i, 3);
    cr_assert_eq(c->loc.line, 2);
    cr_assert_eq(c->loc.col, 18);
    arena_free(&a);
}

Test(parser, shipped_models_parse_and_check)
{
    const char *models[] = { "models/statquest.vam", "models/base.vam", "tests/golden/small.vam" };
    for (size_t i = 0; i < 3; i++) {
        Arena a = { 0 };
        Diag d;
        diag_init(&d, stderr);
        cr_assert(compile_file(&a, &d, models[i], NULL), "%s", models[i]);
        arena_free(&a);
    }
}

/* Every NAME.vam in tests/lang/bad gives exactly NAME.err and exit 1. */
Test(corpus, bad_inputs_give_their_exact_diagnostics)
{
    DIR *dir = opendir("tests/lang/bad");
    cr_assert(dir);
    int count = 0;
    for (struct dirent *de; (de = readdir(dir));) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".vam"))
            continue;
        char vam[512], err[512], cmd[1200];
        snprintf(vam, sizeof vam, "tests/lang/bad/%s", de->d_name);
        snprintf(err, sizeof err, "tests/lang/bad/%.*s.err", (int)(n - 4), de->d_name);
        char *want = read_all(err, NULL), *got;
        cr_assert(want, "%s has no .err file", vam);
        snprintf(cmd, sizeof cmd, "%s check %s", vamos_bin(), vam);
        int st = run_cmd(cmd, &got);
        cr_expect_eq(st, 1, "%s: exit %d", vam, st);
        cr_expect_str_eq(got, want, "%s:\n--- got ---\n%s--- want ---\n%s", vam, got, want);
        free(want);
        free(got);
        count++;
    }
    closedir(dir);
    cr_assert_geq(count, 30, "only %d bad inputs", count);
}

/* A line of diagnostics is a located error or note, a source or caret line
 * (two spaces), the error count, or a "vamos: error:" line. */
static bool well_formed(const char *line)
{
    if (!strncmp(line, "  ", 2) || !strncmp(line, "vamos: error: ", 14) || !*line)
        return true;
    int k = 0;
    while (isdigit((unsigned char)line[k]))
        k++;
    if (k && (!strcmp(line + k, " error") || !strcmp(line + k, " errors")))
        return true;
    const char *p = strstr(line, ": error: ");
    if (!p)
        p = strstr(line, ": note: ");
    if (!p)
        return false;
    /* ...:LINE:COL before it */
    const char *q = p;
    int colons = 0;
    while (q > line && colons < 2) {
        q--;
        if (*q == ':')
            colons++;
        else if (!isdigit((unsigned char)*q))
            return false;
    }
    return colons == 2;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Mutate: truncate, flip a byte, delete or duplicate a span, insert junk. */
static char *mutate(const char *src, size_t n, uint64_t *rng, size_t *out_len)
{
    static const char *junk[] = { "(", ")", "{", "}", "[", "]", ",", ":", "@", "as", "param",
                                  "for i in 0..", "1e999", "99999999999999999999", "\"", "#",
                                  "...", "x", "-", "def", "model", "return", "\xff", "\0" };
    char *m = malloc(2 * n + 64);
    size_t len = n, at = n ? rng_next(rng) % n : 0;
    memcpy(m, src, n);
    switch (rng_next(rng) % 5) {
    case 0: len = at; break;
    case 1: if (n) m[at] ^= (char)(1 + rng_next(rng) % 255); break;
    case 2: { size_t k = rng_next(rng) % 40; if (at + k > len) k = len - at;
              memmove(m + at, m + at + k, len - at - k); len -= k; break; }
    case 3: { size_t k = rng_next(rng) % 60; if (at + k > len) k = len - at;
              memmove(m + at + k, m + at, len - at); len += k; break; }
    case 4: { const char *j = junk[rng_next(rng) % (sizeof junk / sizeof junk[0])];
              size_t k = *j ? strlen(j) : 1; memmove(m + at + k, m + at, len - at);
              memcpy(m + at, j, k); len += k; break; }
    }
    m[len] = 0;
    *out_len = len;
    return m;
}

Test(robustness, mutated_models_never_crash, .timeout = 600)
{
    const char *files[] = { "models/statquest.vam", "tests/golden/small.vam", "models/base.vam" };
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int compiled = 0, rejected = 0;
    for (int round = 0; round < 1200; round++) {
        size_t n = 0, len = 0;
        char *src = read_all(files[round % 3], &n);
        cr_assert(src);
        char *text = mutate(src, n, &rng, &len);
        if (round % 7 == 6)   /* a second mutation now and then */
        {
            char *t2 = mutate(text, len, &rng, &len);
            free(text);
            text = t2;
        }
        Arena a = { 0 };
        char *diags;
        size_t dl;
        FILE *f = open_memstream(&diags, &dl);
        Diag d;
        diag_init(&d, f);
        Model *m = compile_text(&a, &d, "mutant.vam", text, (long)len, NULL);
        fclose(f);
        if (m) {
            compiled++;
            cr_assert_eq(d.errors, 0);
        } else {
            rejected++;
            cr_assert_gt(d.errors, 0, "rejected without a diagnostic:\n%s", text);
        }
        for (char *line = strtok(diags, "\n"); line; line = strtok(NULL, "\n"))
            cr_assert(well_formed(line), "malformed diagnostic line \"%s\" for:\n%s", line, text);
        free(diags);
        arena_free(&a);
        free(text);
        free(src);
    }
    cr_log_info("%d mutants compiled, %d rejected", compiled, rejected);
    cr_assert_gt(rejected, 100);
}

Test(robustness, random_bytes_never_crash)
{
    uint64_t rng = 12345;
    for (int round = 0; round < 500; round++) {
        size_t len = rng_next(&rng) % 400;
        char *text = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            text[i] = round % 2 ? (char)(rng_next(&rng) % 256)
                                : " (){}[]:,=+-*/@#\"abcdefmodelparam0123.\n"[rng_next(&rng) % 40];
        text[len] = 0;
        Arena a = { 0 };
        char *diags;
        size_t dl;
        FILE *f = open_memstream(&diags, &dl);
        Diag d;
        diag_init(&d, f);
        cr_assert_null(compile_text(&a, &d, "garbage.vam", text, (long)len, NULL));
        fclose(f);
        for (char *line = strtok(diags, "\n"); line; line = strtok(NULL, "\n"))
            cr_assert(well_formed(line), "malformed diagnostic line \"%s\"", line);
        free(diags);
        arena_free(&a);
        free(text);
    }
}

/* Every program of the language reference (lang/README.md) checks: each
 * ```vamos block with a model as it stands, each block of only
 * declarations (def, const) with a small model after it. Statement
 * fragments (no declarations) are counted, not checked. */
Test(docs, lang_readme_examples_check, .timeout = 300)
{
    FILE *f = fopen("lang/README.md", "r");
    cr_assert(f, "lang/README.md");
    char line[4096], *block = NULL;
    size_t len = 0, cap = 0;
    bool in = false;
    int whole = 0, decls = 0, fragments = 0;
    system("rm -rf /tmp/vamos-readme && mkdir -p /tmp/vamos-readme && "
           "printf '<eos>\\n<bos>\\n<unk>\\nthe\\ncat\\n' > /tmp/vamos-readme/en.words");
    for (int ln = 1; fgets(line, sizeof line, f); ln++) {
        if (!in) {
            in = !strncmp(line, "```vamos", 8);
            len = 0;
            continue;
        }
        if (strncmp(line, "```", 3)) {
            size_t k = strlen(line);
            if (len + k + 1 > cap)
                block = realloc(block, cap = 2 * (len + k + 1));
            memcpy(block + len, line, k + 1);
            len += k;
            continue;
        }
        in = false;
        if (!len)
            continue;
        bool model = strstr(block, "\nmodel ") || !strncmp(block, "model ", 6);
        const char *p = block;   /* the first line that is not a comment or blank */
        while (*p == '#' || *p == '\n')
            p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p);
        bool top = !strncmp(p, "def ", 4) || !strncmp(p, "const ", 6);
        if (!model && !top) {
            fragments++;
            continue;
        }
        FILE *o = fopen("/tmp/vamos-readme/m.vam", "w");
        fputs(block, o);
        if (!model)
            fputs("\nmodel readme_probe {\n  vocab src = [\"<eos>\", \"a\"]\n  vocab tgt = [\"<eos>\", \"b\"]\n"
                  "  encoder(x: tokens<src>[b, n]) { return embed(x, 4) }\n"
                  "  decoder(y: tokens<tgt>[b, m], memory: [b, n, 4]) { return softmax(linear(embed(y, 4), len(tgt))) }\n"
                  "}\n", o);
        fclose(o);
        char cmd[512], *out;
        snprintf(cmd, sizeof cmd, "%s check /tmp/vamos-readme/m.vam 2>&1", vamos_bin());
        int st = run_cmd(cmd, &out);
        cr_expect_eq(st, 0, "lang/README.md: the block that ends on line %d does not check:\n%s\n%s", ln, block, out);
        free(out);
        model ? whole++ : decls++;
    }
    fclose(f);
    free(block);
    cr_assert_geq(whole, 4, "only %d whole programs found", whole);
    cr_assert_geq(decls, 1, "only %d declaration blocks found", decls);
    cr_log_info("lang/README.md: %d programs, %d declaration blocks checked; %d fragments", whole, decls, fragments);
}
