/* parser.y - the grammar of the Vamos language.
 *
 * Pure and reentrant, with locations. Actions are one-line calls into ast.c;
 * no logic hides here. Every token has a human name for messages.
 */
%define api.pure full
%define api.prefix {vam}
%define parse.error custom
%define parse.lac full
%locations
%param {void *scanner}
%parse-param {ParseCtx *ctx}

%code requires {
#include "ast.h"
#include "parse.h"
#include "spell.h"
}

%code provides {
int vamlex(VAMSTYPE *lval, VAMLTYPE *lloc, void *scanner);
}

%code {
#include <ctype.h>
#include <string.h>
static void vamerror(VAMLTYPE *l, void *scanner, ParseCtx *ctx, const char *msg);
#define A (ctx->arena)
#define L(l) ((SrcLoc){ ctx->file, (l).first_line, (l).first_column, \
    (l).last_line == (l).first_line && (l).last_column > (l).first_column ? (l).last_column - 1 : (l).first_column })
static bool enter(ParseCtx *ctx, VAMLTYPE l);
static Expr *bin(ParseCtx *ctx, VAMLTYPE l, BinOp op, Expr *a, Expr *b);
static Expr *un(ParseCtx *ctx, VAMLTYPE l, UnOp op, Expr *a);
#define ENTER(l) do { if (!enter(ctx, l)) YYABORT; } while (0)
#define VEC(v, T) ((T)(v).items)
static Arg *args_of(ParseCtx *ctx, AstVec v);
static Param *params_of(ParseCtx *ctx, AstVec v);
static PathSeg *segs_of(ParseCtx *ctx, AstVec v);
static PathSeg *seg(ParseCtx *ctx, VAMLTYPE l, const char *name, Expr *index);
static Arg *arg(ParseCtx *ctx, VAMLTYPE l, const char *name, Expr *value);
static Param *param(ParseCtx *ctx, VAMLTYPE l, const char *name, TypeAnn *t, Expr *d);
static TypeAnn *type_simple(ParseCtx *ctx, VAMLTYPE l, const char *name);
static TypeAnn *type_tensor(ParseCtx *ctx, VAMLTYPE l, TypeKind k, const char *vocab, bool ell, AstVec dims);
}

%initial-action {
    @$.first_line = @$.last_line = 1;
    @$.first_column = @$.last_column = 1;
}

%union {
    int64_t ival;
    double fval;
    const char *str;
    Expr *expr;
    Stmt *stmt;
    Decl *decl;
    StmtList stmts;
    DeclList decls;
    AstVec vec;
    TypeAnn *type;
    Param *param;
    bool flag;
}

%token <str> IDENT "identifier"
%token <ival> INT "integer"
%token <fval> FLOAT "number"
%token <str> STRING "string"
%token DEF "'def'" MODEL "'model'" ENCODER "'encoder'" DECODER "'decoder'"
%token PARAM "'param'" CONST "'const'" VOCAB "'vocab'" FILE_KW "'file'"
%token FOR "'for'" IN "'in'" IF "'if'" ELSE "'else'" RETURN "'return'"
%token AS "'as'" TRUE "'true'" FALSE "'false'" NONE "'none'"
%token AND "'and'" OR "'or'" NOT "'not'" TOKENS "'tokens'"
%token ELLIPSIS "'...'" DOTDOT "'..'" IDIV "'//'"
%token EQ "'=='" NE "'!='" LE "'<='" GE "'>='"
%token END 0 "end of file"

%left OR
%left AND
%precedence NOT
%nonassoc EQ NE '<' LE '>' GE
%left '+' '-'
%left '*' '/' IDIV '%'
%left '@'
%precedence UMINUS

%type <decls> decls model_items
%type <decl> decl model_item
%type <stmts> block stmts else_part
%type <stmt> stmt
%type <expr> expr postfix primary call
%type <vec> args arg_list params param_list exprs expr_list path dims dim_list
%type <param> param
%type <type> type
%type <str> opt_init
%type <flag> opt_ellipsis

%%

/* program: decl* */
program: decls                          { ctx->decls = $1; }
       ;

