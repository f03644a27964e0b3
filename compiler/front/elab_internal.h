/* elab_internal.h - state shared by the elaborator's files (elab.c
 * expressions and calls, elab_stmt.c statements and patterns, elab_model.c
 * models and vocabularies, builtins.c built-in functions). */
#ifndef VAMOS_ELAB_INTERNAL_H
#define VAMOS_ELAB_INTERNAL_H

#include "diag.h"
#include "graph.h"
#include "strset.h"

#define EL_MAX_STEPS 5000000
#define EL_MAX_NODES 500000
#define EL_MAX_DEPTH 100
#define EL_MAX_NUMEL ((int64_t)1 << 34)
#define EL_MAX_LOOP 100000
#define EL_MAX_WEIGHTS ((int64_t)1 << 32)   /* elements in all weights */
#define EL_RECENT 16

typedef enum VKind {
    V_ERR, V_NONE, V_INT, V_FLOAT, V_BOOL, V_STR, V_DIM, V_TENSOR, V_VOCAB, V_LIST
} VKind;

typedef struct Value Value;
struct Value {
    VKind k;
    SrcLoc loc;
    union {
        int64_t i;          /* V_INT; V_DIM: the symbol */
        double f;
        bool b;
        const char *s;
        int node;           /* V_TENSOR */
        Vocab *vocab;       /* V_VOCAB */
        struct { Value *items; int n; } list;
    };
    Vocab *tokens_vocab;    /* V_TENSOR of token ids: their vocabulary */
};

typedef struct Binding { const char *name; Value v; SrcLoc loc; } Binding;
typedef struct Env { Binding *b; int n, cap; } Env;
typedef struct Frame { const char *fn; SrcLoc call_loc; } Frame;

typedef struct Elab {
    Arena *a;
    Diag *d;
    Model *m;
    Graph *g;               /* the graph being built, NULL outside entries */
    Decl **defs;
    int ndefs;
    Env globals, model_env, *env;
    Frame frames[EL_MAX_DEPTH];
    int depth;
    const char *scope;      /* weight name prefix */
    const char *dir;        /* of the main file */
    long steps;
    bool out_of_budget, out_of_nodes;
    int64_t weight_elems;
    StrSet weight_names;      /* name -> index into Model.params */
    int len_inputs[MAX_SYMS]; /* node id of each sequence's lengths input, per graph */
    SrcLoc recent[EL_RECENT]; /* places of recent errors, said once */
    int nrecent;
} Elab;

typedef struct Flow { bool returned, failed; Value value; } Flow;

Value v_err(void);
Value v_none(SrcLoc l);
Value v_int(int64_t i, SrcLoc l);
Value v_float(double f, SrcLoc l);
Value v_bool(bool b, SrcLoc l);
Value v_tensor(int node, SrcLoc l);
const char *v_kind_name(VKind k);

void el_error(Elab *e, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void el_note_origin(Elab *e, const char *what, int node);
bool el_budget(Elab *e, SrcLoc loc);
void env_set(Elab *e, Env *env, const char *name, Value v, SrcLoc loc);
Binding *el_lookup(Elab *e, const char *name);
Binding *el_lookup_local(Elab *e, const char *name);
int el_node(Elab *e, Node n);
Node *el_nd(Elab *e, Value v);
int el_const_node(Elab *e, double value, SrcLoc loc);
Value el_to_tensor(Elab *e, Value v);
bool el_need_graph(Elab *e, SrcLoc loc, const char *what);
Value el_binary_node(Elab *e, Op op, Value a, Value b, SrcLoc loc);
Value el_unary_node(Elab *e, Op op, Value a, SrcLoc loc);
Value el_matmul(Elab *e, Value a, Value b, SrcLoc loc);
Value el_eval(Elab *e, Expr *x);
Value el_inline(Elab *e, Decl *fn, Value *bound, bool *given, const SrcLoc *locs, SrcLoc call_loc, const char *scope);

/* elab_stmt.c */
Flow el_exec_block(Elab *e, const StmtList *body);
bool el_check_param(Elab *e, const char *fn, Param *p, Value *v, SrcLoc arg_loc);
/* A dim value (V_INT or V_DIM) as a Dim; false with an error otherwise. */
bool el_value_dim(Elab *e, Value v, Dim *out, const char *what);
Value el_dim_value(Dim d, SrcLoc loc);

#endif
