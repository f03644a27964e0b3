/* jit.c - ORC LLJIT execution of generated graphs (see jit.h). */
#include "jit.h"

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "passes.h"
#include "vamos/parallel.h"
#include "vamos/translate.h"

struct Jit {
    LLVMOrcLLJITRef lljit;
    vamos_graph_fn fns[4];              /* encoder, decoder, prep, step */
    vamos_step_fn steps[4];             /* the same, with jit_compile_steps only */
    Blob blob;                          /* the model as the runtime reads it (no weights) */
    vamos_model rt;
    vamos_arena arena[2];               /* encoder, decoder */
    /* packed copies of the weights marked packed (pack.c), made from the
     * weights at packed_from[i] on the first run that passes them */
    float **packed;
    const float **packed_from;
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

/* An LLJIT for the host (it takes tm) that resolves libm and the
 * runtime's vamos_parallel from this process. NULL with a message. */
static LLVMOrcLLJITRef make_lljit(LLVMTargetMachineRef tm, char *err, size_t errlen)
{
    LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm);
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
    LLVMOrcLLJITRef lljit;
    LLVMErrorRef e;
    if ((e = LLVMOrcCreateLLJIT(&lljit, builder))) {
        fail(e, "cannot create the JIT", err, errlen);
        return NULL;
    }
    LLVMOrcJITDylibRef lib = LLVMOrcLLJITGetMainJITDylib(lljit);
    LLVMOrcDefinitionGeneratorRef gen;
    if ((e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(lljit), NULL, NULL))) {
        fail(e, "cannot expose libm to the JIT", err, errlen);
        LLVMOrcDisposeLLJIT(lljit);
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(lib, gen);
    /* the runtime functions generated code calls, from this process */
    LLVMOrcCSymbolMapPair rt = {
        LLVMOrcLLJITMangleAndIntern(lljit, "vamos_parallel"),
        { (LLVMOrcExecutorAddress)(uintptr_t)&vamos_parallel,
          { LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0 } },
    };
    if ((e = LLVMOrcJITDylibDefine(lib, LLVMOrcAbsoluteSymbols(&rt, 1)))) {
        fail(e, "cannot expose the runtime to the JIT", err, errlen);
        LLVMOrcDisposeLLJIT(lljit);
        return NULL;
    }
    return lljit;
}

static Jit *compile(const Model *m, bool steps, char *err, size_t errlen)
{
    LLVMTargetMachineRef tm = cg_host_machine(err, errlen);
    if (!tm)
        return NULL;
    Jit *j = calloc(1, sizeof *j);
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    const Graph *graphs[] = { &m->enc, &m->dec, &m->prep, &m->step };
    int ngraphs = m->step.n > 0 ? 4 : 2;
    LLVMModuleRef mod = cg_emit(LLVMOrcThreadSafeContextGetContext(tsc), tm, m, graphs, ngraphs, steps, err, errlen);
    LLVMErrorRef e;
    if (!mod) {
        LLVMDisposeTargetMachine(tm);
        goto out;
    }
    if (!(j->lljit = make_lljit(tm, err, errlen))) {
        LLVMDisposeModule(mod);
        goto out;
    }
    LLVMOrcJITDylibRef lib = LLVMOrcLLJITGetMainJITDylib(j->lljit);
    if ((e = LLVMOrcLLJITAddLLVMIRModule(j->lljit, lib, LLVMOrcCreateNewThreadSafeModule(mod, tsc)))) {
        fail(e, "cannot add the module", err, errlen);
        goto out;
    }
    uintptr_t fn[4] = { 0 }, st[4] = { 0 };
    for (int i = 0; i < ngraphs; i++) {
        char name[64];
        snprintf(name, sizeof name, "vamos_%s", graphs[i]->name);
        if (lookup(j, name, &fn[i], err, errlen))
            goto out;
        snprintf(name, sizeof name, "vamos_%s_step", graphs[i]->name);
        if (steps && lookup(j, name, &st[i], err, errlen))
            goto out;
        j->fns[i] = (vamos_graph_fn)fn[i];
        j->steps[i] = (vamos_step_fn)st[i];
    }
    /* the runtime runs the graphs, as in a built translator; with steps
     * (tests) no buffer is shared, so every node's value survives a run */
    if (blob_make(m, NULL, !steps, &j->blob)) {
        snprintf(err, errlen, "out of memory for the model blob");
        goto out;
    }
    if (vamos_model_open(&j->rt, j->blob.p, j->blob.n, j->fns, err, errlen))
        goto out;
    j->packed = calloc((size_t)j->rt.nparams + 1, sizeof *j->packed);
    j->packed_from = calloc((size_t)j->rt.nparams + 1, sizeof *j->packed_from);
    if (!j->packed || !j->packed_from) {
        snprintf(err, errlen, "out of memory for the packed weights");
        goto out;
    }
    LLVMOrcDisposeThreadSafeContext(tsc);
    return j;
out:
    LLVMOrcDisposeThreadSafeContext(tsc);
    jit_free(j);
    return NULL;
}