decls: %empty                           { $$ = (DeclList){0}; }
     | decls decl                       { $$ = $1; if ($2) ast_decls_push(A, &$$, $2); }
     | decls error '}'                  { $$ = $1; }
     ;

/* decl: def NAME(params) block | const NAME = expr | model NAME { items } */
decl: DEF IDENT '(' params ')' block    { $$ = ast_def(A, L(@1), $2, L(@2), params_of(ctx, $4), $4.n, $6); }
    | CONST IDENT '=' expr              { $$ = ast_const(A, L(@2), $2, $4); }
    | MODEL IDENT '{' model_items '}'   { $$ = ast_model(A, L(@2), $2, $4); }
    ;

model_items: %empty                     { $$ = (DeclList){0}; }
           | model_items model_item     { $$ = $1; if ($2) ast_decls_push(A, &$$, $2); }
           ;

/* model_item: const | vocab NAME = [..] | vocab NAME = file "path" | encoder(..) block | decoder(..) block */
model_item: CONST IDENT '=' expr        { $$ = ast_const(A, L(@2), $2, $4); }
          | VOCAB IDENT '=' expr        { $$ = ast_vocab(A, L(@2), $2, $4, NULL, L(@4)); }
          | VOCAB IDENT '=' FILE_KW STRING { $$ = ast_vocab(A, L(@2), $2, NULL, $5, L(@5)); }
          | ENCODER '(' params ')' block { $$ = ast_entry(A, L(@1), ENTRY_ENCODER, params_of(ctx, $3), $3.n, $5); }
          | DECODER '(' params ')' block { $$ = ast_entry(A, L(@1), ENTRY_DECODER, params_of(ctx, $3), $3.n, $5); }
          ;

params: %empty                          { $$ = (AstVec){0}; }
      | param_list                      { $$ = $1; }
      | param_list ','                  { $$ = $1; }
      ;
param_list: param                       { $$ = (AstVec){0}; ast_vec_push(A, &$$, $1); }
          | param_list ',' param        { $$ = $1; ast_vec_push(A, &$$, $3); }
          ;

/* param: NAME (: type)? (= expr)? */
param: IDENT                            { $$ = param(ctx, @1, $1, NULL, NULL); }
     | IDENT ':' type                   { $$ = param(ctx, @1, $1, $3, NULL); }
     | IDENT '=' expr                   { $$ = param(ctx, @1, $1, NULL, $3); }
     | IDENT ':' type '=' expr          { $$ = param(ctx, @1, $1, $3, $5); }
     ;

/* type: int | float | bool | str | dim | [dims] | tokens<vocab>[dims] */
type: IDENT                             { $$ = type_simple(ctx, @1, $1); }
    | '[' opt_ellipsis dims ']'         { $$ = type_tensor(ctx, @$, T_TENSOR, NULL, $2, $3); }
    | TOKENS '[' opt_ellipsis dims ']'  { $$ = type_tensor(ctx, @$, T_TOKENS, NULL, $3, $4); }
    | TOKENS '<' IDENT '>' '[' opt_ellipsis dims ']' { $$ = type_tensor(ctx, @$, T_TOKENS, $3, $6, $7); }
    ;

opt_ellipsis: %empty                    { $$ = false; }
            | ELLIPSIS ','              { $$ = true; }
            | ELLIPSIS                  { $$ = true; }
            ;

dims: %empty                            { $$ = (AstVec){0}; }
    | dim_list                          { $$ = $1; }
    ;
dim_list: expr                          { $$ = (AstVec){0}; ast_vec_push(A, &$$, $1); }
        | dim_list ',' expr             { $$ = $1; ast_vec_push(A, &$$, $3); }
        ;

block: '{' { ENTER(@1); } stmts '}'     { $$ = $3; ctx->depth--; }
     ;

stmts: %empty                           { $$ = (StmtList){0}; }
     | stmts stmt                       { $$ = $1; if ($2) ast_stmts_push(A, &$$, $2); }
     | stmts ';'                        { $$ = $1; }
     ;

