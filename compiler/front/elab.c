/* elab.c - elaboration: evaluate the program at compile time into graphs.
 *
 * Requires: declarations that passed resolve. Guarantees: see elab.h.
 *
 * The elaborator is an evaluator over the AST whose values are either
 * compile-time values (numbers, booleans, strings, dims, vocabularies, lists)
 * or tensors (nodes of the graph being built). Calling a `def` inlines it;
 * arithmetic on compile-time values folds; arithmetic on tensors adds nodes
 * whose shapes the rules in shape.c infer. Built-in functions map onto the
 * primitive ops of ops.h.
 */
#include "elab.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "elab_internal.h"
#include "resolve.h"
#include "shape.h"

/* ---------------------------------------------------------------- values */

Value v_err(void) { return (Value){ .k = V_ERR }; }
Value v_none(SrcLoc l) { return (Value){ .k = V_NONE, .loc = l }; }
Value v_int(int64_t i, SrcLoc l) { return (Value){ .k = V_INT, .i = i, .loc = l }; }
Value v_float(double f, SrcLoc l) { return (Value){ .k = V_FLOAT, .f = f, .loc = l }; }
Value v_bool(bool b, SrcLoc l) { return (Value){ .k = V_BOOL, .b = b, .loc = l }; }
Value v_tensor(int node, SrcLoc l) { return (Value){ .k = V_TENSOR, .node = node, .loc = l }; }

const char *v_kind_name(VKind k)
{
    switch (k) {
    case V_ERR: return "an error";
    case V_NONE: return "none";
    case V_INT: return "an integer";
    case V_FLOAT: return "a number";
    case V_BOOL: return "a boolean";
    case V_STR: return "a string";
    case V_DIM: return "a symbolic dimension";
    case V_TENSOR: return "a tensor";
    case V_VOCAB: return "a vocabulary";
    case V_LIST: return "a list";
    }
    return "?";
}

/* Is loc in the standard library (not the user's files)? */
static bool in_library(const Diag *d, SrcLoc loc)
{
    return loc.file >= 0 && loc.file < d->nfiles && d->files[loc.file].path &&
           !strncmp(d->files[loc.file].path, "<std>", 5);
}

/* Report an error at loc, then the inlining stack as notes. */
void el_error(Elab *e, SrcLoc loc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* a loop repeats its body's errors: say each one once */
    for (int i = 0; i < e->nrecent && i < EL_RECENT; i++)
        if (!memcmp(&e->recent[i], &loc, sizeof loc))
            return;
    e->recent[e->nrecent++ % EL_RECENT] = loc;
    /* An error inside the library was caused by the user's arguments: it
     * is reported at the user's call (the innermost call written in the
     * user's file), and the library's line becomes a note. */
    int user = -1;
    for (int i = e->depth - 1; in_library(e->d, loc) && i >= 0 && user < 0; i--)
        if (!in_library(e->d, e->frames[i].call_loc))
            user = i;
    if (user < 0) {
        diag_error(e->d, loc, "%s", msg);
        for (int i = e->depth - 1, shown = 0; i >= 0 && shown < 6; i--, shown++)
            diag_note(e->d, e->frames[i].call_loc, "in '%s', called from here", e->frames[i].fn);
        return;
    }
    diag_error(e->d, e->frames[user].call_loc, "%s", msg);
    diag_note(e->d, loc, "raised here, in the library's '%s'", e->frames[e->depth - 1].fn);
    int shown = 0;
    for (int i = e->depth - 1; i > user && shown < 6; i--, shown++)   /* the library's own calls */
        diag_note(e->d, e->frames[i].call_loc, "in '%s', called from here", e->frames[i].fn);
    for (int i = user - 1; i >= 0 && shown < 6; i--, shown++)         /* and the user's, outside that call */
        diag_note(e->d, e->frames[i].call_loc, "in '%s', called from here", e->frames[i].fn);
}

/* Where a tensor came from, for notes. */
void el_note_origin(Elab *e, const char *what, int node)
{
    const Node *n = &e->g->nodes[node];
    diag_note(e->d, n->site, "%s %s comes from here", what,
              shape_str(e->a, e->m, &n->shape));
}

