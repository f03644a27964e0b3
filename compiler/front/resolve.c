/* resolve.c - name resolution (see resolve.h). */
#include "resolve.h"

#include <string.h>

#include "builtins.h"
#include "parse.h"

typedef struct Names { const char **s; int n, cap; } Names;

typedef struct Resolver {
    Arena *a;
    Diag *d;
    Decl **defs;
    int ndefs;
    Names globals;      /* file constants and the model's consts and vocabs */
    int *state;         /* per def, for the recursion search: 0 new, 1 open, 2 done */
} Resolver;

static void names_add(Arena *a, Names *n, const char *s)
{
    if (n->n == n->cap) {
        int nc = n->cap ? n->cap * 2 : 16;
        n->s = arena_grow(a, n->s, sizeof(char *) * (size_t)n->cap, sizeof(char *) * (size_t)nc);
        n->cap = nc;
    }
    n->s[n->n++] = s;
}

static bool names_has(const Names *n, const char *s)
{
    for (int i = 0; i < n->n; i++)
        if (!strcmp(n->s[i], s))
            return true;
    return false;
}

static int find_def(Resolver *r, const char *name)
{
    for (int i = 0; i < r->ndefs; i++)
        if (!strcmp(r->defs[i]->name, name))
            return i;
    return -1;
}

/* The closest function name, or NULL. */
static const char *suggest_fn(Resolver *r, const char *name)
{
    const char *best = NULL;
    int bestd = 3, nb;
    const Builtin *bt = builtin_table(&nb);
    for (int i = 0; i < r->ndefs + nb; i++) {
        const char *c = i < r->ndefs ? r->defs[i]->name : bt[i - r->ndefs].name;
        int dd = edit_distance(name, c);
        if (dd < bestd) {
            bestd = dd;
            best = c;
        }
    }
    return best;
}

/* The closest name of a value in scope (locals, then globals), or NULL. */
static const char *suggest_value(const Resolver *r, const Names *locals, const char *name)
{
    const char *best = NULL;
    int bestd = strlen(name) > 3 ? 3 : 2;
    const Names *scopes[] = { locals, &r->globals };
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < scopes[k]->n; i++) {
            int dd = edit_distance(name, scopes[k]->s[i]);
            if (dd < bestd) {
                bestd = dd;
                best = scopes[k]->s[i];
            }
        }
    return best;
}

/* ------------------------------------------------------- names in bodies */

static void collect_assigned(Resolver *r, const StmtList *b, Names *out)
{
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->items[i];
        switch (s->kind) {
        case S_ASSIGN: names_add(r->a, out, s->assign.name); break;
        case S_PARAM: names_add(r->a, out, s->param.name); break;
        case S_FOR:
            names_add(r->a, out, s->loop.var);
            collect_assigned(r, &s->loop.body, out);
            break;
        case S_IF:
            collect_assigned(r, &s->cond.then, out);
            collect_assigned(r, &s->cond.els, out);
            break;
        case S_RETURN: case S_EXPR: break;
        }
    }
}

static void check_expr(Resolver *r, const Names *locals, Expr *x);

static void check_call(Resolver *r, const Names *locals, Expr *x)
{
    if (find_def(r, x->call.fn) < 0 && !builtin_find(x->call.fn)) {
        const char *s = suggest_fn(r, x->call.fn);
        if (names_has(locals, x->call.fn) || names_has(&r->globals, x->call.fn))
            diag_error(r->d, x->loc, "'%s' is a value, not a function", x->call.fn);
        else if (s)
            diag_error(r->d, x->loc, "unknown function '%s'; did you mean '%s'?", x->call.fn, s);
        else
            diag_error(r->d, x->loc, "unknown function '%s'", x->call.fn);
    }
    for (int i = 0; i < x->call.nargs; i++)
        check_expr(r, locals, x->call.args[i].value);
    for (int i = 0; i < x->call.nas; i++)
        if (x->call.as[i].index)
            check_expr(r, locals, x->call.as[i].index);
}