/* stmt: NAME = expr | param NAME[dims] (= init)? | for v in a..b block | if e block (else block)? | return e | call */
stmt: IDENT '=' expr                    { $$ = ast_assign(A, L(@1), $1, $3); }
    | PARAM IDENT '[' dims ']' opt_init { $$ = ast_param(A, L(@2), $2, VEC($4, Expr **), $4.n, $6, L(@6)); }
    | FOR IDENT IN expr DOTDOT expr block { $$ = ast_for(A, L(@2), $2, $4, $6, $7); }
    | IF expr block else_part           { $$ = ast_if(A, L(@2), $2, $3, $4); }
    | RETURN expr                       { $$ = ast_return(A, L(@1), $2); }
    | call                              { $$ = ast_expr_stmt(A, L(@1), $1); }
    | error '}'                         { $$ = NULL; ctx->depth = ctx->depth > 0 ? ctx->depth - 1 : 0; }
    ;

opt_init: %empty                        { $$ = NULL; }
        | '=' IDENT                     { $$ = $2; }
        ;

else_part: %empty                       { $$ = (StmtList){0}; }
         | ELSE block                   { $$ = $2; }
         | ELSE IF expr block else_part { $$ = (StmtList){0}; ast_stmts_push(A, &$$, ast_if(A, L(@3), $3, $4, $5)); }
         ;

expr: postfix                           { $$ = $1; }
    | expr '+' expr                     { $$ = bin(ctx, @2, B_ADD, $1, $3); }
    | expr '-' expr                     { $$ = bin(ctx, @2, B_SUB, $1, $3); }
    | expr '*' expr                     { $$ = bin(ctx, @2, B_MUL, $1, $3); }
    | expr '/' expr                     { $$ = bin(ctx, @2, B_DIV, $1, $3); }
    | expr IDIV expr                    { $$ = bin(ctx, @2, B_IDIV, $1, $3); }
    | expr '%' expr                     { $$ = bin(ctx, @2, B_MOD, $1, $3); }
    | expr '@' expr                     { $$ = bin(ctx, @2, B_MATMUL, $1, $3); }
    | expr EQ expr                      { $$ = bin(ctx, @2, B_EQ, $1, $3); }
    | expr NE expr                      { $$ = bin(ctx, @2, B_NE, $1, $3); }
    | expr '<' expr                     { $$ = bin(ctx, @2, B_LT, $1, $3); }
    | expr LE expr                      { $$ = bin(ctx, @2, B_LE, $1, $3); }
    | expr '>' expr                     { $$ = bin(ctx, @2, B_GT, $1, $3); }
    | expr GE expr                      { $$ = bin(ctx, @2, B_GE, $1, $3); }
    | expr AND expr                     { $$ = bin(ctx, @2, B_AND, $1, $3); }
    | expr OR expr                      { $$ = bin(ctx, @2, B_OR, $1, $3); }
    | '-' expr %prec UMINUS             { $$ = un(ctx, @1, U_NEG, $2); }
    | NOT expr                          { $$ = un(ctx, @1, U_NOT, $2); }
    ;

postfix: primary                        { $$ = $1; }
       | call                           { $$ = $1; }
       | call AS path                   { $$ = ast_call_as($1, segs_of(ctx, $3), $3.n); }
       ;

/* call: NAME(args) */
call: IDENT '(' { ENTER(@2); } args ')' { $$ = ast_call(A, L(@1), $1, args_of(ctx, $4), $4.n); ctx->depth--; }
    ;

/* path: NAME ('.' NAME | '[' expr ']')* */
path: IDENT                             { $$ = (AstVec){0}; ast_vec_push(A, &$$, seg(ctx, @1, $1, NULL)); }
    | path '.' IDENT                    { $$ = $1; ast_vec_push(A, &$$, seg(ctx, @3, $3, NULL)); }
    | path '[' expr ']'                 { $$ = $1; ast_vec_push(A, &$$, seg(ctx, @3, NULL, $3)); }
    ;

primary: INT                            { $$ = ast_int(A, L(@1), $1); }
       | FLOAT                          { $$ = ast_float(A, L(@1), $1); }
       | STRING                         { $$ = ast_str(A, L(@1), $1); }
       | TRUE                           { $$ = ast_bool(A, L(@1), true); }
       | FALSE                          { $$ = ast_bool(A, L(@1), false); }
       | NONE                           { $$ = ast_none(A, L(@1)); }
       | IDENT                          { $$ = ast_name(A, L(@1), $1); }
       | '(' { ENTER(@1); } expr ')'    { $$ = $3; ctx->depth--; }
       | '[' { ENTER(@1); } exprs ']'   { $$ = ast_list(A, L(@1), VEC($3, Expr **), $3.n); ctx->depth--; }
       ;