bool el_budget(Elab *e, SrcLoc loc)
{
    if (e->out_of_nodes)
        return false;
    if (++e->steps <= EL_MAX_STEPS)
        return true;
    if (!e->out_of_budget)
        el_error(e, loc, "the program takes too long to elaborate (more than %d steps): is a loop bound too large?", EL_MAX_STEPS);
    e->out_of_budget = true;
    return false;
}

/* ------------------------------------------------------------ environment */

static Binding *env_find(Env *env, const char *name)
{
    for (int i = env->n - 1; i >= 0; i--)
        if (!strcmp(env->b[i].name, name))
            return &env->b[i];
    return NULL;
}

void env_set(Elab *e, Env *env, const char *name, Value v, SrcLoc loc)
{
    Binding *b = env_find(env, name);
    if (b) {
        b->v = v;
        return;
    }
    if (env->n == env->cap) {
        int nc = env->cap ? env->cap * 2 : 16;
        env->b = arena_grow(e->a, env->b, sizeof(Binding) * (size_t)env->cap,
                            sizeof(Binding) * (size_t)nc);
        env->cap = nc;
    }
    env->b[env->n++] = (Binding){ name, v, loc };
}

Binding *el_lookup_local(Elab *e, const char *name)
{
    return e->env ? env_find(e->env, name) : NULL;
}

/* Look a name up: locals, then the model's constants, then the file's. */
Binding *el_lookup(Elab *e, const char *name)
{
    Binding *b = e->env ? env_find(e->env, name) : NULL;
    if (!b)
        b = env_find(&e->model_env, name);
    if (!b)
        b = env_find(&e->globals, name);
    return b;
}

/* ---------------------------------------------------------------- nodes */

/* Multiply without overflow; false if the product passes `limit`. */
static bool mul_ok(int64_t a, int64_t b, int64_t limit, int64_t *out)
{
    if (a != 0 && b > limit / a)
        return false;
    *out = a * b;
    return true;
}

/* Add a node after checking that its constant size stays sane. */
int el_node(Elab *e, Node n)
{
    if (e->g->n >= EL_MAX_NODES) {
        if (!e->out_of_nodes)
            el_error(e, n.loc, "the graph has more than %d nodes: is a loop bound too large?", EL_MAX_NODES);
        e->out_of_nodes = true;
        return -1;
    }
    int64_t numel = 1;
    for (int i = 0; i < n.shape.rank; i++)
        if (n.shape.d[i].sym < 0 && !mul_ok(numel, n.shape.d[i].n, EL_MAX_NUMEL, &numel)) {
            el_error(e, n.loc, "tensor of shape %s is too large (more than 2^34 elements per batch row)",
                     shape_str(e->a, e->m, &n.shape));
            return -1;
        }
    n.site = e->depth > 0 ? e->frames[0].call_loc : n.loc;
    return graph_add(e->a, e->g, n);
}

Node *el_nd(Elab *e, Value v) { return &e->g->nodes[v.node]; }

/* A tensor made of one constant broadcast to rank 0. */
int el_const_node(Elab *e, double value, SrcLoc loc)
{
    Node n = { .op = OP_CONST, .dtype = DT_F32, .loc = loc };
    n.attr.value = value;
    return el_node(e, n);
}

/* Turn a number into a tensor when the other operand is one. */
Value el_to_tensor(Elab *e, Value v)
{
    if (v.k == V_INT || v.k == V_FLOAT || v.k == V_BOOL) {
        double x = v.k == V_INT ? (double)v.i : v.k == V_FLOAT ? v.f : v.b;
        int id = el_const_node(e, x, v.loc);
        return id < 0 ? v_err() : v_tensor(id, v.loc);
    }
    return v;
}

bool el_need_graph(Elab *e, SrcLoc loc, const char *what)
{
    if (e->g)
        return true;
    el_error(e, loc, "%s needs tensors, which exist only inside an encoder, a decoder or a function they call", what);
    return false;
}

/* How the user wrote an op: '+' rather than 'add'. */
static const char *op_spelling(Op op)
{
    return op_info[op].oper ? op_info[op].oper : op_info[op].text;
}

