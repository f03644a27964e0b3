/* elab_stmt.c - the elaborator's statements (assignment, param, for, if,
 * return) and the checking of arguments against parameter types and shape
 * patterns. */
#include <string.h>

#include "elab_internal.h"

Value el_dim_value(Dim d, SrcLoc loc)
{
    if (d.sym >= 0)
        return (Value){ .k = V_DIM, .i = d.sym, .loc = loc };
    return v_int(d.n, loc);
}

bool el_value_dim(Elab *e, Value v, Dim *out, const char *what)
{
    if (v.k == V_DIM) {
        *out = (Dim){ 0, (int)v.i };
        return true;
    }
    if (v.k == V_FLOAT && v.f == (double)(int64_t)v.f && v.f >= 0 && v.f <= 1e15)
        v = v_int((int64_t)v.f, v.loc);
    if (v.k != V_INT) {
        if (v.k != V_ERR)
            el_error(e, v.loc, "%s must be an integer or a dimension, got %s", what, v_kind_name(v.k));
        return false;
    }
    if (v.i < 1 || v.i > MAX_DIM) {
        el_error(e, v.loc, "%s is %lld, outside 1..%lld", what, (long long)v.i, (long long)MAX_DIM);
        return false;
    }
    *out = dim_const(v.i);
    return true;
}

/* Describe a pattern like [..., n, d] for messages. */
static const char *pattern_str(Elab *e, const TypeAnn *t)
{
    char buf[256];
    int len = snprintf(buf, sizeof buf, "%s[%s", t->kind == T_TOKENS ? "tokens" : "",
                       t->ellipsis ? (t->ndims ? "..., " : "...") : "");
    for (int i = 0; i < t->ndims && len < 200; i++) {
        const Expr *x = t->dims[i];
        const char *sep = i ? ", " : "";
        if (x->kind == E_NAME)
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%s", sep, x->s);
        else if (x->kind == E_INT)
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%lld", sep, (long long)x->i);
        else
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%s(expr)", sep);
    }
    snprintf(buf + len, sizeof buf - (size_t)len, "]");
    return arena_strdup(e->a, buf);
}

/* One dim as text: "4" or "n". */
static const char *dim_str(Elab *e, Dim d)
{
    Shape one = { 1, { d } };
    const char *s = shape_str(e->a, e->m, &one);
    return arena_strndup(e->a, s + 1, strlen(s) - 2);
}

/* Match one dim of a shape pattern: bind a new name, or check a known one. */
static bool match_dim(Elab *e, const char *fn, Param *p, const TypeAnn *t, int k,
                      Dim actual, Value *v, SrcLoc where)
{
    Expr *x = t->dims[k];
    Value want;
    if (x->kind == E_NAME && !strcmp(x->s, "_"))
        return true;
    if (x->kind == E_NAME) {
        /* in a function, names are its own; in an entry, constants too */
        Binding *b = e->depth > 0 ? el_lookup_local(e, x->s) : el_lookup(e, x->s);
        if (!b) {
            env_set(e, e->env, x->s, el_dim_value(actual, x->loc), x->loc);
            return true;
        }
        want = b->v;
    } else {
        want = el_eval(e, x);
    }
    Dim wd;
    if (want.k == V_ERR)
        return false;
    if (!el_value_dim(e, want, &wd, "a dimension in a shape pattern"))
        return false;
    if (dim_eq(wd, actual))
        return true;
    Node *n = el_nd(e, *v);
    const char *ws = dim_str(e, wd);
    if (x->kind == E_NAME)
        el_error(e, where, "shape mismatch: argument '%s' of '%s' has shape %s, but its pattern %s needs %s = %s",
                 p->name, fn, shape_str(e->a, e->m, &n->shape), pattern_str(e, t), x->s, ws);
    else
        el_error(e, where, "shape mismatch: argument '%s' of '%s' has shape %s, but its pattern %s needs %s where it has %s",
                 p->name, fn, shape_str(e->a, e->m, &n->shape), pattern_str(e, t), ws, dim_str(e, actual));
    el_note_origin(e, "the argument", v->node);
    if (x->kind == E_NAME)
        diag_note(e->d, want.loc, "'%s' is %s from here", x->s, ws);
    return false;
}