static void check_expr(Resolver *r, const Names *locals, Expr *x)
{
    switch (x->kind) {
    case E_INT: case E_FLOAT: case E_STR: case E_BOOL: case E_NONE:
        return;
    case E_NAME:
        if (!names_has(locals, x->s) && !names_has(&r->globals, x->s)) {
            const char *s = suggest_value(r, locals, x->s);
            if (find_def(r, x->s) >= 0 || builtin_find(x->s))
                diag_error(r->d, x->loc, "'%s' is a function; call it with (...)", x->s);
            else if (!strcmp(x->s, "True") || !strcmp(x->s, "False"))   /* Python's spelling */
                diag_error(r->d, x->loc, "'%s' is not defined; the booleans are 'true' and 'false'", x->s);
            else if (!strcmp(x->s, "None"))
                diag_error(r->d, x->loc, "'None' is not defined; write 'none'");
            else if (s)
                diag_error(r->d, x->loc, "'%s' is not defined; did you mean '%s'?", x->s, s);
            else
                diag_error(r->d, x->loc, "'%s' is not defined", x->s);
        }
        return;
    case E_LIST:
        for (int i = 0; i < x->list.n; i++)
            check_expr(r, locals, x->list.items[i]);
        return;
    case E_CALL:
        check_call(r, locals, x);
        return;
    case E_BINARY:
        check_expr(r, locals, x->bin.l);
        check_expr(r, locals, x->bin.r);
        return;
    case E_UNARY:
        check_expr(r, locals, x->un.e);
        return;
    }
}

static void check_block(Resolver *r, const Names *locals, const StmtList *b)
{
    for (int i = 0; i < b->n && !diag_too_many(r->d); i++) {
        Stmt *s = b->items[i];
        switch (s->kind) {
        case S_ASSIGN: check_expr(r, locals, s->assign.value); break;
        case S_PARAM:
            for (int k = 0; k < s->param.ndims; k++)
                check_expr(r, locals, s->param.dims[k]);
            break;
        case S_FOR:
            check_expr(r, locals, s->loop.lo);
            check_expr(r, locals, s->loop.hi);
            check_block(r, locals, &s->loop.body);
            break;
        case S_IF:
            check_expr(r, locals, s->cond.cond);
            check_block(r, locals, &s->cond.then);
            check_block(r, locals, &s->cond.els);
            break;
        case S_RETURN: case S_EXPR: check_expr(r, locals, s->ret.value); break;
        }
    }
}

/* Parameters, the names their shape patterns bind, and assigned names. */
static void check_function(Resolver *r, Decl *fn)
{
    Names locals = { 0 };
    for (int i = 0; i < fn->fn.nparams; i++) {
        Param *p = &fn->fn.params[i];
        for (int k = 0; k < i; k++)
            if (!strcmp(fn->fn.params[k].name, p->name)) {
                diag_error(r->d, p->loc, "parameter '%s' is declared twice", p->name);
                diag_note(r->d, fn->fn.params[k].loc, "first declared here");
            }
        if (p->deflt)
            check_expr(r, &locals, p->deflt);
        names_add(r->a, &locals, p->name);
        for (int k = 0; p->type && k < p->type->ndims; k++) {
            Expr *dim = p->type->dims[k];
            if (dim->kind == E_NAME)
                names_add(r->a, &locals, dim->s);
            else
                check_expr(r, &locals, dim);
        }
    }
    collect_assigned(r, &fn->fn.body, &locals);
    check_block(r, &locals, &fn->fn.body);
}

/* ------------------------------------------------------------ recursion */

static bool calls_in_expr(Resolver *r, int from, Expr *x);

static bool visit(Resolver *r, int fn, Expr *site)
{
    if (r->state[fn] == 2)
        return false;
    if (r->state[fn] == 1) {
        diag_error(r->d, site->loc, "recursive call to '%s': functions are inlined, so they cannot call themselves",
                   r->defs[fn]->name);
        diag_note(r->d, r->defs[fn]->name_loc, "'%s' is defined here", r->defs[fn]->name);
        return true;
    }
    r->state[fn] = 1;
    bool found = false;
    Decl *d = r->defs[fn];
    for (int i = 0; i < d->fn.nparams && !found; i++)
        if (d->fn.params[i].deflt)
            found = calls_in_expr(r, fn, d->fn.params[i].deflt);
    /* walk statements through a small explicit stack of blocks */
    const StmtList *stack[PARSE_MAX_DEPTH + 8];
    int sp = 0;
    stack[sp++] = &d->fn.body;
    while (sp && !found) {
        const StmtList *b = stack[--sp];
        for (int i = 0; i < b->n && !found; i++) {
            Stmt *s = b->items[i];
            switch (s->kind) {
            case S_ASSIGN: found = calls_in_expr(r, fn, s->assign.value); break;
            case S_RETURN: case S_EXPR: found = calls_in_expr(r, fn, s->ret.value); break;
            case S_PARAM: break;
            case S_FOR:
                found = calls_in_expr(r, fn, s->loop.lo) || calls_in_expr(r, fn, s->loop.hi);
                if (sp < PARSE_MAX_DEPTH + 8) stack[sp++] = &s->loop.body;
                break;
            case S_IF:
                found = calls_in_expr(r, fn, s->cond.cond);
                if (sp < PARSE_MAX_DEPTH + 7) {
                    stack[sp++] = &s->cond.then;
                    stack[sp++] = &s->cond.els;
                }
                break;
            }
        }
    }
    r->state[fn] = 2;
    return found;
}