/* Elementwise binary op with broadcasting; loc is the operator's place. */
Value el_binary_node(Elab *e, Op op, Value a, Value b, SrcLoc loc)
{
    if (!el_need_graph(e, loc, "this operation"))
        return v_err();
    a = el_to_tensor(e, a);
    b = el_to_tensor(e, b);
    if (a.k != V_TENSOR || b.k != V_TENSOR)
        return v_err();
    Node *na = el_nd(e, a), *nb = el_nd(e, b);
    if (na->dtype != DT_F32 || nb->dtype != DT_F32) {
        el_error(e, loc, "'%s' needs float tensors, but an operand holds token ids (embed them first)", op_spelling(op));
        return v_err();
    }
    Node n = { .op = op, .in = { a.node, b.node }, .dtype = DT_F32, .loc = loc };
    int bad;
    if (!shape_broadcast(&na->shape, &nb->shape, &n.shape, &bad)) {
        el_error(e, loc, "shapes %s and %s do not broadcast for '%s' (axis %d differs)",
                 shape_str(e->a, e->m, &na->shape), shape_str(e->a, e->m, &nb->shape),
                 op_spelling(op), bad);
        el_note_origin(e, "the left operand", a.node);
        el_note_origin(e, "the right operand", b.node);
        return v_err();
    }
    int id = el_node(e, n);
    return id < 0 ? v_err() : v_tensor(id, loc);
}

Value el_unary_node(Elab *e, Op op, Value a, SrcLoc loc)
{
    if (!el_need_graph(e, loc, "this operation"))
        return v_err();
    a = el_to_tensor(e, a);
    if (a.k != V_TENSOR)
        return v_err();
    Node *na = el_nd(e, a);
    if (na->dtype != DT_F32) {
        el_error(e, loc, "'%s' needs a float tensor, but this one holds token ids", op_spelling(op));
        return v_err();
    }
    Node n = { .op = op, .in = { a.node }, .dtype = DT_F32, .shape = na->shape, .loc = loc };
    int id = el_node(e, n);
    return id < 0 ? v_err() : v_tensor(id, loc);
}

Value el_matmul(Elab *e, Value a, Value b, SrcLoc loc)
{
    if (!el_need_graph(e, loc, "'@'"))
        return v_err();
    if (a.k != V_TENSOR || b.k != V_TENSOR) {
        el_error(e, loc, "'@' multiplies two tensors, not %s and %s",
                 v_kind_name(a.k), v_kind_name(b.k));
        return v_err();
    }
    Node *na = el_nd(e, a), *nb = el_nd(e, b);
    Node n = { .op = OP_MATMUL, .in = { a.node, b.node }, .dtype = DT_F32, .loc = loc };
    int why;
    if (na->dtype != DT_F32 || nb->dtype != DT_F32) {
        el_error(e, loc, "'@' needs float tensors, but an operand holds token ids");
        return v_err();
    }
    if (!shape_matmul(&na->shape, &nb->shape, &n.shape, &why)) {
        const char *sa = shape_str(e->a, e->m, &na->shape), *sb = shape_str(e->a, e->m, &nb->shape);
        if (why == 1)
            el_error(e, loc, "'@' needs tensors of rank 2 or more, got %s and %s", sa, sb);
        else if (why == 2)
            el_error(e, loc, "shape mismatch in '@': %s @ %s (the inner dimensions differ)", sa, sb);
        else
            el_error(e, loc, "shape mismatch in '@': the batch dimensions of %s and %s do not broadcast", sa, sb);
        el_note_origin(e, "the left operand", a.node);
        el_note_origin(e, "the right operand", b.node);
        return v_err();
    }
    int id = el_node(e, n);
    return id < 0 ? v_err() : v_tensor(id, loc);
}

/* ----------------------------------------------------------- arithmetic */

static bool is_num(Value v) { return v.k == V_INT || v.k == V_FLOAT; }
static double num(Value v) { return v.k == V_INT ? (double)v.i : v.f; }

