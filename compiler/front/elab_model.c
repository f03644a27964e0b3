/* elab_model.c - elaborate a program's model: constants, vocabularies, and
 * the encoder and decoder entries into their graphs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elab.h"
#include "elab_internal.h"
#include "readfile.h"
#include "bpe.h"
#include "utf8.h"

#define VOCAB_MAX_WORDS 1000000
#define VOCAB_MAX_FILE (64L << 20)

/* Special tokens are found by their spelling. */
static void vocab_specials(Vocab *v)
{
    v->eos = v->bos = v->unk = v->pad = -1;
    for (int i = 0; i < v->n; i++) {
        const char *w = v->words[i];
        if (!strcmp(w, "<eos>")) v->eos = i;
        else if (!strcmp(w, "<bos>")) v->bos = i;
        else if (!strcmp(w, "<unk>")) v->unk = i;
        else if (!strcmp(w, "<pad>")) v->pad = i;
    }
}

/* Add a word, rejecting empty, duplicate and invalid UTF-8 words. */
static bool vocab_add(Elab *e, Vocab *v, StrSet *set, const char *w, SrcLoc loc, const char *where)
{
    if (!*w) {
        el_error(e, loc, "vocabulary '%s' has an empty word%s", v->name, where);
        return false;
    }
    if (!utf8_valid(w, strlen(w))) {
        el_error(e, loc, "vocabulary '%s' has a word that is not valid UTF-8%s", v->name, where);
        return false;
    }
    for (const char *p = w; *p; p++)
        if ((unsigned char)*p <= ' ') {
            el_error(e, loc, "vocabulary '%s' has a word with a space or control character%s", v->name, where);
            return false;
        }
    int first = strset_get(set, w);
    if (first >= 0) {
        el_error(e, loc, "vocabulary '%s' has the word \"%s\" twice (ids %d and %d)%s", v->name, w, first, v->n, where);
        return false;
    }
    strset_put(e->a, set, w, v->n);
    if (v->n >= VOCAB_MAX_WORDS) {
        el_error(e, loc, "vocabulary '%s' has more than %d words", v->name, VOCAB_MAX_WORDS);
        return false;
    }
    v->words[v->n++] = w;
    return true;
}

/* `vocab v = 32000`: placeholder words <pad> <eos> <bos> <unk> w4 w5 ... */
static bool vocab_placeholder(Elab *e, Vocab *v, Value n)
{
    static const char *special[] = { "<pad>", "<eos>", "<bos>", "<unk>" };
    if (n.i < 5 || n.i > VOCAB_MAX_WORDS) {
        el_error(e, n.loc, "a placeholder vocabulary needs 5 to %d words, not %lld", VOCAB_MAX_WORDS, (long long)n.i);
        return false;
    }
    v->words = arena_alloc(e->a, sizeof(char *) * (size_t)n.i);
    for (int64_t i = 0; i < n.i; i++)
        v->words[i] = i < 4 ? special[i] : arena_printf(e->a, "w%lld", (long long)i);
    v->n = (int)n.i;
    return true;
}

static bool vocab_from_list(Elab *e, Vocab *v, Expr *x)
{
    Value l = el_eval(e, x);
    if (l.k == V_INT)
        return vocab_placeholder(e, v, l);
    if (l.k != V_LIST) {
        if (l.k != V_ERR)
            el_error(e, x->loc, "a vocabulary is a list of strings or file \"path\", got %s", v_kind_name(l.k));
        return false;
    }
    v->words = arena_alloc(e->a, sizeof(char *) * (size_t)(l.list.n + 1));
    StrSet set = { 0 };
    for (int i = 0; i < l.list.n; i++) {
        if (l.list.items[i].k != V_STR) {
            el_error(e, l.list.items[i].loc, "a vocabulary word must be a string, got %s", v_kind_name(l.list.items[i].k));
            return false;
        }
        if (!vocab_add(e, v, &set, l.list.items[i].s, l.list.items[i].loc, ""))
            return false;
    }
    return true;
}

