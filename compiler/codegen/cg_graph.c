/* cg_graph.c - graph functions: each node's kernel emitted once per distinct
 * key (op, shapes, the attribute its table row declares, schedule), then
 * vamos_<graph>() calling them in order through the thread pool; and the
 * target machines. */
#include "cg.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <xxhash.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of node n's parallel loop and the work of the whole kernel
 * (for the pool's threshold), from the dims in c->sym. */
static void extent(CG *c, const Graph *one, LLVMValueRef *len, LLVMValueRef *work)
{
    const Node *n = &one->nodes[MAX_IN], *na = &one->nodes[0], *nb = &one->nodes[1];
    const Shape *s = &n->shape;
    LLVMValueRef all = numel(c, s);
    *work = all;
    switch (n->op) {
    case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH:
    case OP_ERF: case OP_SIN: case OP_COS: case OP_FLOOR: case OP_ABS:
    case OP_INPUT: case OP_PARAM:   /* buffers: no kernel */
    case OP_CONST: case OP_ARANGE: case OP_RESHAPE: case OP_DROPOUT:
        *len = all;
        return;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_POW: case OP_GE:
    case OP_TRANSPOSE: case OP_GATHER:
        *len = dims_product(c, s, 0, s->rank - 1);
        return;
    case OP_SUM: case OP_MAX: case OP_MEAN:
        *len = dims_product(c, &na->shape, 0, n->attr.axis);
        *work = numel(c, &na->shape);
        return;
    case OP_MATMUL: case OP_LINEAR: {
        Node ln, la;   /* as the product sees them (attr.mm.at, heads) */
        mm_logical(n, na, &ln, &la);
        MMShape m = mm_shape(c, &ln, &la, nb, sched_of(n).rb);
        LLVMValueRef blocks = n->attr.mm.packed ? m.mblocks
                            : udiv_up(c, m.M, i64c(c, (int64_t)sched_of(n).rb * PN_BLOCKS));   /* chunks */
        *len = mm_is_a8(n, na, nb) ? mul(c, udiv_up(c, mul(c, m.M, m.batches), i64c(c, sched_of(n).rb)), a8_groups(c, m.ntiles))
                                   : mul(c, mul(c, m.batches, blocks), m.ntiles);
        *work = mul(c, all, dim_val(c, na->shape.d[na->shape.rank - 1]));
        return;
    }
    case OP_ATTENTION: {
        *len = mul(c, dims_product(c, s, 0, s->rank - 2), udiv_up(c, dim_val(c, s->d[s->rank - 2]), i64c(c, sched_of(n).qb)));
        LLVMValueRef T = dim_val(c, nb->shape.d[s->rank - 1]), D = dim_val(c, na->shape.d[s->rank - 1]);
        *work = mul(c, mul(c, dims_product(c, s, 0, s->rank - 1), T), add(c, D, dim_val(c, s->d[s->rank - 1])));
        return;
    }
    case OP_LAYER_NORM:
        *len = dims_product(c, s, 0, s->rank - 1);
        *work = mul(c, all, i64c(c, 4));
        return;
    case OP_MAP:
        *len = dims_product(c, s, 0, s->rank - 1);
        *work = mul(c, all, i64c(c, n->attr.map.nstep));
        return;
    case OP_CAUSAL_MASK: case OP_PAD_MASK:
        *len = dim_val(c, s->d[0]);
        return;
    case OP_STORE:
        *len = i64c(c, 1);   /* one sequential call */
        return;
    case OP_XENT: case OP_XENT_GRAD:
        *len = dims_product(c, &na->shape, 0, na->shape.rank - 1);
        *work = mul(c, numel(c, &na->shape), i64c(c, 8));
        return;
    case OP_MATMUL_TN:
        *len = udiv_up(c, dim_val(c, s->d[1]), i64c(c, PW));   /* column tiles */
        *work = mul(c, all, dims_product(c, &na->shape, 0, na->shape.rank - 1));
        return;
    case OP_SCATTER_ADD:
        *len = udiv_up(c, dim_val(c, s->d[1]), i64c(c, SCATTER_COLS));
        *work = add(c, all, numel(c, &na->shape));
        return;
    case OP_COUNT:
        break;
    }
    *len = all;
}

/* Append a shape's dims (value, symbol) to a key. */
static int key_shape(int64_t *k, int at, const Shape *s)
{
    k[at++] = s->rank;
    for (int i = 0; i < s->rank; i++) {
        k[at++] = s->d[i].sym >= 0 ? -1 : s->d[i].n;
        k[at++] = s->d[i].sym;
    }
    return at;
}

/* The bits of a float, as a key word. */
static int64_t fbits(float f)
{
    int32_t bits;
    memcpy(&bits, &f, 4);
    return bits;
}

/* Append what the op's attribute (its table column, ops.h) makes its
 * kernel differ by. Fields the graph function passes at run time (a
 * store's state and position, an offset's symbol, dropout's salt) are
 * keyed only by whether they exist. */
static int key_attr(int64_t *k, int at, const Node *n)
{
    switch (op_info[n->op].attr) {
    case AT_NONE:
    case AT_INPUT:   /* buffers, no kernel */
    case AT_PARAM:
        break;
    case AT_VALUE:
        memcpy(&k[at++], &n->attr.value, sizeof n->attr.value);
        break;
    case AT_OFFSET:
        k[at++] = n->attr.offset != 0;
        break;
    case AT_AXIS:
        k[at++] = n->attr.axis;
        break;
    case AT_PERM:
        for (int i = 0; i < n->shape.rank; i++)
            k[at++] = n->attr.perm[i];
        break;
    case AT_MM:
        k[at++] = n->attr.mm.packed | n->attr.mm.relu << 1 | n->attr.mm.bt << 2 | n->attr.mm.q8 << 3 | (int64_t)n->attr.mm.a8 << 4 |
                  (int64_t)n->attr.mm.heads << 12 | (int64_t)n->attr.mm.at << 16;
        break;
    case AT_STORE:
        k[at++] = n->attr.store.axis;
        k[at++] = n->attr.store.shared;
        break;
    case AT_ATTN:
        k[at++] = fbits(n->attr.attn.scale);
        k[at++] = n->attr.attn.div;
        break;
    case AT_EPS:
        k[at++] = fbits(n->attr.eps);
        break;
    case AT_XENT:
        k[at++] = fbits(n->attr.xent.eps);
        k[at++] = n->attr.xent.peer != 0;
        break;
    case AT_MAP:
        k[at++] = n->attr.map.nin;
        for (int s = 0; s < n->attr.map.nstep; s++) {
            const MapStep *st = &n->attr.map.code[s];
            k[at++] = st->op;
            k[at++] = st->a | st->b << 8;
            k[at++] = st->op == OP_CONST ? fbits(st->value) : 0;
        }
        break;
    case AT_DROP:
        k[at++] = fbits(n->attr.drop.p);
        break;
    }
    return at;
}

/* The kernel's identity: op, shapes of node and inputs, attributes (field
 * by field: struct padding must not split equal kernels). */
static uint64_t kernel_key(const Graph *g, const Node *n)
{
    int64_t k[9 + (MAX_IN + 1) * (1 + 2 * MAX_RANK) + MAX_RANK + 1 + 3 * MAP_MAX_STEPS];
    int at = 0;
    k[at++] = n->op;
    at = key_shape(k, at, &n->shape);
    for (int i = 0; i < op_info[n->op].arity; i++)
        at = key_shape(k, at, &g->nodes[n->in[i]].shape);
    at = key_attr(k, at, n);
    if (sched_tunable(n->op)) {
        Sched sc = sched_of(n);
        k[at++] = sc.qb | sc.bk << 8 | sc.rb << 16;
    }
    return XXH3_64bits(k, sizeof(int64_t) * (size_t)at);
}

static void map_shape(FILE *f, const Shape *s)
{
    fputc('[', f);
    for (int i = 0; i < s->rank; i++)
        s->d[i].sym >= 0 ? fprintf(f, "%s$%d", i ? "," : "", s->d[i].sym)
                            : fprintf(f, "%s%lld", i ? "," : "", (long long)s->d[i].n);
    fputc(']', f);
}

/* With VAMOS_KERNEL_MAP=FILE: one line per kernel emitted, appended to
 * FILE, so a profile's symbols (k<hash>) can be read: name, graph, op,
 * shapes of the result and operands ($k: a size known at run time), schedule. */
static void map_kernel(const char *name, const Graph *g, const Node *n)
{
    const char *path = getenv("VAMOS_KERNEL_MAP");
    FILE *f = path && *path ? fopen(path, "a") : NULL;
    if (!f)
        return;
    fprintf(f, "%s %s %s ", name, g->name ? g->name : "?", op_info[n->op].text);
    map_shape(f, &n->shape);
    for (int i = 0; i < op_info[n->op].arity; i++)
        fputs(i ? "," : " <- ", f), map_shape(f, &g->nodes[n->in[i]].shape);
    if (sched_tunable(n->op)) {
        Sched sc = sched_of(n);
        fprintf(f, " rb %d bk %d qb %d", sc.rb, sc.bk, sc.qb);
    }
    fputc('\n', f);
    fclose(f);
}

/* Emit (or reuse) the kernel of node n (whose dims are slots). */
static LLVMValueRef kernel(CG *c, const Graph *g, const Node *n)
{
    char name[32];
    snprintf(name, sizeof name, "k%016llx", (unsigned long long)kernel_key(g, n));
    LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
    if (f)
        return f;
    map_kernel(name, g, n);
    f = LLVMAddFunction(c->mod, name, c->kernel_ty);
    LLVMSetLinkage(f, LLVMInternalLinkage);
    /* kept out of line: one optimised copy per distinct kernel, and graph
     * functions that stay small enough for O3 to handle in seconds */
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
    for (unsigned i = 0; i < 3; i++)
        LLVMAddAttributeAtIndex(f, i + 1, LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    c->fn = f;
    c->out = LLVMGetParam(f, 0), c->a = LLVMGetParam(f, 1), c->bb = LLVMGetParam(f, 2), c->sym = LLVMGetParam(f, 3);
    c->lo = LLVMGetParam(f, 4), c->hi = LLVMGetParam(f, 5);
    c->sched = sched_of(n);
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, f, "entry"));
    const Node *na = op_info[n->op].arity > 0 ? &g->nodes[n->in[0]] : NULL;
    const Node *nb = op_info[n->op].arity > 1 ? &g->nodes[n->in[1]] : NULL;
    switch (n->op) {
    case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH:
    case OP_ERF: case OP_SIN: case OP_COS: case OP_FLOOR: case OP_ABS:
        emit_unary(c, n);
        break;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_POW: case OP_GE:
        emit_binary(c, n, na, nb);
        break;
    case OP_SUM: case OP_MAX: case OP_MEAN:
        emit_reduce(c, n, na);
        break;
    case OP_TRANSPOSE:
        emit_transpose(c, n, na);
        break;
    case OP_INPUT: case OP_PARAM:   /* buffers: never asked for a kernel */
    case OP_CONST: case OP_ARANGE: case OP_RESHAPE:
        emit_fill(c, g, n);
        break;
    case OP_MATMUL:
    case OP_LINEAR: {
        LLVMValueRef bias = n->op == OP_LINEAR ? extra_input(c, 1) : NULL;
        LLVMValueRef b = n->op == OP_LINEAR ? extra_input(c, 0) : c->bb;
        if (n->attr.mm.packed)
            emit_matmul(c, n, na, nb, b, bias);
        else
            emit_matmul_panels(c, n, na, nb, b, bias);
        break;
    }
    case OP_LAYER_NORM: emit_layer_norm(c, g, n); break;
    case OP_MAP: emit_map(c, g, n); break;
    case OP_GATHER: emit_gather(c, n, na); break;
    case OP_CAUSAL_MASK: case OP_PAD_MASK: emit_mask(c, g, n); break;
    case OP_STORE: emit_store(c, g, n, nb); break;
    case OP_ATTENTION: emit_attention(c, g, n); break;
    case OP_DROPOUT: emit_dropout(c, g, n); break;
    case OP_XENT: case OP_XENT_GRAD: emit_xent(c, n, na); break;
    case OP_SCATTER_ADD: emit_scatter_add(c, n, nb); break;
    case OP_MATMUL_TN: emit_matmul_tn(c, g, n, na); break;
    case OP_COUNT: break;
    }
    LLVMBuildRet(c->b, LLVMConstInt(c->i32, 0, 0));
    return f;
}

