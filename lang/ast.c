/* ast.c - constructors for the syntax tree; the grammar's actions call them. */
#include "ast.h"

#include <string.h>

const char *ast_binop_text(BinOp op)
{
    switch (op) {
    case B_ADD: return "+";
    case B_SUB: return "-";
    case B_MUL: return "*";
    case B_DIV: return "/";
    case B_IDIV: return "//";
    case B_MOD: return "%";
    case B_MATMUL: return "@";
    case B_EQ: return "==";
    case B_NE: return "!=";
    case B_LT: return "<";
    case B_LE: return "<=";
    case B_GT: return ">";
    case B_GE: return ">=";
    case B_AND: return "and";
    case B_OR: return "or";
    }
    return "?";
}

static Expr *expr_new(Arena *a, ExprKind k, SrcLoc l)
{
    Expr *e = arena_alloc(a, sizeof *e);
    e->kind = k;
    e->loc = l;
    return e;
}

Expr *ast_int(Arena *a, SrcLoc l, int64_t v) { Expr *e = expr_new(a, E_INT, l); e->i = v; return e; }
Expr *ast_float(Arena *a, SrcLoc l, double v) { Expr *e = expr_new(a, E_FLOAT, l); e->f = v; return e; }
Expr *ast_str(Arena *a, SrcLoc l, const char *s) { Expr *e = expr_new(a, E_STR, l); e->s = s; return e; }
Expr *ast_bool(Arena *a, SrcLoc l, bool b) { Expr *e = expr_new(a, E_BOOL, l); e->b = b; return e; }
Expr *ast_none(Arena *a, SrcLoc l) { return expr_new(a, E_NONE, l); }
Expr *ast_name(Arena *a, SrcLoc l, const char *s) { Expr *e = expr_new(a, E_NAME, l); e->s = s; return e; }

Expr *ast_list(Arena *a, SrcLoc l, Expr **items, int n)
{
    Expr *e = expr_new(a, E_LIST, l);
    e->list.items = items;
    e->list.n = n;
    return e;
}

Expr *ast_call(Arena *a, SrcLoc l, const char *fn, Arg *args, int nargs)
{
    Expr *e = expr_new(a, E_CALL, l);
    e->call.fn = fn;
    e->call.args = args;
    e->call.nargs = nargs;
    return e;
}

Expr *ast_call_as(Expr *call, PathSeg *segs, int n)
{
    call->call.as = segs;
    call->call.nas = n;
    return call;
}

Expr *ast_binary(Arena *a, SrcLoc l, BinOp op, Expr *lhs, Expr *rhs)
{
    Expr *e = expr_new(a, E_BINARY, l);
    e->bin.op = op;
    e->bin.l = lhs;
    e->bin.r = rhs;
    return e;
}

Expr *ast_unary(Arena *a, SrcLoc l, UnOp op, Expr *x)
{
    Expr *e = expr_new(a, E_UNARY, l);
    e->un.op = op;
    e->un.e = x;
    return e;
}

static Stmt *stmt_new(Arena *a, StmtKind k, SrcLoc l)
{
    Stmt *s = arena_alloc(a, sizeof *s);
    s->kind = k;
    s->loc = l;
    return s;
}

Stmt *ast_assign(Arena *a, SrcLoc l, const char *name, Expr *value)
{
    Stmt *s = stmt_new(a, S_ASSIGN, l);
    s->assign.name = name;
    s->assign.name_loc = l;
    s->assign.value = value;
    return s;
}

Stmt *ast_param(Arena *a, SrcLoc l, const char *name, Expr **dims, int n,
                const char *init, SrcLoc init_loc)
{
    Stmt *s = stmt_new(a, S_PARAM, l);
    s->param.name = name;
    s->param.dims = dims;
    s->param.ndims = n;
    s->param.init = init;
    s->param.init_loc = init_loc;
    return s;
}

Stmt *ast_for(Arena *a, SrcLoc l, const char *var, Expr *lo, Expr *hi,
              StmtList body)
{
    Stmt *s = stmt_new(a, S_FOR, l);
    s->loop.var = var;
    s->loop.lo = lo;
    s->loop.hi = hi;
    s->loop.body = body;
    return s;
}

Stmt *ast_if(Arena *a, SrcLoc l, Expr *cond, StmtList then, StmtList els)
{
    Stmt *s = stmt_new(a, S_IF, l);
    s->cond.cond = cond;
    s->cond.then = then;
    s->cond.els = els;
    return s;
}

Stmt *ast_return(Arena *a, SrcLoc l, Expr *value)
{
    Stmt *s = stmt_new(a, S_RETURN, l);
    s->ret.value = value;
    return s;
}

/* A call evaluated for its effect, e.g. error("..."). */
Stmt *ast_expr_stmt(Arena *a, SrcLoc l, Expr *call)
{
    Stmt *s = stmt_new(a, S_EXPR, l);
    s->ret.value = call;
    return s;
}

static Decl *decl_new(Arena *a, DeclKind k, SrcLoc l, const char *name)
{
    Decl *d = arena_alloc(a, sizeof *d);
    d->kind = k;
    d->loc = l;
    d->name = name;
    d->name_loc = l;
    return d;
}

Decl *ast_def(Arena *a, SrcLoc l, const char *name, SrcLoc name_loc,
              Param *params, int n, StmtList body)
{
    Decl *d = decl_new(a, D_DEF, l, name);
    d->name_loc = name_loc;
    d->fn.params = params;
    d->fn.nparams = n;
    d->fn.body = body;
    return d;
}

Decl *ast_entry(Arena *a, SrcLoc l, EntryKind k, Param *params, int n,
                StmtList body)
{
    Decl *d = decl_new(a, D_ENTRY, l, k == ENTRY_ENCODER ? "encoder" : "decoder");
    d->entry = k;
    d->fn.params = params;
    d->fn.nparams = n;
    d->fn.body = body;
    return d;
}

Decl *ast_const(Arena *a, SrcLoc l, const char *name, Expr *value)
{
    Decl *d = decl_new(a, D_CONST, l, name);
    d->konst.value = value;
    return d;
}

Decl *ast_vocab(Arena *a, SrcLoc l, const char *name, Expr *list,
                const char *file, SrcLoc file_loc)
{
    Decl *d = decl_new(a, D_VOCAB, l, name);
    d->vocab.list = list;
    d->vocab.file = file;
    d->vocab.file_loc = file_loc;
    return d;
}

Decl *ast_model(Arena *a, SrcLoc l, const char *name, DeclList items)
{
    Decl *d = decl_new(a, D_MODEL, l, name);
    d->model.items = items;
    return d;
}

/* Append to a growable array of pointers kept in the arena. */
static void push_ptr(Arena *a, void ***items, int *n, int *cap, void *x)
{
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        *items = arena_grow(a, *items, sizeof(void *) * (size_t)*cap,
                            sizeof(void *) * (size_t)nc);
        *cap = nc;
    }
    (*items)[(*n)++] = x;
}

void ast_stmts_push(Arena *a, StmtList *l, Stmt *s)
{
    push_ptr(a, (void ***)&l->items, &l->n, &l->cap, s);
}

void ast_decls_push(Arena *a, DeclList *l, Decl *d)
{
    push_ptr(a, (void ***)&l->items, &l->n, &l->cap, d);
}

void ast_vec_push(Arena *a, AstVec *v, void *item)
{
    push_ptr(a, &v->items, &v->n, &v->cap, item);
}