/* One word per line; the path is relative to the main file's directory. */
static bool vocab_from_file(Elab *e, Vocab *v, const char *file, SrcLoc loc)
{
    const char *path = file[0] == '/' ? file : arena_printf(e->a, "%s/%s", e->dir, file);
    long len;
    char *text = read_file(e->a, path, VOCAB_MAX_FILE, &len);
    if (!text) {
        if (errno == EFBIG)
            el_error(e, loc, "vocabulary file '%s' is larger than %ld bytes", path, VOCAB_MAX_FILE);
        else
            el_error(e, loc, "cannot open vocabulary file '%s': %s", path, strerror(errno));
        return false;
    }
    size_t n = (size_t)len;
    if (n >= 12 && !memcmp(text, "#vamos-bpe ", 11)) {   /* a subword vocabulary (vamos vocab) */
        char err[256];
        vamos_bpe *b = vamos_bpe_parse(text, n, err, sizeof err);
        if (!b) {
            el_error(e, loc, "vocabulary file '%s': %s", path, err);
            return false;
        }
        int nt = vamos_bpe_size(b);
        v->words = arena_alloc(e->a, sizeof(char *) * (size_t)(nt + 1));
        bool ok = true;
        for (int i = 0; i < nt && ok; i++) {
            StrSet fresh = { 0 };   /* two merges may spell one string: ids, not strings, name BPE tokens */
            ok = vocab_add(e, v, &fresh, arena_strdup(e->a, vamos_bpe_token(b, i)), loc,
                           arena_printf(e->a, " (%s token %d)", path, i));
        }
        vamos_bpe_free(b);
        v->bpe = text, v->bpe_len = n;
        return ok;
    }
    int lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    v->words = arena_alloc(e->a, sizeof(char *) * (size_t)(lines + 1));
    StrSet set = { 0 };
    char *p = text, *end = text + n;
    for (int line = 1; p < end; line++) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        char *stop = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        char *w = arena_strndup(e->a, p, (size_t)(stop - p));
        if (memchr(p, 0, (size_t)(stop - p))) {
            el_error(e, loc, "vocabulary file '%s': line %d has a NUL byte", path, line);
            return false;
        }
        if (*w && !vocab_add(e, v, &set, w, loc, arena_printf(e->a, " (%s line %d)", path, line)))
            return false;
        p = eol + 1;
    }
    return true;
}

static void elab_vocab(Elab *e, Decl *d)
{
    Vocab *v = arena_alloc(e->a, sizeof *v);
    v->name = d->name;
    v->loc = d->loc;
    bool ok = d->vocab.list ? vocab_from_list(e, v, d->vocab.list)
                            : vocab_from_file(e, v, d->vocab.file, d->vocab.file_loc);
    if (ok && v->n == 0) {
        el_error(e, d->loc, "vocabulary '%s' is empty", v->name);
        ok = false;
    }
    vocab_specials(v);
    Value val = ok ? (Value){ .k = V_VOCAB, .vocab = v, .loc = d->loc } : v_err();
    env_set(e, &e->model_env, d->name, val, d->loc);
}

/* ------------------------------------------------------------- entries */

static int new_symbol(Elab *e, const char *name, SymRole role, SrcLoc loc)
{
    Model *m = e->m;
    for (int i = 0; i < m->nsyms; i++)
        if (!strcmp(m->syms[i].name, name)) {
            if (m->syms[i].role != role) {
                el_error(e, loc, "'%s' is already the %s; use another name here", name,
                         m->syms[i].role == SYM_BATCH ? "batch dimension" :
                         m->syms[i].role == SYM_SRC_LEN ? "source length" : "target length");
                return -1;
            }
            return i;
        }
    for (int i = 0; i < m->nsyms; i++)
        if (m->syms[i].role == role) {
            el_error(e, loc, "the decoder's %s must have the encoder's name, '%s'",
                     role == SYM_BATCH ? "batch dimension" : "sequence dimension", m->syms[i].name);
            return -1;
        }
    if (m->nsyms == SYM_MODEL_MAX)
        return -1;
    m->syms[m->nsyms] = (Symbol){ name, role };
    return m->nsyms++;
}

