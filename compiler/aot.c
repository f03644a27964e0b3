/* aot.c - `vamos build`: one object file (kernels, the model blob with its
 * weights and vocabularies), linked with libvamosrt.a by the system C
 * compiler into a standalone translator. The blob format is in
 * include/vamos/model.h. */
#include "aot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen.h"
#include "vamos/model.h"

/* A growable byte buffer. */
typedef struct Buf { unsigned char *p; size_t n, cap; bool oom; } Buf;

static void put(Buf *b, const void *x, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}

static void u8(Buf *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void u32(Buf *b, uint32_t v) { put(b, &v, 4); }
static void i32(Buf *b, int32_t v) { put(b, &v, 4); }
static void u64(Buf *b, uint64_t v) { put(b, &v, 8); }
static void str(Buf *b, const char *s) { u32(b, (uint32_t)strlen(s)); put(b, s, strlen(s)); }

static void vocab(Buf *b, const Vocab *v)
{
    u32(b, (uint32_t)v->n);
    i32(b, v->eos), i32(b, v->bos), i32(b, v->unk), i32(b, v->pad);
    for (int i = 0; i < v->n; i++)
        str(b, v->words[i]);
}

static void graph(Buf *b, const Graph *g)
{
    u32(b, (uint32_t)g->n);
    i32(b, g->output);
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        int kind = n->op == OP_INPUT ? VAMOS_NODE_INPUT : n->op == OP_PARAM ? VAMOS_NODE_PARAM : VAMOS_NODE_COMPUTE;
        u8(b, (unsigned)kind), u8(b, n->dtype), u8(b, (unsigned)n->shape.rank);
        u8(b, n->op == OP_INPUT ? n->attr.input.role : 0);
        i32(b, n->op == OP_INPUT ? n->attr.input.sym : -1);
        i32(b, n->op == OP_PARAM ? n->attr.param : -1);
        for (int k = 0; k < n->shape.rank; k++) {
            u64(b, (uint64_t)n->shape.d[k].n);
            i32(b, n->shape.d[k].sym);
        }
    }
}

/* The whole blob: tables, then the weights at a 64-byte boundary. */
static int make_blob(const Model *m, const Bound *w, Buf *b)
{
    put(b, "VAMOSBLB", 8);
    u32(b, VAMOS_BLOB_VERSION), u32(b, 0);
    u64(b, vamos_weights_hash(w->w));
    size_t weights_offset_at = b->n;
    u64(b, 0);
    str(b, m->name);
    u32(b, (uint32_t)m->nsyms);
    for (int i = 0; i < m->nsyms; i++)
        u32(b, m->syms[i].role);
    vocab(b, m->src);
    vocab(b, m->tgt);
    graph(b, &m->enc);
    graph(b, &m->dec);
    u32(b, (uint32_t)m->nparams);
    uint64_t off = 0;
    for (int i = 0; i < m->nparams; i++) {
        uint64_t bytes = (uint64_t)shape_numel_const(&m->params[i].shape) * 4;
        u64(b, off), u64(b, bytes);
        off += (bytes + 63) & ~(uint64_t)63;
    }
    static const unsigned char zeros[64];
    put(b, zeros, (64 - b->n % 64) % 64);
    uint64_t wo = b->n;
    if (!b->oom)
        memcpy(b->p + weights_offset_at, &wo, 8);
    for (int i = 0; i < m->nparams; i++) {
        size_t bytes = (size_t)shape_numel_const(&m->params[i].shape) * 4;
        put(b, w->params[i], bytes);
        put(b, zeros, (64 - bytes % 64) % 64);
    }
    return b->oom ? -1 : 0;
}

/* Directory of the running vamos binary (where libvamosrt.a is built). */
static int self_dir(char *out, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", out, len - 1);
    if (n <= 0)
        return -1;
    out[n] = 0;
    char *slash = strrchr(out, '/');
    if (!slash)
        return -1;
    *slash = 0;
    return 0;
}

/* cc -o output obj libvamosrt.a -lm -lpthread */
static int link_exe(const char *obj, const char *output, char *err, size_t errlen)
{
    char dir[4096], lib[4200];
    const char *env = getenv("VAMOS_RUNTIME_LIB");
    if (env)
        snprintf(lib, sizeof lib, "%s", env);
    else if (self_dir(dir, sizeof dir) == 0)
        snprintf(lib, sizeof lib, "%s/libvamosrt.a", dir);
    else
        snprintf(lib, sizeof lib, "libvamosrt.a");
    if (access(lib, R_OK)) {
        snprintf(err, errlen, "cannot find the runtime library %s (set VAMOS_RUNTIME_LIB)", lib);
        return -1;
    }
    const char *cc = getenv("CC") ? getenv("CC") : "cc";
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot start %s: %s", cc, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execlp(cc, cc, "-o", output, obj, lib, "-lm", "-lpthread", (char *)NULL);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        snprintf(err, errlen, "linking with %s failed (exit %d)", cc, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return -1;
    }
    return 0;
}

int aot_build(const Model *m, const Bound *w, const char *output, char *err, size_t errlen)
{
    LLVMTargetMachineRef tm = cg_host_machine(err, errlen);
    if (!tm)
        return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    const Graph *graphs[] = { &m->enc, &m->dec };
    LLVMModuleRef mod = cg_emit(ctx, tm, m, graphs, 2, false, err, errlen);
    Buf blob = { 0 };
    int rc = -1;
    char obj[4200];
    snprintf(obj, sizeof obj, "%s.o", output);
    if (!mod)
        goto out;
    if (make_blob(m, w, &blob)) {
        snprintf(err, errlen, "out of memory for the model blob");
        goto out;
    }
    LLVMValueRef data = LLVMConstStringInContext2(ctx, (const char *)blob.p, blob.n, 1);
    LLVMValueRef g = LLVMAddGlobal(mod, LLVMTypeOf(data), "vamos_blob");
    LLVMSetInitializer(g, data);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetAlignment(g, 64);
    LLVMSetSection(g, ".lrodata.vamos");
    char *msg = NULL;
    if (LLVMTargetMachineEmitToFile(tm, mod, obj, LLVMObjectFile, &msg)) {
        snprintf(err, errlen, "cannot write %s: %s", obj, msg);
        LLVMDisposeMessage(msg);
        goto out;
    }
    rc = link_exe(obj, output, err, errlen);
    unlink(obj);
out:
    free(blob.p);
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return rc;
}
