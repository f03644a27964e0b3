/* jit.c - ORC LLJIT execution of generated graphs (see jit.h). */
#include "jit.h"

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <stdlib.h>
#include <string.h>

#include "vamos/parallel.h"

struct Jit {
    LLVMOrcLLJITRef lljit;
    vamos_graph_fn enc, dec;
    vamos_step_fn enc_step, dec_step;   /* with jit_compile_steps only */
};

static int fail(LLVMErrorRef e, const char *what, char *err, size_t errlen)
{
    char *m = LLVMGetErrorMessage(e);
    snprintf(err, errlen, "%s: %s", what, m);
    LLVMDisposeErrorMessage(m);
    return -1;
}

/* The address of a generated function (compiling it on first lookup). */
static int lookup(Jit *j, const char *name, uintptr_t *out, char *err, size_t errlen)
{
    LLVMOrcExecutorAddress a;
    LLVMErrorRef e = LLVMOrcLLJITLookup(j->lljit, &a, name);
    if (e) {
        char what[96];
        snprintf(what, sizeof what, "cannot compile %s", name);
        return fail(e, what, err, errlen);
    }
    *out = (uintptr_t)a;
    return 0;
}

static Jit *compile(const Model *m, bool steps, char *err, size_t errlen)
{
    LLVMTargetMachineRef tm = cg_host_machine(err, errlen);
    if (!tm)
        return NULL;
    Jit *j = calloc(1, sizeof *j);
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    const Graph *graphs[] = { &m->enc, &m->dec };
    LLVMModuleRef mod = cg_emit(LLVMOrcThreadSafeContextGetContext(tsc), tm, m, graphs, 2, steps, err, errlen);
    /* the JIT gets a target machine builder of its own for the same host */
    LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm);
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
    LLVMErrorRef e;
    if (!mod) {
        LLVMOrcDisposeLLJITBuilder(builder);
        goto out;
    }
    if ((e = LLVMOrcCreateLLJIT(&j->lljit, builder))) {
        fail(e, "cannot create the JIT", err, errlen);
        LLVMDisposeModule(mod);
        goto out;
    }
    LLVMOrcJITDylibRef lib = LLVMOrcLLJITGetMainJITDylib(j->lljit);
    LLVMOrcDefinitionGeneratorRef gen;
    if ((e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->lljit), NULL, NULL))) {
        fail(e, "cannot expose libm to the JIT", err, errlen);
        LLVMDisposeModule(mod);
        goto out;
    }
    LLVMOrcJITDylibAddGenerator(lib, gen);
    /* the runtime functions generated code calls, from this process */
    LLVMOrcCSymbolMapPair rt = {
        LLVMOrcLLJITMangleAndIntern(j->lljit, "vamos_parallel"),
        { (LLVMOrcExecutorAddress)(uintptr_t)&vamos_parallel,
          { LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0 } },
    };
    if ((e = LLVMOrcJITDylibDefine(lib, LLVMOrcAbsoluteSymbols(&rt, 1)))) {
        fail(e, "cannot expose the runtime to the JIT", err, errlen);
        LLVMDisposeModule(mod);
        goto out;
    }
    if ((e = LLVMOrcLLJITAddLLVMIRModule(j->lljit, lib, LLVMOrcCreateNewThreadSafeModule(mod, tsc)))) {
        fail(e, "cannot add the module", err, errlen);
        goto out;
    }
    uintptr_t enc, dec, enc_step = 0, dec_step = 0;
    if (lookup(j, "vamos_encoder", &enc, err, errlen) || lookup(j, "vamos_decoder", &dec, err, errlen) ||
        (steps && (lookup(j, "vamos_encoder_step", &enc_step, err, errlen) ||
                   lookup(j, "vamos_decoder_step", &dec_step, err, errlen))))
        goto out;
    j->enc = (vamos_graph_fn)enc, j->dec = (vamos_graph_fn)dec;
    j->enc_step = (vamos_step_fn)enc_step, j->dec_step = (vamos_step_fn)dec_step;
    LLVMOrcDisposeThreadSafeContext(tsc);
    return j;
out:
    LLVMOrcDisposeThreadSafeContext(tsc);
    jit_free(j);
    return NULL;
}

Jit *jit_compile(const Model *m, char *err, size_t errlen)
{
    return compile(m, false, err, errlen);
}

