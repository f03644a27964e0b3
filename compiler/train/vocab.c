/* vocab.c - `vamos vocab`: learn subword vocabularies from a corpus.
 *
 * One byte-pair-encoding vocabulary per side of a TSV corpus (bpe_learn.c),
 * written as PREFIX.src.bpe and PREFIX.tgt.bpe, the files a model names
 * with `vocab src = file "PREFIX.src.bpe"`; or, with --joint, one vocabulary
 * learned from both sides (PREFIX.bpe), so a name, option or identifier that
 * passes through untranslated is cut into the same subwords on both sides.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_learn.h"
#include "cli.h"
#include "tsv.h"

static const char *usage =
    "usage: vamos vocab --data TRAIN.tsv -o PREFIX [--size N] [--src-size N] [--tgt-size N] [--joint]\n\n"
    "Learn a byte-pair-encoding subword vocabulary for each side of a parallel\n"
    "corpus (lines source<TAB>target) and write PREFIX.src.bpe and PREFIX.tgt.bpe.\n"
    "A model uses them with  vocab src = file \"PREFIX.src.bpe\"  (and tgt).\n\n"
    "  --data FILE      the training corpus\n"
    "  -o PREFIX        where to write the two vocabularies\n"
    "  --size N         tokens per vocabulary (default 8000); --src-size and\n"
    "                   --tgt-size set one side\n"
    "  --joint          one vocabulary learned from both sides, written as\n"
    "                   PREFIX.bpe, for models whose source and target share it\n"
    "  --min-count N    characters seen fewer times become <unk> (default 2)\n";

static int write_file(const char *path, const char *text, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%.4000s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f)) {
        fprintf(stderr, "vamos vocab: cannot write '%s'\n", tmp);
        return -1;
    }
    if (rename(tmp, path)) {
        fprintf(stderr, "vamos vocab: cannot rename '%s' to '%s'\n", tmp, path);
        return -1;
    }
    return 0;
}

enum side { SIDE_SRC, SIDE_TGT, SIDE_JOINT };

static int learn_side(const Tsv *t, enum side side, int size, int min_count, const char *prefix)
{
    size_t n = 0;
    const char **lines = malloc(sizeof(char *) * (2 * (size_t)t->n + 1));
    if (!lines) {
        fprintf(stderr, "vamos vocab: out of memory\n");
        return -1;
    }
    for (int i = 0; i < t->n; i++) {
        if (side != SIDE_TGT)
            lines[n++] = t->p[i].src;
        if (side != SIDE_SRC)
            lines[n++] = t->p[i].tgt;
    }
    char *out, err[256], path[4096];
    size_t len;
    int rc = bpe_learn(lines, n, size, min_count, &out, &len, err, sizeof err);
    free(lines);
    if (rc) {
        fprintf(stderr, "vamos vocab: %s\n", err);
        return -1;
    }
    snprintf(path, sizeof path, "%s%s.bpe", prefix, side == SIDE_SRC ? ".src" : side == SIDE_TGT ? ".tgt" : "");
    rc = write_file(path, out, len);
    if (!rc) {
        int ntok = 0;
        sscanf(out + strcspn(out, "\n") + 1, "%d", &ntok);
        printf("wrote %s (%d tokens)\n", path, ntok);
    }
    free(out);
    return rc;
}

int cmd_vocab_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, 0, 'h' }, { "data", required_argument, 0, 'd' },
        { "output", required_argument, 0, 'o' }, { "size", required_argument, 0, 's' },
        { "src-size", required_argument, 0, 'S' }, { "tgt-size", required_argument, 0, 'T' },
        { "min-count", required_argument, 0, 'm' }, { "joint", no_argument, 0, 'j' }, { 0, 0, 0, 0 },
    };
    const char *data = NULL, *prefix = NULL;
    int ssize = 8000, tsize = 8000, min_count = 2, c;
    bool joint = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        char *end;
        long v = 0;
        if (c == 's' || c == 'S' || c == 'T' || c == 'm') {
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000000) {
                fprintf(stderr, "vamos vocab: --%s wants a number from 1 to 1000000, not '%s'\n",
                        c == 'm' ? "min-count" : c == 's' ? "size" : c == 'S' ? "src-size" : "tgt-size", optarg);
                return 2;
            }
        }
        switch (c) {
        case 'h': fputs(usage, stdout); return 0;
        case 'd': data = optarg; break;
        case 'o': prefix = optarg; break;
        case 's': ssize = tsize = (int)v; break;
        case 'S': ssize = (int)v; break;
        case 'T': tsize = (int)v; break;
        case 'm': min_count = (int)v; break;
        case 'j': joint = true; break;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!data || !prefix || optind != argc) {
        fprintf(stderr, "vamos vocab: %s\n\n%s", !data ? "--data is required" : !prefix ? "-o PREFIX is required"
                                                                          : "unexpected argument", usage);
        return 2;
    }
    Tsv t;
    char err[512];
    if (tsv_read(data, &t, stderr, 20, err, sizeof err)) {
        fprintf(stderr, "vamos vocab: %s\n", err);
        return 1;
    }
    if (t.n == 0) {   /* a vocabulary of the 5 control tokens alone is no vocabulary */
        fprintf(stderr, "vamos vocab: %s: no source<TAB>target pairs to learn from\n", data);
        tsv_free(&t);
        return 1;
    }
    int rc = joint ? learn_side(&t, SIDE_JOINT, ssize, min_count, prefix)
                   : learn_side(&t, SIDE_SRC, ssize, min_count, prefix) || learn_side(&t, SIDE_TGT, tsize, min_count, prefix);
    tsv_free(&t);
    return rc ? 1 : 0;
}