static bool check_pattern(Elab *e, const char *fn, Param *p, Value *v, SrcLoc where)
{
    const TypeAnn *t = p->type;
    Node *n = el_nd(e, *v);
    int rank = n->shape.rank;
    if (t->kind == T_TOKENS && n->dtype != DT_I32) {
        el_error(e, where, "argument '%s' of '%s' must be token ids, got a float tensor", p->name, fn);
        return false;
    }
    if (t->kind == T_TENSOR && n->dtype != DT_F32) {
        el_error(e, where, "argument '%s' of '%s' must be a float tensor, got token ids (embed them first)", p->name, fn);
        return false;
    }
    if (t->kind == T_TOKENS && t->vocab && v->tokens_vocab && strcmp(t->vocab, v->tokens_vocab->name)) {
        el_error(e, where, "argument '%s' of '%s' must be tokens of vocabulary '%s', got tokens of '%s'",
                 p->name, fn, t->vocab, v->tokens_vocab->name);
        return false;
    }
    if (t->ellipsis ? rank < t->ndims : rank != t->ndims) {
        el_error(e, where, "shape mismatch: argument '%s' of '%s' has shape %s, but its pattern %s needs rank %s%d",
                 p->name, fn, shape_str(e->a, e->m, &n->shape), pattern_str(e, t),
                 t->ellipsis ? "at least " : "", t->ndims);
        el_note_origin(e, "the argument", v->node);
        return false;
    }
    for (int k = 0; k < t->ndims; k++) {
        Dim actual = el_nd(e, *v)->shape.d[rank - t->ndims + k];
        if (!match_dim(e, fn, p, t, k, actual, v, where))
            return false;
    }
    return true;
}

/* Check (and convert) an argument against its parameter's declared type. */
bool el_check_param(Elab *e, const char *fn, Param *p, Value *v, SrcLoc arg_loc)
{
    if (!p->type || p->type->kind == T_ANY)
        return true;
    const char *want = NULL;
    switch (p->type->kind) {
    case T_ANY: return true;
    case T_INT:
        if (v->k == V_INT) return true;
        want = "an integer";
        break;
    case T_FLOAT:
        if (v->k == V_INT) *v = v_float((double)v->i, v->loc);
        if (v->k == V_FLOAT) return true;
        want = "a number";
        break;
    case T_BOOL:
        if (v->k == V_BOOL) return true;
        want = "a boolean";
        break;
    case T_STR:
        if (v->k == V_STR) return true;
        want = "a string";
        break;
    case T_DIM:
        if (v->k == V_INT || v->k == V_DIM) return true;
        want = "a dimension";
        break;
    case T_TENSOR:
    case T_TOKENS:
        if (v->k == V_INT || v->k == V_FLOAT)
            *v = el_to_tensor(e, *v);
        if (v->k == V_TENSOR)
            return check_pattern(e, fn, p, v, arg_loc);
        want = p->type->kind == T_TOKENS ? "token ids" : "a tensor";
        break;
    }
    el_error(e, arg_loc, "argument '%s' of '%s' must be %s, got %s", p->name, fn, want, v_kind_name(v->k));
    return false;
}

/* --------------------------------------------------------------- params */

static ParamInit param_init(Elab *e, Stmt *s, int rank, bool *ok)
{
    *ok = true;
    if (!s->param.init)
        return rank >= 2 ? INIT_XAVIER : INIT_ZEROS;
    static const struct { const char *name; ParamInit init; } inits[] = {
        { "xavier", INIT_XAVIER }, { "zeros", INIT_ZEROS },
        { "ones", INIT_ONES }, { "normal", INIT_NORMAL },
    };
    for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++)
        if (!strcmp(s->param.init, inits[i].name))
            return inits[i].init;
    el_error(e, s->param.init_loc, "unknown initialiser '%s' (expected xavier, zeros, ones or normal)", s->param.init);
    *ok = false;
    return INIT_ZEROS;
}

