/* ast.h - the syntax tree of the Vamos language.
 *
 * The parser builds it (one-line actions calling ast_* constructors); sema
 * and the elaborator read it. All nodes live in the compile's arena: nothing
 * here is freed node by node.
 */
#ifndef VAMOS_LANG_AST_H
#define VAMOS_LANG_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"

/* A source range: file id (index into the diagnostics' file table), first
 * line and column (1-based), and the last column on the first line. */
typedef struct SrcLoc {
    int file;
    int line, col;
    int end_col;
} SrcLoc;

typedef struct Expr Expr;
typedef struct Stmt Stmt;

typedef enum ExprKind {
    E_INT, E_FLOAT, E_STR, E_BOOL, E_NONE, E_NAME, E_LIST,
    E_CALL, E_BINARY, E_UNARY
} ExprKind;

/* Binary and unary operators; the names are for messages. */
typedef enum BinOp {
    B_ADD, B_SUB, B_MUL, B_DIV, B_IDIV, B_MOD, B_MATMUL,
    B_EQ, B_NE, B_LT, B_LE, B_GT, B_GE, B_AND, B_OR
} BinOp;
typedef enum UnOp { U_NEG, U_NOT } UnOp;

const char *ast_binop_text(BinOp op);

/* One call argument: positional (name == NULL) or keyword. */
typedef struct Arg {
    const char *name;
    Expr *value;
    SrcLoc loc;
} Arg;

/* One segment of an `as` path: a name (`layers`) or an index (`[i]`). */
typedef struct PathSeg {
    const char *name;
    Expr *index;
    SrcLoc loc;
} PathSeg;

typedef struct Expr {
    ExprKind kind;
    SrcLoc loc;
    int depth;          /* of operator chains, bounded by the parser */
    union {
        int64_t i;
        double f;
        const char *s;     /* E_STR, E_NAME */
        bool b;
        struct { Expr **items; int n; } list;
        struct {
            const char *fn;
            Arg *args;
            int nargs;
            PathSeg *as;   /* NULL if no `as` */
            int nas;
        } call;
        struct { BinOp op; Expr *l, *r; } bin;
        struct { UnOp op; Expr *e; } un;
    };
} Expr;

/* A parameter's declared type. Tensor patterns bind or check their dims. */
typedef enum TypeKind {
    T_ANY, T_INT, T_FLOAT, T_BOOL, T_STR, T_DIM, T_TENSOR, T_TOKENS
} TypeKind;

typedef struct TypeAnn {
    TypeKind kind;
    const char *vocab;  /* T_TOKENS: tokens<vocab>, may be NULL */
    bool ellipsis;      /* pattern starts with `...` */
    Expr **dims;        /* T_TENSOR / T_TOKENS pattern */
    int ndims;
    SrcLoc loc;
} TypeAnn;

typedef struct Param {
    const char *name;
    TypeAnn *type;      /* NULL: any */
    Expr *deflt;        /* NULL: required */
    SrcLoc loc;
} Param;

typedef struct StmtList { Stmt **items; int n, cap; } StmtList;

typedef enum StmtKind { S_ASSIGN, S_PARAM, S_FOR, S_IF, S_RETURN, S_EXPR } StmtKind;

typedef struct Stmt {
    StmtKind kind;
    SrcLoc loc;
    union {
        struct { const char *name; SrcLoc name_loc; Expr *value; } assign;
        struct { const char *name; Expr **dims; int ndims; const char *init;
                 SrcLoc init_loc; } param;
        struct { const char *var; Expr *lo, *hi; StmtList body; } loop;
        struct { Expr *cond; StmtList then, els; } cond;
        struct { Expr *value; } ret;    /* S_RETURN, S_EXPR */
    };
} Stmt;

typedef enum DeclKind { D_DEF, D_CONST, D_VOCAB, D_MODEL, D_ENTRY } DeclKind;
typedef enum EntryKind { ENTRY_ENCODER, ENTRY_DECODER } EntryKind;

typedef struct Decl Decl;
typedef struct DeclList { Decl **items; int n, cap; } DeclList;

typedef struct Decl {
    DeclKind kind;
    SrcLoc loc;
    const char *name;       /* D_ENTRY: "encoder" / "decoder" */
    SrcLoc name_loc;
    union {
        struct { Param *params; int nparams; StmtList body; } fn; /* D_DEF, D_ENTRY */
        struct { Expr *value; } konst;
        struct { Expr *list; const char *file; SrcLoc file_loc; } vocab;
        struct { DeclList items; } model;
    };
    EntryKind entry;
} Decl;

/* ---- constructors, called from the grammar's actions ---- */
Expr *ast_int(Arena *a, SrcLoc l, int64_t v);
Expr *ast_float(Arena *a, SrcLoc l, double v);
Expr *ast_str(Arena *a, SrcLoc l, const char *s);
Expr *ast_bool(Arena *a, SrcLoc l, bool b);
Expr *ast_none(Arena *a, SrcLoc l);
Expr *ast_name(Arena *a, SrcLoc l, const char *s);
Expr *ast_list(Arena *a, SrcLoc l, Expr **items, int n);
Expr *ast_call(Arena *a, SrcLoc l, const char *fn, Arg *args, int nargs);
Expr *ast_call_as(Expr *call, PathSeg *segs, int n);
Expr *ast_binary(Arena *a, SrcLoc l, BinOp op, Expr *lhs, Expr *rhs);
Expr *ast_unary(Arena *a, SrcLoc l, UnOp op, Expr *e);

Stmt *ast_assign(Arena *a, SrcLoc l, const char *name, Expr *value);
Stmt *ast_param(Arena *a, SrcLoc l, const char *name, Expr **dims, int n,
                const char *init, SrcLoc init_loc);
Stmt *ast_for(Arena *a, SrcLoc l, const char *var, Expr *lo, Expr *hi,
              StmtList body);
Stmt *ast_if(Arena *a, SrcLoc l, Expr *cond, StmtList then, StmtList els);
Stmt *ast_return(Arena *a, SrcLoc l, Expr *value);
Stmt *ast_expr_stmt(Arena *a, SrcLoc l, Expr *call);

Decl *ast_def(Arena *a, SrcLoc l, const char *name, SrcLoc name_loc,
              Param *params, int n, StmtList body);
Decl *ast_entry(Arena *a, SrcLoc l, EntryKind k, Param *params, int n,
                StmtList body);
Decl *ast_const(Arena *a, SrcLoc l, const char *name, Expr *value);
Decl *ast_vocab(Arena *a, SrcLoc l, const char *name, Expr *list,
                const char *file, SrcLoc file_loc);
Decl *ast_model(Arena *a, SrcLoc l, const char *name, DeclList items);

void ast_stmts_push(Arena *a, StmtList *l, Stmt *s);
void ast_decls_push(Arena *a, DeclList *l, Decl *d);

/* Growable vectors used by the grammar for lists of args, params, exprs. */
typedef struct AstVec { void **items; int n, cap; } AstVec;
void ast_vec_push(Arena *a, AstVec *v, void *item);

#endif