/* Node i with its inputs, dims replaced by slots, as a small graph: the
 * inputs at 0.., the node at MAX_IN. */
static Graph slotted(const Graph *g, int i, Node tmp[MAX_IN + 1])
{
    const Node *n = &g->nodes[i];
    int arity = op_info[n->op].arity, next = 0;
    tmp[MAX_IN] = *n;
    slot_shape(&tmp[MAX_IN].shape, &next);
    for (int k = 0; k < arity; k++) {
        tmp[k] = g->nodes[n->in[k]];
        slot_shape(&tmp[k].shape, &next);
        tmp[MAX_IN].in[k] = k;
    }
    return (Graph){ .name = g->name, .nodes = tmp, .n = MAX_IN + 1, .cap = MAX_IN + 1, .output = MAX_IN };
}

/* The dims array of node i's kernel, in slot order, in an alloca. */
static LLVMValueRef dims_arg(CG *c, const Graph *g, int i, LLVMValueRef sym, LLVMValueRef area)
{
    const Node *n = &g->nodes[i];
    const Shape *shapes[MAX_IN + 1] = { &n->shape };
    for (int k = 0; k < op_info[n->op].arity; k++)
        shapes[k + 1] = &g->nodes[n->in[k]].shape;
    int slot = 0;
    for (int s = 0; s < MAX_IN + 1; s++)
        for (int k = 0; shapes[s] && k < shapes[s]->rank; k++) {
            Dim d = shapes[s]->d[k];
            if (d.sym < 0 && d.n == 1)
                continue;
            LLVMValueRef v = d.sym >= 0 ? LLVMBuildLoad2(c->b, c->i64, gep(c, c->i64, sym, i64c(c, d.sym)), "")
                                        : i64c(c, d.n);
            LLVMBuildStore(c->b, v, gep(c, c->i64, area, i64c(c, slot++)));
        }
    /* one extra slot: the position symbol of ARANGE, CAUSAL_MASK; dropout's
     * base; matmul_tn's sym[SYM_ACC] */
    int pos = n->op == OP_ARANGE || n->op == OP_CAUSAL_MASK ? n->attr.offset - 1 : -1;
    if (pos >= 0)
        LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, c->i64, gep(c, c->i64, sym, i64c(c, pos)), ""),
                       gep(c, c->i64, area, i64c(c, slot)));
    if (n->op == OP_MATMUL_TN)   /* add to what out holds (the output layer's chunks after the first) */
        LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, c->i64, gep(c, c->i64, sym, i64c(c, SYM_ACC)), ""),
                       gep(c, c->i64, area, i64c(c, slot)));
    if (n->op == OP_DROPOUT) {   /* the draw's base: seed * K_SEED + salt * K_SALT */
        LLVMValueRef seed = LLVMBuildLoad2(c->b, c->i64, gep(c, c->i64, sym, i64c(c, SYM_SEED)), "");
        LLVMValueRef v = add(c, mul(c, seed, u64c(c, K_SEED)), u64c(c, (uint64_t)n->attr.drop.salt * K_SALT));
        LLVMBuildStore(c->b, v, gep(c, c->i64, area, i64c(c, slot)));
    }
    return area;
}