/* Fold an operator on two integers, checking overflow and division by 0. */
static Value fold_int(Elab *e, BinOp op, int64_t a, int64_t b, SrcLoc loc)
{
    int64_t r = 0;
    switch (op) {
    case B_ADD: if (__builtin_add_overflow(a, b, &r)) goto overflow; return v_int(r, loc);
    case B_SUB: if (__builtin_sub_overflow(a, b, &r)) goto overflow; return v_int(r, loc);
    case B_MUL: if (__builtin_mul_overflow(a, b, &r)) goto overflow; return v_int(r, loc);
    case B_DIV:
        if (b == 0) goto divzero;
        return v_float((double)a / (double)b, loc);
    case B_IDIV:
    case B_MOD:
        if (b == 0) goto divzero;
        if (a == INT64_MIN && b == -1) goto overflow;
        r = op == B_IDIV ? a / b : a % b;
        /* floor semantics, as in Python */
        if (r != 0 && op == B_MOD && ((r < 0) != (b < 0)))
            r += b;
        if (op == B_IDIV && (a % b != 0) && ((a < 0) != (b < 0)))
            r -= 1;
        return v_int(r, loc);
    case B_EQ: return v_bool(a == b, loc);
    case B_NE: return v_bool(a != b, loc);
    case B_LT: return v_bool(a < b, loc);
    case B_LE: return v_bool(a <= b, loc);
    case B_GT: return v_bool(a > b, loc);
    case B_GE: return v_bool(a >= b, loc);
    case B_MATMUL: case B_AND: case B_OR: break;
    }
    el_error(e, loc, "'%s' is not defined on integers", ast_binop_text(op));
    return v_err();
overflow:
    el_error(e, loc, "integer overflow in %lld %s %lld", (long long)a, ast_binop_text(op), (long long)b);
    return v_err();
divzero:
    el_error(e, loc, "division by zero");
    return v_err();
}

static Value fold_float(Elab *e, BinOp op, double a, double b, SrcLoc loc)
{
    switch (op) {
    case B_ADD: return v_float(a + b, loc);
    case B_SUB: return v_float(a - b, loc);
    case B_MUL: return v_float(a * b, loc);
    case B_DIV:
        if (b == 0) break;
        return v_float(a / b, loc);
    case B_IDIV:
        if (b == 0) break;
        return v_float(floor(a / b), loc);
    case B_MOD:
        if (b == 0) break;
        return v_float(a - b * floor(a / b), loc);
    case B_EQ: return v_bool(a == b, loc);
    case B_NE: return v_bool(a != b, loc);
    case B_LT: return v_bool(a < b, loc);
    case B_LE: return v_bool(a <= b, loc);
    case B_GT: return v_bool(a > b, loc);
    case B_GE: return v_bool(a >= b, loc);
    case B_MATMUL: case B_AND: case B_OR:
        el_error(e, loc, "'%s' is not defined on numbers", ast_binop_text(op));
        return v_err();
    }
    el_error(e, loc, "division by zero");
    return v_err();
}

static bool equal_values(Value a, Value b, bool *known)
{
    *known = true;
    if (a.k == V_NONE || b.k == V_NONE)
        return a.k == b.k;
    if (is_num(a) && is_num(b))
        return num(a) == num(b);
    if (a.k == V_BOOL && b.k == V_BOOL)
        return a.b == b.b;
    if (a.k == V_STR && b.k == V_STR)
        return !strcmp(a.s, b.s);
    if ((a.k == V_DIM || a.k == V_INT) && (b.k == V_DIM || b.k == V_INT))
        return a.k == b.k && a.i == b.i;
    *known = false;
    return false;
}

