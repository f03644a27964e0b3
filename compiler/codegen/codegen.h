/* codegen.h - lower a graph to native code through the LLVM C API.
 *
 * Requires: a verified graph. Guarantees: a module, verified and optimised
 * (default<O3> for the host CPU), holding one function per graph:
 *
 *     int32_t vamos_<graph>(void *const *buf, const int64_t *sym);
 *
 * buf[i] is node i's buffer (row-major, its shape with the symbols of sym
 * substituted). The caller fills the buffers of INPUT nodes and points
 * PARAM nodes at the weights; the function computes every other node in
 * order. It returns 0, or 1 + the flat position of a token id outside its
 * embedding table. Identical kernels (same op, shapes, attributes) are
 * emitted once and shared, so six equal layers cost one layer of code.
 */
#ifndef VAMOS_CODEGEN_H
#define VAMOS_CODEGEN_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "graph.h"

typedef int32_t (*vamos_graph_fn)(void *const *buf, const int64_t *sym);

/* The host target machine (CPU name and features), for codegen and JIT. */
LLVMTargetMachineRef cg_host_machine(char *err, size_t errlen);
/* The same for an x86-64 level of cg_cpu_levels (NULL-terminated), or
 * the host's for NULL or "native" (vamos build --cpu). */
extern const char *const cg_cpu_levels[];
LLVMTargetMachineRef cg_target_machine(const char *cpu_level, char *err, size_t errlen);
/* The bits of int8 activations that code for cpu_level (NULL: the JIT's,
 * cg_host_machine) multiplies fast (pass_quantize's a8): 8 with VNNI's
 * dot products, 7 with AVX2's (vpmaddubsw), 0 without either. */
int cg_int8_bits(const char *cpu_level);

/* Emit the graphs of m into a new module in ctx, verify and optimise it.
 * With `steps`, also emit for each graph
 *     int32_t vamos_<graph>_step(int32_t node, void *const *buf, const int64_t *sym);
 * which runs node's kernel alone, so tests can check each op on the
 * reference's inputs. Returns NULL with a message on an internal error. */
LLVMModuleRef cg_emit(LLVMContextRef ctx, LLVMTargetMachineRef tm, const Model *m,
                      const Graph *const *graphs, int ngraphs, bool steps, char *err, size_t errlen);

typedef int32_t (*vamos_step_fn)(int32_t node, void *const *buf, const int64_t *sym);

#endif