Jit *jit_compile_steps(const Model *m, char *err, size_t errlen)
{
    return compile(m, true, err, errlen);
}

int32_t jit_step(Jit *j, const Model *m, const Graph *g, int node, void *const *buf, const int64_t *sym)
{
    return (g == &m->enc ? j->enc_step : j->dec_step)(node, buf, sym);
}

void jit_free(Jit *j)
{
    if (!j)
        return;
    if (j->lljit)
        LLVMOrcDisposeLLJIT(j->lljit);
    free(j);
}

/* Concrete shape of node n. */
static rt_shape node_shape(const Node *n, const int64_t *sym)
{
    rt_shape s = { .rank = n->shape.rank };
    for (int k = 0; k < n->shape.rank; k++)
        s.dim[k] = n->shape.d[k].sym >= 0 ? sym[n->shape.d[k].sym] : n->shape.d[k].n;
    return s;
}

static int run(Jit *j, const Model *m, const Graph *g, float *const *params,
               const InterpInputs *in, Tensor *out, Tensor *all, char *err, size_t errlen)
{
    void **buf = calloc((size_t)g->n + 1, sizeof *buf);
    int64_t sym[MAX_SYMS] = { 0 };
    memcpy(sym, in->sym, sizeof sym);
    int rc = buf ? 0 : -1;
    for (int i = 0; i < g->n && rc == 0; i++) {
        const Node *n = &g->nodes[i];
        if (n->op == OP_PARAM) {
            buf[i] = params[n->attr.param];
            continue;
        }
        int64_t count = 1;
        for (int k = 0; k < n->shape.rank; k++)
            count *= n->shape.d[k].sym >= 0 ? sym[n->shape.d[k].sym] : n->shape.d[k].n;
        buf[i] = malloc((size_t)(count ? count : 1) * 4);
        if (!buf[i]) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        if (n->op == OP_INPUT) {
            const void *src = n->attr.input.role == IN_TOKENS ? (const void *)in->tokens
                            : n->attr.input.role == IN_LENGTHS ? (const void *)in->lengths[n->attr.input.sym]
                            : in->memory ? in->memory->data : NULL;
            if (!src) {
                snprintf(err, errlen, "input '%s' of the %s was not given", n->attr.input.name, g->name);
                rc = -1;
                break;
            }
            memcpy(buf[i], src, (size_t)count * 4);
        }
    }
    if (rc == 0) {
        int32_t bad = (g == &m->enc ? j->enc : j->dec)(buf, sym);
        if (bad) {
            snprintf(err, errlen, "a token id at position %d is outside its embedding table", bad - 1);
            rc = -1;
        }
    }
    if (rc == 0 && all) {
        for (int i = 0; i < g->n; i++) {
            all[i].shape = node_shape(&g->nodes[i], sym);
            all[i].dtype = g->nodes[i].dtype;
            size_t bytes = (size_t)rt_numel(&all[i].shape) * 4;
            all[i].data = malloc(bytes ? bytes : 1);
            memcpy(all[i].data, buf[i], bytes);
        }
    } else if (rc == 0) {
        const Node *o = &g->nodes[g->output];
        out->dtype = o->dtype;
        out->shape.rank = o->shape.rank;
        for (int k = 0; k < o->shape.rank; k++)
            out->shape.dim[k] = o->shape.d[k].sym >= 0 ? sym[o->shape.d[k].sym] : o->shape.d[k].n;
        if (o->op == OP_PARAM) {
            size_t bytes = (size_t)rt_numel(&out->shape) * 4;
            out->data = malloc(bytes ? bytes : 1);
            memcpy(out->data, buf[g->output], bytes);
        } else {
            out->data = buf[g->output];
            buf[g->output] = NULL;
        }
    }
    for (int i = 0; buf && i < g->n; i++)
        if (g->nodes[i].op != OP_PARAM)
            free(buf[i]);
    free(buf);
    return rc;
}

int jit_run(Jit *j, const Model *m, const Graph *g, float *const *params,
            const InterpInputs *in, Tensor *out, char *err, size_t errlen)
{
    return run(j, m, g, params, in, out, NULL, err, errlen);
}

int jit_run_all(Jit *j, const Model *m, const Graph *g, float *const *params,
                const InterpInputs *in, Tensor *all, char *err, size_t errlen)
{
    return run(j, m, g, params, in, NULL, all, err, errlen);
}