/* Call node i's kernel through the pool: vamos_parallel(kernel, out, a,
 * b, dims, len, work); returns the status. */
static LLVMValueRef emit_call(CG *c, const Graph *g, int i, LLVMValueRef kfn, LLVMValueRef buf, LLVMValueRef sym,
                              LLVMValueRef area)
{
    const Node *n = &g->nodes[i];
    int arity = op_info[n->op].arity;
    int slots[3] = { i, arity > 0 ? n->in[0] : -1, arity > 1 ? n->in[1] : -1 };
    LLVMValueRef args[7];
    args[0] = kfn;
    for (int k = 0; k < 3; k++)
        args[k + 1] = slots[k] < 0 ? LLVMConstNull(c->ptr)
                                   : LLVMBuildLoad2(c->b, c->ptr, gep(c, c->ptr, buf, i64c(c, slots[k])), "");
    /* b: the array of inputs 1.., and for a xent_grad with a peer, the
     * peer's values (it writes them, emit_xent) */
    int extra[MAX_IN], nextra = 0;
    for (int k = 1; arity > 2 && k < arity; k++)
        extra[nextra++] = n->in[k];
    if (n->op == OP_XENT_GRAD && n->attr.xent.peer)
        extra[nextra++] = n->in[1], extra[nextra++] = n->attr.xent.peer - 1;
    for (int k = 0; k < nextra; k++)
        LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, c->ptr, gep(c, c->ptr, buf, i64c(c, extra[k])), ""),
                       gep(c, c->ptr, c->ins, i64c(c, k)));
    if (nextra)
        args[3] = c->ins;
    args[4] = dims_arg(c, g, i, sym, area);
    /* the loop length and work, from the dims just stored (slot numbering) */
    Node tmp[MAX_IN + 1];
    Graph one = slotted(g, i, tmp);
    LLVMValueRef saved = c->sym;
    c->sym = area;
    extent(c, &one, &args[5], &args[6]);
    c->sym = saved;
    if (sched_tunable(g->nodes[i].op) && sched_of(&g->nodes[i]).th == 1)
        args[6] = i64c(c, 0);   /* no work worth a thread: the pool runs it inline */
    LLVMValueRef par = LLVMGetNamedFunction(c->mod, "vamos_parallel");
    if (!par)
        par = LLVMAddFunction(c->mod, "vamos_parallel", c->parallel_ty);
    return LLVMBuildCall2(c->b, c->parallel_ty, par, args, 7, "");
}