static Value binary(Elab *e, BinOp op, Value a, Value b, SrcLoc loc)
{
    if (a.k == V_ERR || b.k == V_ERR)
        return v_err();
    if (op == B_AND || op == B_OR) {
        if (a.k != V_BOOL || b.k != V_BOOL) {
            el_error(e, loc, "'%s' needs booleans, got %s and %s", ast_binop_text(op),
                     v_kind_name(a.k), v_kind_name(b.k));
            return v_err();
        }
        return v_bool(op == B_AND ? a.b && b.b : a.b || b.b, loc);
    }
    if (op == B_EQ || op == B_NE) {
        bool known, eq = equal_values(a, b, &known);
        if (known)
            return v_bool(op == B_EQ ? eq : !eq, loc);
        if (a.k == V_TENSOR || b.k == V_TENSOR) {
            el_error(e, loc, "'%s' compares compile-time values, not tensors", ast_binop_text(op));
            return v_err();
        }
        return v_bool(op == B_NE, loc);
    }
    if (op == B_MATMUL)
        return el_matmul(e, a, b, loc);
    if (a.k == V_TENSOR || b.k == V_TENSOR) {
        static const Op ops[] = { [B_ADD] = OP_ADD, [B_SUB] = OP_SUB,
                                  [B_MUL] = OP_MUL, [B_DIV] = OP_DIV };
        Value other = a.k == V_TENSOR ? b : a;
        if (op > B_DIV || !(other.k == V_TENSOR || is_num(other))) {
            el_error(e, loc, "'%s' is not defined on %s and %s", ast_binop_text(op),
                     v_kind_name(a.k), v_kind_name(b.k));
            return v_err();
        }
        return el_binary_node(e, ops[op], a, b, loc);
    }
    if (a.k == V_INT && b.k == V_INT)
        return fold_int(e, op, a.i, b.i, loc);
    if (is_num(a) && is_num(b))
        return fold_float(e, op, num(a), num(b), loc);
    if (a.k == V_DIM || b.k == V_DIM)
        el_error(e, loc, "arithmetic on the symbolic dimension '%s' is not supported (its value is known only when the model runs)",
                 e->m->syms[a.k == V_DIM ? a.i : b.i].name);
    else
        el_error(e, loc, "'%s' is not defined on %s and %s", ast_binop_text(op),
                 v_kind_name(a.k), v_kind_name(b.k));
    return v_err();
}

/* ----------------------------------------------------------- expressions */

static Value eval_call(Elab *e, Expr *x);

Value el_eval(Elab *e, Expr *x)
{
    if (!el_budget(e, x->loc))
        return v_err();
    switch (x->kind) {
    case E_INT: return v_int(x->i, x->loc);
    case E_FLOAT: return v_float(x->f, x->loc);
    case E_STR: return (Value){ .k = V_STR, .s = x->s, .loc = x->loc };
    case E_BOOL: return v_bool(x->b, x->loc);
    case E_NONE: return v_none(x->loc);
    case E_NAME: {
        Binding *b = el_lookup(e, x->s);
        if (!b) {
            el_error(e, x->loc, "'%s' is not defined here", x->s);
            return v_err();
        }
        Value v = b->v;
        if (v.k != V_TENSOR)
            v.loc = x->loc;
        return v;
    }
    case E_LIST: {
        Value v = { .k = V_LIST, .loc = x->loc };
        v.list.items = arena_alloc(e->a, sizeof(Value) * (size_t)(x->list.n ? x->list.n : 1));
        v.list.n = x->list.n;
        for (int i = 0; i < x->list.n; i++) {
            v.list.items[i] = el_eval(e, x->list.items[i]);
            if (v.list.items[i].k == V_ERR)
                return v_err();
        }
        return v;
    }
    case E_CALL: return eval_call(e, x);
    case E_BINARY: {
        Value a = el_eval(e, x->bin.l);
        /* `and` and `or` short-circuit: `heads > 0 and d % heads == 0`
         * must not divide by zero when heads is 0 */
        if ((x->bin.op == B_AND || x->bin.op == B_OR) && a.k == V_BOOL && a.b == (x->bin.op == B_OR))
            return v_bool(a.b, x->loc);
        Value b = el_eval(e, x->bin.r);
        return binary(e, x->bin.op, a, b, x->loc);
    }
    case E_UNARY: {
        Value a = el_eval(e, x->un.e);
        if (a.k == V_ERR)
            return a;
        if (x->un.op == U_NOT) {
            if (a.k == V_BOOL)
                return v_bool(!a.b, x->loc);
            el_error(e, x->loc, "'not' needs a boolean, got %s", v_kind_name(a.k));
            return v_err();
        }
        if (a.k == V_INT) {
            if (a.i == INT64_MIN) {
                el_error(e, x->loc, "integer overflow");
                return v_err();
            }
            return v_int(-a.i, x->loc);
        }
        if (a.k == V_FLOAT)
            return v_float(-a.f, x->loc);
        if (a.k == V_TENSOR)
            return el_unary_node(e, OP_NEG, a, x->loc);
        el_error(e, x->loc, "'-' is not defined on %s", v_kind_name(a.k));
        return v_err();
    }
    }
    return v_err();
}

/* -------------------------------------------------------------- calls */