exprs: %empty                           { $$ = (AstVec){0}; }
     | expr_list                        { $$ = $1; }
     | expr_list ','                    { $$ = $1; }
     ;
expr_list: expr                         { $$ = (AstVec){0}; ast_vec_push(A, &$$, $1); }
         | expr_list ',' expr           { $$ = $1; ast_vec_push(A, &$$, $3); }
         ;

args: %empty                            { $$ = (AstVec){0}; }
    | arg_list                          { $$ = $1; }
    | arg_list ','                      { $$ = $1; }
    ;
arg_list: expr                          { $$ = (AstVec){0}; ast_vec_push(A, &$$, arg(ctx, @1, NULL, $1)); }
        | IDENT ':' expr                { $$ = (AstVec){0}; ast_vec_push(A, &$$, arg(ctx, @1, $1, $3)); }
        | arg_list ',' expr             { $$ = $1; ast_vec_push(A, &$$, arg(ctx, @3, NULL, $3)); }
        | arg_list ',' IDENT ':' expr   { $$ = $1; ast_vec_push(A, &$$, arg(ctx, @3, $3, $5)); }
        ;

%%

/* Bound the nesting depth so that no input can overflow the C stack. */
static bool enter(ParseCtx *ctx, VAMLTYPE l)
{
    if (++ctx->depth <= PARSE_MAX_DEPTH)
        return true;
    if (!ctx->too_deep)
        diag_error(ctx->diag, L(l), "nesting is too deep (the limit is %d levels)", PARSE_MAX_DEPTH);
    ctx->too_deep = true;
    return false;
}

/* Operator chains build deep trees without nesting; bound them too. */
static Expr *deep(ParseCtx *ctx, Expr *e, int depth)
{
    e->depth = depth;
    if (depth > PARSE_MAX_EXPR_DEPTH && !ctx->too_deep) {
        diag_error(ctx->diag, e->loc, "expression is too deep (more than %d operators in a chain)", PARSE_MAX_EXPR_DEPTH);
        ctx->too_deep = true;
    }
    return e;
}

static Expr *bin(ParseCtx *ctx, VAMLTYPE l, BinOp op, Expr *a, Expr *b)
{
    int d = a->depth > b->depth ? a->depth : b->depth;
    return deep(ctx, ast_binary(A, L(l), op, a, b), d + 1);
}

static Expr *un(ParseCtx *ctx, VAMLTYPE l, UnOp op, Expr *a)
{
    return deep(ctx, ast_unary(A, L(l), op, a), a->depth + 1);
}

static Arg *args_of(ParseCtx *ctx, AstVec v)
{
    Arg *a = arena_alloc(A, sizeof *a * (size_t)(v.n ? v.n : 1));
    for (int i = 0; i < v.n; i++)
        a[i] = *(Arg *)v.items[i];
    return a;
}

static Param *params_of(ParseCtx *ctx, AstVec v)
{
    Param *p = arena_alloc(A, sizeof *p * (size_t)(v.n ? v.n : 1));
    for (int i = 0; i < v.n; i++)
        p[i] = *(Param *)v.items[i];
    return p;
}

static PathSeg *segs_of(ParseCtx *ctx, AstVec v)
{
    PathSeg *s = arena_alloc(A, sizeof *s * (size_t)(v.n ? v.n : 1));
    for (int i = 0; i < v.n; i++)
        s[i] = *(PathSeg *)v.items[i];
    return s;
}

static PathSeg *seg(ParseCtx *ctx, VAMLTYPE l, const char *name, Expr *index)
{
    PathSeg *s = arena_alloc(A, sizeof *s);
    *s = (PathSeg){ name, index, L(l) };
    return s;
}

static Arg *arg(ParseCtx *ctx, VAMLTYPE l, const char *name, Expr *value)
{
    Arg *a = arena_alloc(A, sizeof *a);
    *a = (Arg){ name, value, L(l) };
    return a;
}

