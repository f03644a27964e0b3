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

/* cc -o output obj libvamosmain.a libvamosrt.a -lm -lpthread: the
 * translator's main, then the runtime, from the runtime's folder */
static int link_exe(const char *obj, const char *output, char *err, size_t errlen)
{
    char dir[4096], lib[4200], mainlib[4300];
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
    const char *slash = strrchr(lib, '/');
    snprintf(mainlib, sizeof mainlib, "%.*slibvamosmain.a", slash ? (int)(slash - lib + 1) : 0, lib);
    if (access(mainlib, R_OK)) {
        snprintf(err, errlen, "cannot find the translator's main %s (beside the runtime library)", mainlib);
        return -1;
    }
    const char *cc = getenv("CC") ? getenv("CC") : "cc";
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot start %s: %s", cc, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execlp(cc, cc, "-o", output, obj, mainlib, lib, "-lm", "-lpthread", (char *)NULL);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        snprintf(err, errlen, "linking with %s failed (exit %d)", cc, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return -1;
    }
    return 0;
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

int aot_build(const Model *m, const Bound *w, const char *output, const char *cpu_level, char *err, size_t errlen)
{
    LLVMTargetMachineRef tm = cg_target_machine(cpu_level, err, errlen);
    if (!tm)
        return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    const Graph *graphs[] = { &m->enc, &m->dec, &m->prep, &m->step };
    LLVMModuleRef mod = cg_emit(ctx, tm, m, graphs, m->step.n > 0 ? 4 : 2, false, err, errlen);
    Blob blob = { 0 };
    int rc = -1;
    char obj[4200];
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
