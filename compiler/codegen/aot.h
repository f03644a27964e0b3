/* aot.h - build a standalone translator executable from a model and its
 * weights (see include/vamos/model.h for what the executable carries). */
#ifndef VAMOS_AOT_H
#define VAMOS_AOT_H

#include "compile.h"

/* Write the executable `output`, its code for this machine's CPU
 * (cpu_level NULL or "native") or an x86-64 level (cg_cpu_levels); it
 * checks at start that its CPU can run that code. Returns 0, or -1 with
 * a message. */
int aot_build(const Model *m, const Bound *w, const char *output, const char *cpu_level, char *err, size_t errlen);

#endif