int jit_translator(const Jit *j, const Model *m, const Bound *w, Blob *blob, vamos_model *out, char *err,
                   size_t errlen)
{
    if (blob_make(m, w, true, blob)) {
        free(blob->p);
        snprintf(err, errlen, "out of memory for the model blob");
        return -1;
    }
    if (vamos_model_open(out, blob->p, blob->n, j->fns, err, errlen)) {
        free(blob->p);
        return -1;
    }
    return 0;
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
    int k = g == &m->enc ? 0 : g == &m->dec ? 1 : g == &m->prep ? 2 : 3;
    return j->steps[k](node, buf, sym);
}

struct KernelJit {
    LLVMOrcLLJITRef lljit;
};

KernelJit *kjit_new(char *err, size_t errlen)
{
    LLVMTargetMachineRef tm = cg_host_machine(err, errlen);
    if (!tm)
        return NULL;
    KernelJit *k = calloc(1, sizeof *k);
    if (!k || !(k->lljit = make_lljit(tm, err, errlen))) {
        free(k);
        return NULL;
    }
    return k;
}

KernelCode *kjit_add(KernelJit *k, const Model *m, const Graph *g, vamos_step_fn *fn, char *err, size_t errlen)
{
    LLVMTargetMachineRef tm = cg_host_machine(err, errlen);
    if (!tm)
        return NULL;
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef mod = cg_emit(LLVMOrcThreadSafeContextGetContext(tsc), tm, m, &g, 1, true, err, errlen);
    LLVMDisposeTargetMachine(tm);
    LLVMOrcResourceTrackerRef rt = NULL;
    if (mod) {
        LLVMOrcJITDylibRef lib = LLVMOrcLLJITGetMainJITDylib(k->lljit);
        rt = LLVMOrcJITDylibCreateResourceTracker(lib);
        LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModuleWithRT(k->lljit, rt, LLVMOrcCreateNewThreadSafeModule(mod, tsc));
        char name[64];
        LLVMOrcExecutorAddress a;
        snprintf(name, sizeof name, "vamos_%s_step", g->name);
        if (e) {
            fail(e, "cannot add the module", err, errlen);
        } else if ((e = LLVMOrcLLJITLookup(k->lljit, &a, name))) {
            fail(e, "cannot compile the kernel", err, errlen);
        } else {
            *fn = (vamos_step_fn)(uintptr_t)a;
            LLVMOrcDisposeThreadSafeContext(tsc);
            return rt;
        }
        kjit_drop(rt);
    }
    LLVMOrcDisposeThreadSafeContext(tsc);
    return NULL;
}

void kjit_drop(KernelCode *code)
{
    if (!code)
        return;
    LLVMErrorRef e = LLVMOrcResourceTrackerRemove(code);
    if (e)
        LLVMConsumeError(e);
    LLVMOrcReleaseResourceTracker(code);
}

void kjit_free(KernelJit *k)
{
    if (!k)
        return;
    LLVMOrcDisposeLLJIT(k->lljit);
    free(k);
}