/* The tokens parameter: tokens<vocab>[batch, len]. */
static Value tokens_input(Elab *e, Decl *d, Param *p, SymRole len_role)
{
    TypeAnn *t = p->type;
    if (!t || t->kind != T_TOKENS || t->ellipsis || t->ndims != 2 ||
        t->dims[0]->kind != E_NAME || t->dims[1]->kind != E_NAME) {
        el_error(e, p->loc, "the %s's first parameter must be token ids, declared like '%s: tokens<%s>[b, %s]'",
                 d->name, p->name, len_role == SYM_SRC_LEN ? "src" : "tgt", len_role == SYM_SRC_LEN ? "n" : "m");
        return v_err();
    }
    if (!t->vocab) {
        el_error(e, t->loc, "name the vocabulary of '%s', like tokens<%s>[...]", p->name,
                 len_role == SYM_SRC_LEN ? "src" : "tgt");
        return v_err();
    }
    Binding *vb = NULL;
    for (int i = 0; i < e->model_env.n; i++)
        if (!strcmp(e->model_env.b[i].name, t->vocab))
            vb = &e->model_env.b[i];
    if (!vb || vb->v.k != V_VOCAB) {
        if (!vb || vb->v.k != V_ERR)
            el_error(e, t->loc, "'%s' is not a vocabulary of this model", t->vocab);
        return v_err();
    }
    int b = new_symbol(e, t->dims[0]->s, SYM_BATCH, t->dims[0]->loc);
    int n = new_symbol(e, t->dims[1]->s, len_role, t->dims[1]->loc);
    if (b < 0 || n < 0)
        return v_err();
    Vocab *v = vb->v.vocab;
    if (len_role == SYM_SRC_LEN)
        e->m->src = v;
    else
        e->m->tgt = v;
    Node nd = { .op = OP_INPUT, .dtype = DT_I32, .shape = { 2, { { 0, b }, { 0, n } } }, .loc = p->loc };
    nd.attr.input.role = IN_TOKENS;
    nd.attr.input.sym = n;
    nd.attr.input.name = p->name;
    int id = el_node(e, nd);
    Value val = id < 0 ? v_err() : v_tensor(id, p->loc);
    val.tokens_vocab = v;
    env_set(e, e->env, t->dims[0]->s, el_dim_value((Dim){ 0, b }, t->dims[0]->loc), t->dims[0]->loc);
    env_set(e, e->env, t->dims[1]->s, el_dim_value((Dim){ 0, n }, t->dims[1]->loc), t->dims[1]->loc);
    return val;
}

/* The decoder's memory: a tensor of the encoder output's shape. */
static Value memory_input(Elab *e, Param *p)
{
    const Node *out = &e->m->enc.nodes[e->m->enc.output];
    Node nd = { .op = OP_INPUT, .dtype = DT_F32, .shape = out->shape, .loc = p->loc };
    nd.attr.input.role = IN_TENSOR;
    nd.attr.input.sym = -1;
    nd.attr.input.name = p->name;
    int id = el_node(e, nd);
    if (id < 0)
        return v_err();
    Value v = v_tensor(id, p->loc);
    if (el_check_param(e, "decoder", p, &v, p->loc))
        return v;
    diag_note(e->d, out->site, "the encoder's output %s comes from here", shape_str(e->a, e->m, &out->shape));
    return v_err();
}

static void elab_entry(Elab *e, Decl *d, Graph *g)
{
    Env env = { 0 };
    g->name = d->name;
    g->output = -1;
    e->g = g;
    e->env = &env;
    e->scope = d->name;
    for (int i = 0; i < MAX_SYMS; i++)
        e->len_inputs[i] = -1;
    bool enc = d->entry == ENTRY_ENCODER;
    int want = enc ? 1 : 2;
    if (d->fn.nparams != want) {
        el_error(e, d->loc, enc ? "the encoder takes one parameter, the source tokens (x: tokens<src>[b, n])"
                                : "the decoder takes two parameters, the target tokens and the encoder's output (y: tokens<tgt>[b, m], memory: [b, n, d])");
        return;
    }
    Value x = tokens_input(e, d, &d->fn.params[0], enc ? SYM_SRC_LEN : SYM_TGT_LEN);
    env_set(e, &env, d->fn.params[0].name, x, d->fn.params[0].loc);
    if (!enc) {
        Value mem = memory_input(e, &d->fn.params[1]);
        env_set(e, &env, d->fn.params[1].name, mem, d->fn.params[1].loc);
        if (mem.k == V_ERR)
            return;
    }
    if (x.k == V_ERR)
        return;
    Flow f = el_exec_block(e, &d->fn.body);
    if (f.failed || diag_too_many(e->d))
        return;
    if (!f.returned || f.value.k != V_TENSOR) {
        if (!f.returned || f.value.k != V_ERR)
            el_error(e, d->loc, "the %s must return a tensor", d->name);
        return;
    }
    g->output = f.value.node;
}

