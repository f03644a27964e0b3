/* aot.h - build a standalone translator executable from a model and its
 * weights (see include/vamos/model.h for what the executable carries). */
#ifndef VAMOS_AOT_H
#define VAMOS_AOT_H

#include "compile.h"

/* What vamos build writes: a translator, or (--lib) the model as an
 * object file, a static library or a shared library (with the runtime)
 * for programs that link it (include/vamos/vamos.h). */
typedef enum AotKind { AOT_EXE, AOT_OBJECT, AOT_STATIC, AOT_SHARED } AotKind;

typedef struct AotOptions {
    const char *output;
    const char *cpu_level;   /* NULL or "native": this machine's CPU; or an x86-64 level (cg_cpu_levels) */
    const char *prefix;      /* of every exported symbol; NULL: "vamos" (a translator's) */
    const char *source_lang, *target_lang;   /* language codes the model carries, or NULL */
    AotKind kind;
} AotOptions;

/* Is p a prefix for C symbols (an identifier of at most 64 characters)? */
bool aot_prefix_ok(const char *p);

/* Write ao->output, its code for ao->cpu_level; the code checks at start
 * that its CPU can run it. Returns 0, or -1 with a message. */
int aot_build(const Model *m, const Bound *w, const AotOptions *ao, char *err, size_t errlen);

#endif