static Decl *find_def(Elab *e, const char *name)
{
    for (int i = 0; i < e->ndefs; i++)
        if (!strcmp(e->defs[i]->name, name))
            return e->defs[i];
    return NULL;
}

/* Does the function declare weights itself (not through its callees)? */
static bool declares_params(const StmtList *body)
{
    for (int i = 0; i < body->n; i++) {
        const Stmt *s = body->items[i];
        if (s->kind == S_PARAM)
            return true;
        if (s->kind == S_FOR && declares_params(&s->loop.body))
            return true;
        if (s->kind == S_IF && (declares_params(&s->cond.then) || declares_params(&s->cond.els)))
            return true;
    }
    return false;
}

/* The weight scope of a call: `as` path, else the function's name if it
 * declares weights itself, else unchanged. */
static const char *call_scope(Elab *e, Expr *x, Decl *fn, bool *ok)
{
    *ok = true;
    if (x->call.nas == 0)
        return declares_params(&fn->fn.body) ? arena_printf(e->a, "%s.%s", e->scope, fn->name) : e->scope;
    const char *s = e->scope;
    for (int i = 0; i < x->call.nas; i++) {
        PathSeg *p = &x->call.as[i];
        if (p->name) {
            s = arena_printf(e->a, "%s.%s", s, p->name);
            continue;
        }
        Value v = el_eval(e, p->index);
        if (v.k != V_INT) {
            if (v.k != V_ERR)
                el_error(e, p->loc, "an index in an 'as' name must be an integer, got %s", v_kind_name(v.k));
            *ok = false;
            return s;
        }
        if (v.i < 0) {
            el_error(e, p->loc, "an index in an 'as' name must not be negative, got %lld", (long long)v.i);
            *ok = false;
            return s;
        }
        s = arena_printf(e->a, "%s.%lld", s, (long long)v.i);
    }
    return s;
}

/* Evaluate the arguments of a call in the caller's environment. */
static bool eval_args(Elab *e, Expr *x, Value *vals)
{
    bool ok = true;
    for (int i = 0; i < x->call.nargs; i++) {
        vals[i] = el_eval(e, x->call.args[i].value);
        ok &= vals[i].k != V_ERR;
    }
    return ok;
}

/* Match call arguments to the function's parameters by position and name;
 * a name that is no parameter gets the closest one, an argument given
 * twice the place it was first given. */
static bool bind_args(Elab *e, Expr *x, Decl *fn, Value *vals, Value *bound, bool *given, SrcLoc *locs)
{
    int np = fn->fn.nparams;
    bool ok = true, seen_kw = false;
    for (int i = 0; i < x->call.nargs; i++) {
        Arg *a = &x->call.args[i];
        int slot = -1;
        if (!a->name) {
            if (seen_kw) {
                el_error(e, a->loc, "a positional argument cannot follow keyword arguments");
                ok = false;
                continue;
            }
            slot = i;
            if (slot >= np) {
                el_error(e, a->loc, "too many arguments to '%s' (it takes %d)", fn->name, np);
                diag_note(e->d, fn->name_loc, "'%s' is defined here", fn->name);
                return false;
            }
        } else {
            seen_kw = true;
            for (int k = 0; k < np; k++)
                if (!strcmp(fn->fn.params[k].name, a->name))
                    slot = k;
            if (slot < 0) {
                const char *near = NULL;
                for (int k = 0, best = 3; k < np; k++) {
                    int dd = edit_distance(a->name, fn->fn.params[k].name);
                    if (dd < best)
                        best = dd, near = fn->fn.params[k].name;
                }
                if (near)
                    el_error(e, a->loc, "'%s' has no parameter named '%s'; did you mean '%s'?", fn->name, a->name, near);
                else
                    el_error(e, a->loc, "'%s' has no parameter named '%s'", fn->name, a->name);
                diag_note(e->d, fn->name_loc, "'%s' is defined here", fn->name);
                ok = false;
                continue;
            }
        }
        if (given[slot]) {
            el_error(e, a->loc, "argument '%s' of '%s' is given twice", fn->fn.params[slot].name, fn->name);
            if (a->name && slot < i && !x->call.args[slot].name) {   /* the first time, it was by position */
                const char *list = "";
                for (int k = 0; k < np; k++)
                    list = arena_printf(e->a, "%s%s%s", list, k ? ", " : "", fn->fn.params[k].name);
                diag_note(e->d, locs[slot], "argument %d, given without a name, is '%s' already ('%s' takes %s)",
                          slot + 1, fn->fn.params[slot].name, fn->name, list);
            }
            ok = false;
            continue;
        }
        given[slot] = true;
        bound[slot] = vals[i];
        locs[slot] = a->value->loc;
    }
    return ok;
}