/* The encoder returns [b, n, d]; the decoder [b, m, len(tgt)]. */
static bool check_encoder_output(Elab *e, Decl *enc)
{
    Model *m = e->m;
    const Node *eo = &m->enc.nodes[m->enc.output];
    if (eo->shape.rank != 3 || eo->dtype != DT_F32 || eo->shape.d[2].sym >= 0 ||
        !dim_eq(eo->shape.d[0], m->enc.nodes[0].shape.d[0]) ||
        !dim_eq(eo->shape.d[1], m->enc.nodes[0].shape.d[1])) {
        el_error(e, enc->loc, "the encoder must return a float tensor [batch, source length, d], not %s",
                 shape_str(e->a, m, &eo->shape));
        diag_note(e->d, eo->loc, "the returned tensor comes from here");
        return false;
    }
    return true;
}

static void check_decoder_output(Elab *e, Decl *dec)
{
    Model *m = e->m;
    if (m->dec.output < 0)
        return;
    const Node *dout = &m->dec.nodes[m->dec.output];
    Shape want = { 3, { m->dec.nodes[0].shape.d[0], m->dec.nodes[0].shape.d[1], dim_const(m->tgt ? m->tgt->n : 0) } };
    bool ok = dout->shape.rank == 3;
    for (int i = 0; ok && i < 3; i++)
        ok = dim_eq(dout->shape.d[i], want.d[i]);
    if (!ok) {
        el_error(e, dec->loc, "the decoder must return scores over the target vocabulary, shape %s, not %s",
                 shape_str(e->a, m, &want), shape_str(e->a, m, &dout->shape));
        diag_note(e->d, dout->loc, "the returned tensor comes from here");
    }
}

static void elab_model(Elab *e, Decl *md)
{
    Decl *enc = NULL, *dec = NULL;
    e->m->name = md->name;
    e->m->loc = md->loc;
    for (int i = 0; i < md->model.items.n && !diag_too_many(e->d); i++) {
        Decl *d = md->model.items.items[i];
        switch (d->kind) {
        case D_CONST:
            env_set(e, &e->model_env, d->name, el_eval(e, d->konst.value), d->loc);
            break;
        case D_VOCAB:
            elab_vocab(e, d);
            break;
        case D_ENTRY:
            if (d->entry == ENTRY_ENCODER)
                enc = d;
            else
                dec = d;
            break;
        case D_DEF: case D_MODEL:
            break;
        }
    }
    if (!enc || !dec) {
        el_error(e, md->loc, "model '%s' needs both an encoder and a decoder", md->name);
        return;
    }
    elab_entry(e, enc, &e->m->enc);
    if (e->m->enc.output < 0 || !check_encoder_output(e, enc))
        return;
    elab_entry(e, dec, &e->m->dec);
    check_decoder_output(e, dec);
    if (e->m->tgt && e->m->tgt->eos < 0)
        el_error(e, e->m->tgt->loc, "the target vocabulary '%s' needs an \"<eos>\" word to end translations", e->m->tgt->name);
}

Model *elab_program(Arena *a, Diag *d, DeclList *decls, const char *dir)
{
    Elab *e = arena_alloc(a, sizeof *e);
    e->a = a;
    e->d = d;
    e->dir = dir;
    e->m = arena_alloc(a, sizeof *e->m);
    e->m->enc.output = e->m->dec.output = -1;
    e->scope = "";
    e->defs = arena_alloc(a, sizeof(Decl *) * (size_t)(decls->n + 1));
    Decl *model = NULL;
    for (int i = 0; i < decls->n; i++) {
        Decl *x = decls->items[i];
        if (x->kind == D_DEF)
            e->defs[e->ndefs++] = x;
        else if (x->kind == D_MODEL)
            model = model ? model : x;
    }
    for (int i = 0; i < decls->n; i++)
        if (decls->items[i]->kind == D_CONST)
            env_set(e, &e->globals, decls->items[i]->name, el_eval(e, decls->items[i]->konst.value), decls->items[i]->loc);
    if (model)
        elab_model(e, model);
    return e->m;
}