static Param *param(ParseCtx *ctx, VAMLTYPE l, const char *name, TypeAnn *t, Expr *d)
{
    Param *p = arena_alloc(A, sizeof *p);
    *p = (Param){ name, t, d, L(l) };
    return p;
}

/* A named type: int, float, bool, str, dim, tensor, tokens. */
static TypeAnn *type_simple(ParseCtx *ctx, VAMLTYPE l, const char *name)
{
    static const struct { const char *name; TypeKind k; } names[] = {
        { "int", T_INT }, { "float", T_FLOAT }, { "bool", T_BOOL },
        { "str", T_STR }, { "dim", T_DIM }, { "tensor", T_ANY },
    };
    TypeAnn *t = arena_alloc(A, sizeof *t);
    t->loc = L(l);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) {
            t->kind = names[i].k;
            return t;
        }
    diag_error(ctx->diag, t->loc, "unknown type '%s' (expected int, float, bool, str, dim, tensor, [dims] or tokens[dims])", name);
    t->kind = T_ANY;
    return t;
}

static TypeAnn *type_tensor(ParseCtx *ctx, VAMLTYPE l, TypeKind k, const char *vocab, bool ell, AstVec dims)
{
    TypeAnn *t = arena_alloc(A, sizeof *t);
    *t = (TypeAnn){ k, vocab, ell, VEC(dims, Expr **), dims.n, L(l) };
    return t;
}

/* The source text at loc (its line from loc's column on: columns count
 * UTF-8 characters, as the lexer does), and in *line0 where that line
 * begins: text before it is not the line's, so backward scans stop there.
 * "" (and *line0 the same) when there is no text. */
static const char *source_at(const ParseCtx *ctx, SrcLoc loc, const char **line0)
{
    static const char none[] = "";
    const DiagFile *f = ctx->file >= 0 && ctx->file < ctx->diag->nfiles ? &ctx->diag->files[ctx->file] : NULL;
    *line0 = none;
    if (!f || !f->text || loc.line < 1 || loc.col < 1)
        return none;
    const char *p = f->text, *end = f->text + f->len;
    for (int line = 1; line < loc.line && p < end; p++)
        line += *p == '\n';
    *line0 = p;
    for (int c = 1; c < loc.col && p < end && *p != '\n'; c++) {
        p++;
        while (p < end && ((unsigned char)*p & 0xC0) == 0x80)
            p++;
    }
    return p;
}

/* Columns from line0 to p (UTF-8 characters). */
static int columns(const char *line0, const char *p)
{
    int c = 0;
    for (const char *q = line0; q < p; q++)
        c += ((unsigned char)*q & 0xC0) != 0x80;
    return c;
}

static bool starts_word(const char *p, const char *w)
{
    size_t n = strlen(w);
    return !strncmp(p, w, n) && !(isalnum((unsigned char)p[n]) || p[n] == '_');
}

/* The keyword a word of 4 or more letters is 1 or 2 edits from (a typo:
 * enocder, retrun), or NULL. */
static const char *near_keyword(const char *word, int len)
{
    static const char *kw[] = { "model", "encoder", "decoder", "param", "const", "vocab",
                                "return", "tokens", "false", "true", "none", "else" };
    char w[32];
    if (len < 4 || len > 30)
        return NULL;
    memcpy(w, word, (size_t)len);
    w[len] = 0;
    for (size_t i = 0; i < sizeof kw / sizeof *kw; i++) {
        int d = edit_distance(w, kw[i]);
        if (d > 0 && d <= (len > 5 ? 2 : 1))
            return kw[i];
    }
    return NULL;
}

static int word_len(const char *p)
{
    int n = 0;
    while (isalnum((unsigned char)p[n]) || p[n] == '_')
        n++;
    return n;
}

/* A syntax error that is a habit from another language, or a misspelt
 * keyword, gets a fix-it. */