/* `def f(x: [..., k], k: int)`: a parameter named like a dim bound by an
 * earlier pattern must agree with it. */
static bool agrees_with_pattern(Elab *e, Env *env, Param *p, Value v, SrcLoc where)
{
    Binding *b = env_find(env, p->name);
    if (!b || (b->v.k != V_INT && b->v.k != V_DIM))
        return true;
    if ((v.k == V_INT || v.k == V_DIM) && v.k == b->v.k && v.i == b->v.i)
        return true;
    el_error(e, where, "argument '%s' disagrees with the dimension '%s' that an earlier argument's shape fixed", p->name, p->name);
    diag_note(e->d, b->loc, "'%s' is bound here", p->name);
    return false;
}

/* Enter a function body: fresh environment, frame, weight scope. */
Value el_inline(Elab *e, Decl *fn, Value *bound, bool *given, const SrcLoc *locs, SrcLoc call_loc, const char *scope)
{
    if (e->depth >= EL_MAX_DEPTH) {
        el_error(e, call_loc, "calls are nested too deeply (more than %d)", EL_MAX_DEPTH);
        return v_err();
    }
    Env env = { 0 }, *saved_env = e->env;
    const char *saved_scope = e->scope;
    e->frames[e->depth++] = (Frame){ fn->name, call_loc };
    e->env = &env;
    e->scope = scope;
    bool ok = true;
    for (int k = 0; k < fn->fn.nparams && ok; k++) {
        Param *p = &fn->fn.params[k];
        Value v;
        if (given[k]) {
            v = bound[k];
        } else if (p->deflt) {
            v = el_eval(e, p->deflt);
        } else {
            e->depth--;
            el_error(e, call_loc, "missing argument '%s' in the call to '%s'", p->name, fn->name);
            e->depth++;
            diag_note(e->d, p->loc, "'%s' is declared here", p->name);
            ok = false;
            break;
        }
        SrcLoc where = given[k] ? locs[k] : p->loc;
        ok = v.k != V_ERR && el_check_param(e, fn->name, p, &v, where) && agrees_with_pattern(e, &env, p, v, where);
        env_set(e, &env, p->name, v, p->loc);
    }
    Value result = v_none(call_loc);
    if (ok) {
        Flow f = el_exec_block(e, &fn->fn.body);
        if (f.returned)
            result = f.value;
        else if (f.failed)
            result = v_err();
    } else {
        result = v_err();
    }
    e->env = saved_env;
    e->scope = saved_scope;
    e->depth--;
    return result;
}

static Value eval_call(Elab *e, Expr *x)
{
    Value *vals = arena_alloc(e->a, sizeof(Value) * (size_t)(x->call.nargs + 1));
    if (!eval_args(e, x, vals))
        return v_err();
    Decl *fn = find_def(e, x->call.fn);
    if (!fn) {
        const Builtin *b = builtin_find(x->call.fn);
        if (!b) {
            el_error(e, x->loc, "unknown function '%s'", x->call.fn);
            return v_err();
        }
        if (x->call.nas) {
            el_error(e, x->call.as[0].loc, "'as' names the weights of a call, but the built-in '%s' has none", b->name);
            return v_err();
        }
        return builtin_call(e, b, x, vals);
    }
    int np = fn->fn.nparams;
    Value *bound = arena_alloc(e->a, sizeof(Value) * (size_t)(np + 1));
    bool *given = arena_alloc(e->a, sizeof(bool) * (size_t)(np + 1));
    SrcLoc *locs = arena_alloc(e->a, sizeof(SrcLoc) * (size_t)(np + 1));
    if (!bind_args(e, x, fn, vals, bound, given, locs))
        return v_err();
    bool ok;
    const char *scope = call_scope(e, x, fn, &ok);
    if (!ok)
        return v_err();
    return el_inline(e, fn, bound, given, locs, x->loc, scope);
}