static bool calls_in_expr(Resolver *r, int from, Expr *x)
{
    switch (x->kind) {
    case E_INT: case E_FLOAT: case E_STR: case E_BOOL: case E_NONE: case E_NAME:
        return false;
    case E_LIST:
        for (int i = 0; i < x->list.n; i++)
            if (calls_in_expr(r, from, x->list.items[i]))
                return true;
        return false;
    case E_CALL: {
        for (int i = 0; i < x->call.nargs; i++)
            if (calls_in_expr(r, from, x->call.args[i].value))
                return true;
        int callee = find_def(r, x->call.fn);
        return callee >= 0 && visit(r, callee, x);
    }
    case E_BINARY:
        return calls_in_expr(r, from, x->bin.l) || calls_in_expr(r, from, x->bin.r);
    case E_UNARY:
        return calls_in_expr(r, from, x->un.e);
    }
    return false;
}

/* ------------------------------------------------------------ top level */

static void check_model(Resolver *r, Decl *m)
{
    Decl *seen_entry[2] = { 0 };
    Names model_names = { 0 };
    for (int i = 0; i < m->model.items.n; i++) {
        Decl *d = m->model.items.items[i];
        if (d->kind == D_ENTRY) {
            if (seen_entry[d->entry]) {
                diag_error(r->d, d->loc, "model '%s' has two %ss", m->name, d->name);
                diag_note(r->d, seen_entry[d->entry]->loc, "the first is here");
            }
            seen_entry[d->entry] = d;
            continue;
        }
        if (names_has(&model_names, d->name) || names_has(&r->globals, d->name)) {
            diag_error(r->d, d->loc, "'%s' is defined twice", d->name);
            continue;
        }
        if (d->kind == D_CONST)
            check_expr(r, &model_names, d->konst.value);
        names_add(r->a, &model_names, d->name);
    }
    for (int i = 0; i < model_names.n; i++)
        names_add(r->a, &r->globals, model_names.s[i]);
    for (int i = 0; i < m->model.items.n; i++) {
        Decl *d = m->model.items.items[i];
        if (d->kind == D_ENTRY)
            check_function(r, d);
    }
}

int resolve_program(Arena *a, Diag *d, DeclList *decls, int main_file)
{
    int before = d->errors;
    Resolver r = { .a = a, .d = d };
    r.defs = arena_alloc(a, sizeof(Decl *) * (size_t)(decls->n + 1));
    Decl *model = NULL;
    for (int i = 0; i < decls->n; i++) {
        Decl *x = decls->items[i];
        if (x->kind == D_DEF) {
            int prev = find_def(&r, x->name);
            if (prev >= 0) {
                diag_error(d, x->name_loc, "function '%s' is defined twice", x->name);
                diag_note(d, r.defs[prev]->name_loc, "the first definition is here");
            } else if (builtin_find(x->name)) {
                diag_error(d, x->name_loc, "'%s' is a built-in function; choose another name", x->name);
            } else {
                r.defs[r.ndefs++] = x;
            }
        } else if (x->kind == D_CONST) {
            if (names_has(&r.globals, x->name))
                diag_error(d, x->loc, "constant '%s' is defined twice", x->name);
            check_expr(&r, &(Names){ 0 }, x->konst.value);
            names_add(a, &r.globals, x->name);
        } else if (x->kind == D_MODEL) {
            if (model) {
                diag_error(d, x->loc, "a file holds one model, but '%s' is a second one", x->name);
                diag_note(d, model->loc, "the first model, '%s', is here", model->name);
            } else {
                model = x;
            }
        }
    }
    if (!model && d->errors == before)
        diag_error(d, (SrcLoc){ main_file, 1, 1, 1 },   /* the user's file, not the library's */
                   "no model in the program: write `model NAME { ... }` with an encoder and a decoder");
    if (model)
        check_model(&r, model);
    for (int i = 0; i < r.ndefs; i++)
        check_function(&r, r.defs[i]);
    r.state = arena_alloc(a, sizeof(int) * (size_t)(r.ndefs + 1));
    for (int i = 0; i < r.ndefs && d->errors == before; i++)
        if (r.state[i] == 0 && visit(&r, i, &(Expr){ .loc = r.defs[i]->name_loc }))
            break;
    return d->errors - before;
}