/* vamos_<graph>_step(node, buf, sym): one node's kernel, for tests. */
static void emit_steps(CG *c, const Graph *g, LLVMValueRef *ks)
{
    char name[64];
    snprintf(name, sizeof name, "vamos_%s_step", g->name);
    LLVMTypeRef fty = LLVMFunctionType(c->i32, (LLVMTypeRef[]){ c->i32, c->ptr, c->ptr }, 3, 0);
    LLVMValueRef f = LLVMAddFunction(c->mod, name, fty);
    c->fn = f;
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(c->ctx, f, "entry");
    LLVMBasicBlockRef none = LLVMAppendBasicBlockInContext(c->ctx, f, "none");
    LLVMPositionBuilderAtEnd(c->b, none);
    LLVMBuildRet(c->b, LLVMConstInt(c->i32, 0, 0));
    LLVMPositionBuilderAtEnd(c->b, entry);
    LLVMValueRef area = LLVMBuildArrayAlloca(c->b, c->i64, i64c(c, AREA), "dims");
    c->ins = LLVMBuildArrayAlloca(c->b, c->ptr, i64c(c, MAX_IN), "ins");
    LLVMValueRef sw = LLVMBuildSwitch(c->b, LLVMGetParam(f, 0), none, (unsigned)g->n);
    for (int i = 0; i < g->n; i++) {
        if (!ks[i])
            continue;
        LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(c->ctx, f, "node");
        LLVMAddCase(sw, LLVMConstInt(c->i32, (unsigned long long)i, 0), bb);
        LLVMPositionBuilderAtEnd(c->b, bb);
        LLVMBuildRet(c->b, emit_call(c, g, i, ks[i], LLVMGetParam(f, 1), LLVMGetParam(f, 2), area));
    }
}

