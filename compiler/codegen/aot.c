/* aot.c - `vamos build`: one object file (kernels, the model blob with its
 * weights and vocabularies), linked with libvamosmain.a and libvamosrt.a
 * by the system C compiler into a standalone translator, or (--lib) kept
 * as an object, archived as a static library or linked with the runtime
 * into a shared one. Its symbols are PREFIX_encoder, PREFIX_blob, ... and
 * the descriptor PREFIX_linked (include/vamos/vamos.h); a translator's
 * prefix is "vamos". The blob format is in include/vamos/model.h. */
#include "aot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blob.h"
#include "codegen.h"

/* Directory of the running vamos binary (where libvamosrt.a and
 * libvamosmain.a are built). */
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

/* Run argv (argv[0] on the PATH) and wait; -1 with a message unless it
 * exits 0. */
static int run_tool(char *const *argv, char *err, size_t errlen)
{
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        snprintf(err, errlen, "%s %s failed (exit %d)%s", argv[0], argv[1], code,
                 code == 127 ? ": is it installed?" : "");
        return -1;
    }
    return 0;
}

/* The output from obj: an executable (cc obj libvamosmain.a libvamosrt.a:
 * the translator's main, then the runtime), a static library (ar) or a
 * shared library (cc -shared obj and all of libvamosrt.a). */
static int link_output(const char *obj, const char *output, AotKind kind, char *err, size_t errlen)
{
    char dir[4096], lib[4200], mainlib[4300];
    const char *env = getenv("VAMOS_RUNTIME_LIB");
    if (env)
        snprintf(lib, sizeof lib, "%s", env);
    else if (self_dir(dir, sizeof dir) == 0) {   /* the build tree, else an installed ../lib */
        snprintf(lib, sizeof lib, "%s/libvamosrt.a", dir);
        if (access(lib, R_OK))
            snprintf(lib, sizeof lib, "%s/../lib/libvamosrt.a", dir);
    }
    else
        snprintf(lib, sizeof lib, "libvamosrt.a");
    if (access(lib, R_OK)) {
        snprintf(err, errlen, "cannot find the runtime library %s (set VAMOS_RUNTIME_LIB)", lib);
        return -1;
    }
    const char *slash = strrchr(lib, '/');
    snprintf(mainlib, sizeof mainlib, "%.*slibvamosmain.a", slash ? (int)(slash - lib + 1) : 0, lib);
    if (kind == AOT_EXE && access(mainlib, R_OK)) {
        snprintf(err, errlen, "cannot find the translator's main %s (beside the runtime library)", mainlib);
        return -1;
    }
    char *cc = getenv("CC") ? getenv("CC") : "cc", *ar = getenv("AR") ? getenv("AR") : "ar";
    if (kind == AOT_STATIC) {
        unlink(output);   /* ar adds to an existing archive */
        return run_tool((char *[]){ ar, "rcs", (char *)output, (char *)obj, NULL }, err, errlen);
    }
    if (kind == AOT_SHARED)
        return run_tool((char *[]){ cc, "-shared", "-o", (char *)output, (char *)obj, "-Wl,--whole-archive", lib,
                                    "-Wl,--no-whole-archive", "-lm", "-lpthread", NULL },
                        err, errlen);   /* the whole runtime: the program calls vamos_open, the model does not */
    return run_tool((char *[]){ cc, "-o", (char *)output, (char *)obj, mainlib, lib, "-lm", "-lpthread", NULL },
                    err, errlen);
}

/* vamos_cpu: what the translator's code needs (runtime/cpu.c). */
static void add_cpu_spec(LLVMContextRef ctx, LLVMModuleRef mod, const char *cpu_level)
{
    char *features = NULL;
    if (!cpu_level || !strcmp(cpu_level, "native"))
        features = LLVMGetHostCPUFeatures();
    size_t n = (features ? strlen(features) : 0) + 64;
    char *spec = malloc(n);
    if (spec)   /* else "": the translator checks nothing */
        snprintf(spec, n, "%s%s", features ? "native:" : cpu_level, features ? features : "");
    LLVMValueRef s = LLVMConstStringInContext2(ctx, spec ? spec : "", spec ? strlen(spec) : 0, 0);
    LLVMValueRef g = LLVMAddGlobal(mod, LLVMTypeOf(s), "vamos_cpu");
    LLVMSetInitializer(g, s);
    LLVMSetGlobalConstant(g, 1);
    free(spec);
    LLVMDisposeMessage(features);
}

/* Name the module's exported symbols PREFIX_* and add the descriptor
 * PREFIX_linked (vamos_linked_model) pointing at them. */