static const char *fix_it(const ParseCtx *ctx, SrcLoc *where, yysymbol_kind_t got, const yysymbol_kind_t *expected,
                          int n)
{
    const char *line0, *at = source_at(ctx, *where, &line0);
    (void)expected, (void)n;
    if (got == YYSYMBOL_IDENT && (starts_word(at, "elif") || starts_word(at, "elsif")))
        return "Vamos has no 'elif': write 'else if'";
    if (at[0] == '*' && at > line0 && at[-1] == '*')
        return "'**' is not an operator: write pow(x, y)";
    if (at[0] == '=' && at[1] != '=') {   /* in an if's condition: `if x = 2 {` */
        for (const char *q = line0; q < at; q++)
            if (starts_word(q, "if") && (q == line0 || !(isalnum((unsigned char)q[-1]) || q[-1] == '_')))
                return "'=' assigns; to compare, write '=='";
    }
    if (got == YYSYMBOL_IDENT && (starts_word(at, "True") || starts_word(at, "False")))
        return "the booleans are 'true' and 'false'";
    static char said[96];
    const char *kw;
    if (got == YYSYMBOL_IDENT && (kw = near_keyword(at, word_len(at)))) {   /* `enocder(x: ...) {` */
        snprintf(said, sizeof said, "unexpected '%.*s'; did you mean '%s'?", word_len(at), at, kw);
        return said;
    }
    /* `} elif x > 0 {`, `retrun h`: the word parsed as a name and the
     * error comes after it; the fix-it goes at the word */
    const char *q = at;
    while (q > line0 && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    const char *p = q;
    while (p > line0 && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
        p--;
    if (p == q || q == at)
        return NULL;
    bool elif = q - p == 4 && !strncmp(p, "elif", 4);
    if (!elif && !(kw = near_keyword(p, (int)(q - p))))
        return NULL;
    where->col = 1 + columns(line0, p), where->end_col = where->col + (int)(q - p) - 1;
    if (elif)
        return "Vamos has no 'elif': write 'else if'";
    snprintf(said, sizeof said, "unexpected '%.*s'; did you mean '%s'?", (int)(q - p), p, kw);
    return said;
}

/* After a syntax error at `where`: a note at the innermost bracket still
 * open, when it is a ( or [ opened on an earlier line (a call or list
 * that was never closed), or any bracket at the end of the file. */
static void open_note(ParseCtx *ctx, SrcLoc where, yysymbol_kind_t got)
{
    if (ctx->nopen <= 0 || ctx->nopen > 64)
        return;
    int k = ctx->nopen - 1;
    char ch = ctx->open_ch[k];
    SrcLoc at = ctx->open_at[k];
    bool eof = got == YYSYMBOL_YYEOF;
    if (eof || ((ch == '(' || ch == '[') && at.line < where.line))
        diag_note(ctx->diag, at, "the '%c' opened here is not closed", ch);
}

/* Syntax errors: "expected X or Y, found Z" with human token names. */
static int yyreport_syntax_error(const yypcontext_t *pc, void *scanner, ParseCtx *ctx)
{
    (void)scanner;
    enum { MAX = 6 };
    yysymbol_kind_t expected[MAX];
    int n = yypcontext_expected_tokens(pc, expected, MAX);
    yysymbol_kind_t got = yypcontext_token(pc);
    char msg[512];
    SrcLoc where = L(*yypcontext_location(pc));
    const char *fix = fix_it(ctx, &where, got, expected, n);
    if (fix) {
        diag_error(ctx->diag, where, "syntax error: %s", fix);
        open_note(ctx, where, got);
        return 0;
    }
    int len = snprintf(msg, sizeof msg, "syntax error: unexpected %s", yysymbol_name(got));
    if (n > 0 && n < MAX) {
        for (int i = 0; i < n && len < (int)sizeof msg; i++)
            len += snprintf(msg + len, sizeof msg - (size_t)len, "%s%s",
                            i == 0 ? ", expected " : i == n - 1 ? " or " : ", ",
                            yysymbol_name(expected[i]));
    }
    diag_error(ctx->diag, L(*yypcontext_location(pc)), "%s", msg);
    open_note(ctx, where, got);
    return 0;
}

/* Only bison's own failures (e.g. its stack exhausted) reach here. */
static void vamerror(VAMLTYPE *l, void *scanner, ParseCtx *ctx, const char *msg)
{
    (void)scanner;
    diag_error(ctx->diag, L(*l), "%s (the input nests too deeply)", msg);
}