/* vamos_<graph>(buf, sym): call each node's kernel in order. */
static void emit_graph(CG *c, const Graph *g, bool steps)
{
    LLVMValueRef *ks = calloc((size_t)g->n + 1, sizeof *ks);
    for (int i = 0; i < g->n; i++) {
        Op op = g->nodes[i].op;
        Node tmp[MAX_IN + 1];
        Graph one = slotted(g, i, tmp);
        bool none = op == OP_INPUT || op == OP_PARAM || (op == OP_XENT && g->nodes[i].attr.xent.peer);   /* its peer's kernel writes it */
        ks[i] = none ? NULL : kernel(c, &one, &tmp[MAX_IN]);
    }
    char name[64];
    snprintf(name, sizeof name, "vamos_%s", g->name);
    LLVMTypeRef fty = LLVMFunctionType(c->i32, (LLVMTypeRef[]){ c->ptr, c->ptr }, 2, 0);
    LLVMValueRef f = LLVMAddFunction(c->mod, name, fty);
    c->fn = f;
    LLVMValueRef buf = LLVMGetParam(f, 0), sym = LLVMGetParam(f, 1);
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, f, "entry"));
    LLVMValueRef area = LLVMBuildArrayAlloca(c->b, c->i64, i64c(c, AREA), "dims");
    c->ins = LLVMBuildArrayAlloca(c->b, c->ptr, i64c(c, MAX_IN), "ins");
    for (int i = 0; i < g->n; i++) {
        if (!ks[i])
            continue;
        LLVMValueRef rc = emit_call(c, g, i, ks[i], buf, sym, area);
        LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(c->ctx, f, "fail");
        LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, f, "next");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, rc, LLVMConstInt(c->i32, 0, 0), ""), fail, next);
        LLVMPositionBuilderAtEnd(c->b, fail);
        LLVMBuildRet(c->b, rc);
        LLVMPositionBuilderAtEnd(c->b, next);
    }
    LLVMBuildRet(c->b, LLVMConstInt(c->i32, 0, 0));
    if (steps)
        emit_steps(c, g, ks);
    free(ks);
}