static LLVMValueRef const_string(LLVMContextRef ctx, LLVMModuleRef mod, const char *name, const char *text)
{
    LLVMValueRef s = LLVMConstStringInContext2(ctx, text, strlen(text), 0);
    LLVMValueRef g = LLVMAddGlobal(mod, LLVMTypeOf(s), name);
    LLVMSetInitializer(g, s);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    return g;
}

static void add_linked(LLVMContextRef ctx, LLVMModuleRef mod, const AotOptions *ao, const char *prefix)
{
    static const char *const parts[] = { "blob", "cpu", "encoder", "decoder", "prep", "step" };
    LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0);
    LLVMValueRef fields[8];
    char name[256];
    for (int k = 0; k < 6; k++) {
        char old[64];
        snprintf(old, sizeof old, "vamos_%s", parts[k]);
        snprintf(name, sizeof name, "%s_%s", prefix, parts[k]);
        LLVMValueRef v = k < 2 ? LLVMGetNamedGlobal(mod, old) : LLVMGetNamedFunction(mod, old);
        if (v)
            LLVMSetValueName2(v, name, strlen(name));
        fields[k] = v ? v : LLVMConstNull(ptr);
    }
    fields[6] = ao->source_lang ? const_string(ctx, mod, "source_lang", ao->source_lang) : LLVMConstNull(ptr);
    fields[7] = ao->target_lang ? const_string(ctx, mod, "target_lang", ao->target_lang) : LLVMConstNull(ptr);
    LLVMValueRef init = LLVMConstStructInContext(ctx, fields, 8, 0);
    snprintf(name, sizeof name, "%s_linked", prefix);
    LLVMValueRef g = LLVMAddGlobal(mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    if (ao->kind == AOT_SHARED) {   /* vamos_library: the descriptor under a name dlsym() knows */
        LLVMValueRef lib = LLVMAddGlobal(mod, ptr, "vamos_library");
        LLVMSetInitializer(lib, g);
        LLVMSetGlobalConstant(lib, 1);
    }
}

bool aot_prefix_ok(const char *p)
{
    if (!p || !*p || strlen(p) > 64 || !(p[0] == '_' || ((p[0] | 32) >= 'a' && (p[0] | 32) <= 'z')))
        return false;
    for (const char *c = p; *c; c++)
        if (!(*c == '_' || (*c >= '0' && *c <= '9') || ((*c | 32) >= 'a' && (*c | 32) <= 'z')))
            return false;
    return true;
}

int aot_build(const Model *m, const Bound *w, const AotOptions *ao, char *err, size_t errlen)
{
    const char *output = ao->output, *cpu_level = ao->cpu_level;
    const char *prefix = ao->prefix ? ao->prefix : "vamos";
    LLVMTargetMachineRef tm = cg_target_machine(cpu_level, err, errlen);
    if (!tm)
        return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    const Graph *graphs[] = { &m->enc, &m->dec, &m->prep, &m->step };
    LLVMModuleRef mod = cg_emit(ctx, tm, m, graphs, m->step.n > 0 ? 4 : 2, false, err, errlen);
    Blob blob = { 0 };
    int rc = -1;
    char obj[4200];
    if (ao->kind == AOT_OBJECT)
        snprintf(obj, sizeof obj, "%s", output);
    else
        snprintf(obj, sizeof obj, "%s.o", output);
    if (!mod)
        goto out;
    if (blob_make(m, w, true, &blob)) {
        snprintf(err, errlen, "out of memory for the model blob");
        goto out;
    }
    LLVMValueRef data = LLVMConstStringInContext2(ctx, (const char *)blob.p, blob.n, 1);
    LLVMValueRef g = LLVMAddGlobal(mod, LLVMTypeOf(data), "vamos_blob");
    LLVMSetInitializer(g, data);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetAlignment(g, 64);
    LLVMSetSection(g, ".lrodata.vamos");
    add_cpu_spec(ctx, mod, cpu_level);
    add_linked(ctx, mod, ao, prefix);
    char *msg = NULL;
    if (LLVMTargetMachineEmitToFile(tm, mod, obj, LLVMObjectFile, &msg)) {
        snprintf(err, errlen, "cannot write %s: %s", obj, msg);
        LLVMDisposeMessage(msg);
        goto out;
    }
    if (ao->kind == AOT_OBJECT) {
        rc = 0;
    } else {
        rc = link_output(obj, output, ao->kind, err, errlen);
        unlink(obj);
    }
out:
    free(blob.p);
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return rc;
}