/* `param w[i, o]`: a named weight of constant shape, and its node. */
static bool exec_param(Elab *e, Stmt *s)
{
    if (!el_need_graph(e, s->loc, "'param'"))
        return false;
    Shape sh = { .rank = s->param.ndims };
    if (sh.rank < 1 || sh.rank > MAX_RANK) {
        el_error(e, s->loc, "a weight needs 1 to %d dimensions, '%s' has %d", MAX_RANK, s->param.name, sh.rank);
        return false;
    }
    const char *name = arena_printf(e->a, "%s.%s", e->scope, s->param.name);
    int64_t numel = 1;
    for (int k = 0; k < sh.rank; k++) {
        Value v = el_eval(e, s->param.dims[k]);
        if (!el_value_dim(e, v, &sh.d[k], "a weight dimension"))
            return false;
        if (sh.d[k].sym >= 0) {
            el_error(e, s->param.dims[k]->loc, "weights have constant shapes, but '%s' is a symbolic dimension known only when the model runs",
                     e->m->syms[sh.d[k].sym].name);
            return false;
        }
        if (__builtin_mul_overflow(numel, sh.d[k].n, &numel) || numel > EL_MAX_NUMEL) {
            el_error(e, s->loc, "weight '%s' is too large (more than 2^34 elements)", name);
            return false;
        }
    }
    e->weight_elems += numel;
    if (e->weight_elems > EL_MAX_WEIGHTS) {
        if (e->weight_elems - numel <= EL_MAX_WEIGHTS)
            el_error(e, s->loc, "the model's weights pass 2^32 elements (16 GiB)");
        return false;
    }
    bool ok;
    ParamInit init = param_init(e, s, sh.rank, &ok);
    if (!ok)
        return false;
    Model *m = e->m;
    int first = strset_get(&e->weight_names, name);
    if (first >= 0) {
        el_error(e, s->loc, "weight '%s' is declared twice", name);
        diag_note(e->d, m->params[first].site, "first declared by this call; give one of the calls its own name with 'as NAME'");
        return false;
    }
    strset_put(e->a, &e->weight_names, name, m->nparams);
    if (m->nparams == m->cap_params) {
        int nc = m->cap_params ? m->cap_params * 2 : 64;
        m->params = arena_grow(e->a, m->params, sizeof(ParamInfo) * (size_t)m->cap_params,
                               sizeof(ParamInfo) * (size_t)nc);
        m->cap_params = nc;
    }
    /* the outermost call in the user's program, for the duplicate note */
    SrcLoc site = e->depth > 0 ? e->frames[0].call_loc : s->loc;
    m->params[m->nparams] = (ParamInfo){ name, sh, init, s->loc, site, false, false, false, false };
    Node n = { .op = OP_PARAM, .dtype = DT_F32, .shape = sh, .loc = s->loc };
    n.attr.param = m->nparams++;
    int id = el_node(e, n);
    if (id < 0)
        return false;
    env_set(e, e->env, s->param.name, v_tensor(id, s->loc), s->loc);
    return true;
}

/* ----------------------------------------------------------- statements */

static Flow exec(Elab *e, Stmt *s);

static bool as_bool(Elab *e, Expr *x, bool *out)
{
    Value v = el_eval(e, x);
    if (v.k == V_BOOL) {
        *out = v.b;
        return true;
    }
    if (v.k != V_ERR)
        el_error(e, x->loc, "a condition must be a compile-time boolean, got %s", v_kind_name(v.k));
    return false;
}

static bool as_int(Elab *e, Expr *x, int64_t *out, const char *what)
{
    Value v = el_eval(e, x);
    if (v.k == V_INT) {
        *out = v.i;
        return true;
    }
    if (v.k != V_ERR)
        el_error(e, x->loc, "%s must be a compile-time integer, got %s", what, v_kind_name(v.k));
    return false;
}

static Flow exec_for(Elab *e, Stmt *s)
{
    int64_t lo, hi;
    Flow f = { 0 };
    if (!as_int(e, s->loop.lo, &lo, "a loop bound") || !as_int(e, s->loop.hi, &hi, "a loop bound")) {
        f.failed = true;
        return f;
    }
    if (hi - lo > EL_MAX_LOOP) {
        el_error(e, s->loop.hi->loc, "the loop runs %lld times; the limit is %d", (long long)(hi - lo), EL_MAX_LOOP);
        f.failed = true;
        return f;
    }
    for (int64_t i = lo; i < hi; i++) {
        env_set(e, e->env, s->loop.var, v_int(i, s->loc), s->loc);
        f = el_exec_block(e, &s->loop.body);
        if (f.returned || f.failed)
            return f;
    }
    return f;
}

static Flow exec(Elab *e, Stmt *s)
{
    Flow f = { 0 };
    if (!el_budget(e, s->loc)) {
        f.failed = true;
        return f;
    }
    switch (s->kind) {
    case S_ASSIGN: {
        Value v = el_eval(e, s->assign.value);
        env_set(e, e->env, s->assign.name, v, s->loc);
        return f;   /* an error value poisons later uses silently */
    }
    case S_PARAM:
        f.failed = !exec_param(e, s);
        return f;
    case S_FOR:
        return exec_for(e, s);
    case S_IF: {
        bool c;
        if (!as_bool(e, s->cond.cond, &c)) {
            f.failed = true;
            return f;
        }
        return el_exec_block(e, c ? &s->cond.then : &s->cond.els);
    }
    case S_EXPR:
        f.failed = el_eval(e, s->ret.value).k == V_ERR;
        return f;
    case S_RETURN:
        f.returned = true;
        f.value = el_eval(e, s->ret.value);
        f.failed = f.value.k == V_ERR;
        return f;
    }
    return f;
}

Flow el_exec_block(Elab *e, const StmtList *body)
{
    Flow f = { 0 };
    for (int i = 0; i < body->n; i++) {
        f = exec(e, body->items[i]);
        if (f.returned || f.failed || diag_too_many(e->d))
            return f;
    }
    return f;
}