const char *const cg_cpu_levels[] = { "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", NULL };

LLVMTargetMachineRef cg_host_machine(char *err, size_t errlen)
{
    /* for developers: VAMOS_JIT_CPU=x86-64-v3 makes the JIT's code what an
     * AVX2-only machine gets (16 vector registers, AVX2's defaults), to
     * measure it on a machine with AVX-512 */
    const char *cpu = getenv("VAMOS_JIT_CPU");
    return cg_target_machine(cpu && *cpu ? cpu : NULL, err, errlen);
}

LLVMTargetMachineRef cg_target_machine(const char *cpu_level, char *err, size_t errlen)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple(), *msg = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        snprintf(err, errlen, "no LLVM target for %s: %s", triple, msg);
        LLVMDisposeMessage(msg);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    bool host = !cpu_level || !strcmp(cpu_level, "native");
    if (!host && strncmp(triple, "x86_64", 6)) {
        snprintf(err, errlen, "--cpu %s is for x86-64 machines; this one is %s: use --cpu native", cpu_level, triple);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    char *cpu = host ? LLVMGetHostCPUName() : LLVMCreateMessage(cpu_level);
    char *features = host ? LLVMGetHostCPUFeatures() : LLVMCreateMessage("");
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive,
                                                      LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    LLVMDisposeMessage(triple);
    return tm;
}