void jit_free(Jit *j)
{
    if (!j)
        return;
    if (j->lljit)
        LLVMOrcDisposeLLJIT(j->lljit);
    for (int i = 0; j->packed && i < j->rt.nparams; i++)   /* before the close clears nparams */
        free(j->packed[i]);
    free(j->packed);
    free(j->packed_from);
    vamos_model_close(&j->rt);
    vamos_arena_free(&j->arena[0]);
    vamos_arena_free(&j->arena[1]);
    free(j->blob.p);
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

/* A malloc'd copy of node i's value after a run. */
static Tensor copy_out(const Node *n, const void *data, const int64_t *sym)
{
    Tensor t = { .dtype = n->dtype, .shape = node_shape(n, sym) };
    size_t bytes = (size_t)rt_numel(&t.shape) * 4;
    t.data = malloc(bytes ? bytes : 1);
    if (t.data)
        memcpy(t.data, data, bytes);
    return t;
}

/* Point the runtime at the weights, packing those compiled code reads
 * packed (once per weight array). */
static int bind_params(Jit *j, const Model *m, float *const *params, char *err, size_t errlen)
{
    for (int i = 0; i < j->rt.nparams; i++) {
        const ParamInfo *p = &m->params[i];
        if (!p->packed && !p->packed_t) {
            j->rt.params[i] = params[i];
            continue;
        }
        if (j->packed_from[i] != params[i]) {
            if (!j->packed[i] && !(j->packed[i] = malloc((size_t)param_floats(p) * 4))) {
                snprintf(err, errlen, "out of memory packing weight '%s'", p->name);
                return -1;
            }
            if (pack_param(p, params[i], j->packed[i])) {
                snprintf(err, errlen, "out of memory packing weight '%s'", p->name);
                return -1;
            }
            j->packed_from[i] = params[i];
        }
        j->rt.params[i] = j->packed[i];
    }
    return 0;
}

/* Run g with the runtime's executor (runtime/translate.c), the one a
 * built translator uses. */
static int run(Jit *j, const Model *m, const Graph *g, float *const *params,
               const InterpInputs *in, Tensor *out, Tensor *all, char *err, size_t errlen)
{
    int k = g == &m->enc ? 0 : g == &m->dec ? 1 : g == &m->prep ? 2 : 3;
    const vamos_graph *rg[] = { &j->rt.enc, &j->rt.dec, &j->rt.prep, &j->rt.step };
    if ((all && !j->steps[k]) || !j->fns[k]) {
        snprintf(err, errlen, "internal error: the %s was not compiled for this", g->name);
        return -1;
    }
    if (bind_params(j, m, params, err, errlen))
        return -1;
    const void *inputs[2 + VAMOS_MAX_SYMS] = { in->tokens };
    for (int s = 0; s < MAX_SYMS && s < VAMOS_MAX_SYMS; s++)
        inputs[1 + s] = in->lengths[s];
    inputs[1 + VAMOS_MAX_SYMS] = in->memory ? in->memory->data : NULL;
    void **states = calloc((size_t)m->nstates + 1, sizeof *states);
    for (int s = 0; states && in->state && s < m->nstates; s++)
        states[s] = in->state[s] ? in->state[s]->data : NULL;
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        InputRole r = n->attr.input.role;
        if (n->op == OP_INPUT && r != IN_STATE && !(r == IN_TOKENS ? inputs[0]
                                                    : r == IN_LENGTHS ? inputs[1 + n->attr.input.sym]
                                                    : inputs[1 + VAMOS_MAX_SYMS])) {
            snprintf(err, errlen, "input '%s' of the %s was not given", n->attr.input.name, g->name);
            free(states);
            return -1;
        }
    }
    float *o;
    int64_t count;
    vamos_arena *a = &j->arena[k == 0 ? 0 : 1];
    int rc = vamos_run_graph(&j->rt, rg[k], j->fns[k], a, in->sym, inputs, states, &o, &count, err, errlen);
    free(states);
    if (rc)
        return -1;
    if (all) {
        for (int i = 0; i < g->n; i++)   /* a weight as given, not as packed (int8 panels are smaller) */
            all[i] = copy_out(&g->nodes[i], g->nodes[i].op == OP_PARAM ? params[g->nodes[i].attr.param] : a->buf[i],
                              in->sym);
    } else {
        *out = copy_out(&g->nodes[g->output], o, in->sym);
    }
    return 0;
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
