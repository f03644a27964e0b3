/* fuse_util.h - what the fusion passes (fuse.c, fuse_linear.c,
 * fuse_norm.c) share: counting readers, matching a node by op and
 * readers, and rebuilding a graph with matched groups replaced.
 */
#ifndef VAMOS_FUSE_UTIL_H
#define VAMOS_FUSE_UTIL_H

#include "graph.h"

struct Arena;

/* Readers of each node (an input slot each; the output counts once). */
int *fuse_uses(struct Arena *a, const Graph *g);

/* Node x, when it has op `op` and exactly n readers; else NULL. */
const Node *fuse_node_if(const Graph *g, const int *uses, int x, Op op, int n);

/* The input of binary node n other than x, or -1 if neither is x. */
int fuse_other(const Node *n, int x);

bool fuse_same_shape(const Shape *a, const Shape *b);

/* Add the fused node that replaces the group ending at node `end` of g to
 * out (with any node it needs first); inputs are renamed through remap.
 * Returns its id. */
typedef int (*FuseEmit)(struct Arena *a, Graph *out, const Graph *g, int end, const int *remap, void *ctx);

/* g with every node marked gone dropped and every node marked as a
 * group's end replaced by emit's node. */
Graph fuse_rewrite(struct Arena *a, const Graph *g, const bool *gone, const bool *is_end, FuseEmit emit, void *ctx);

#endif