/* VNNI's vpdpbusd on 256-bit vectors: AVX-512 VNNI with VL, or AVX-VNNI. */
static bool features_vnni(const char *f)
{
    return (strstr(f, "+avx512vnni") && strstr(f, "+avx512vl")) || strstr(f, "+avxvnni,") ||
           (strlen(f) >= 8 && !strcmp(f + strlen(f) - 8, "+avxvnni"));
}

/* AVX2 (vpmaddubsw, vpmaddwd): in the features of a host machine, or by
 * the x86-64 level named as the CPU. */
static bool target_avx2(const char *cpu, const char *f)
{
    return strstr(f, "+avx2") || !strcmp(cpu, "x86-64-v3") || !strcmp(cpu, "x86-64-v4");
}

int cg_int8_bits(const char *cpu_level)
{
    char err[256];
    LLVMTargetMachineRef tm = cpu_level ? cg_target_machine(cpu_level, err, sizeof err) : cg_host_machine(err, sizeof err);
    if (!tm)
        return 0;
    char *cpu = LLVMGetTargetMachineCPU(tm), *features = LLVMGetTargetMachineFeatureString(tm);
    int bits = features_vnni(features) ? 8 : target_avx2(cpu, features) ? 7 : 0;
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    LLVMDisposeTargetMachine(tm);
    return bits;
}

LLVMModuleRef cg_emit(LLVMContextRef ctx, LLVMTargetMachineRef tm, const Model *m,
                      const Graph *const *graphs, int ngraphs, bool steps, char *err, size_t errlen)
{
    CG c = { .ctx = ctx };
    /* the register tiles follow the target's vector registers */
    char *cpu = LLVMGetTargetMachineCPU(tm), *features = LLVMGetTargetMachineFeatureString(tm);
    bool wide = strstr(features, "+avx512f") || !strcmp(cpu, "x86-64-v4");
    sched_set_target(wide);
    c.narrow = !wide;
    c.vnni = features_vnni(features);
    c.vnni512 = wide && c.vnni && strstr(features, "+avx512vnni");
    c.avx2 = target_avx2(cpu, features);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    c.mod = LLVMModuleCreateWithNameInContext(m->name, ctx);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(c.mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(c.mod, layout);
    LLVMDisposeTargetData(layout);
    c.b = LLVMCreateBuilderInContext(ctx);
    c.i32 = LLVMInt32TypeInContext(ctx);
    c.i64 = LLVMInt64TypeInContext(ctx);
    c.f32 = LLVMFloatTypeInContext(ctx);
    c.ptr = LLVMPointerTypeInContext(ctx, 0);
    c.kernel_ty = LLVMFunctionType(c.i32, (LLVMTypeRef[]){ c.ptr, c.ptr, c.ptr, c.ptr, c.i64, c.i64 }, 6, 0);
    c.parallel_ty = LLVMFunctionType(c.i32, (LLVMTypeRef[]){ c.ptr, c.ptr, c.ptr, c.ptr, c.ptr, c.i64, c.i64 }, 7, 0);
    for (int i = 0; i < ngraphs; i++)
        emit_graph(&c, graphs[i], steps);
    LLVMDisposeBuilder(c.b);
    char *msg = NULL;
    if (LLVMVerifyModule(c.mod, LLVMReturnStatusAction, &msg)) {
        snprintf(err, errlen, "internal error: generated module does not verify: %.400s", msg);
        LLVMDisposeMessage(msg);
        LLVMDisposeModule(c.mod);
        return NULL;
    }
    LLVMDisposeMessage(msg);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(c.mod, "default<O3>", tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    const char *dump = getenv("VAMOS_DUMP_IR");   /* for developers: the optimised IR */
    if (!e && dump && *dump)
        LLVMPrintModuleToFile(c.mod, dump, NULL);
    if (e) {
        char *em = LLVMGetErrorMessage(e);
        snprintf(err, errlen, "internal error: optimisation failed: %s", em);
        LLVMDisposeErrorMessage(em);
        LLVMDisposeModule(c.mod);
        return NULL;
    }
    return c.mod;
}
