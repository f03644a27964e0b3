/* fuse_util.h - what the fusion passes (fuse_attention.c, fuse_linear.c,
 * fuse_norm.c) share: matching a node by op and readers, and the driver
 * that finds the groups and rebuilds the graph with each replaced.
 */
#ifndef VAMOS_FUSE_UTIL_H
#define VAMOS_FUSE_UTIL_H

#include "graph.h"

struct Arena;

/* Node x, when it has op `op` and exactly n readers; else NULL. */
const Node *fuse_node_if(const Graph *g, const int *uses, int x, Op op, int n);

/* The input of binary node n other than x, or -1 if neither is x. */
int fuse_other(const Node *n, int x);

/* A fusion pass's two halves. match: does node i end a group? If so it
 * fills *match (the pass's own struct) and marks the group's other nodes
 * in gone. emit: add the fused node for that match to out (with any node
 * it needs first), inputs renamed through remap; returns its id. */
typedef bool (*FuseMatch)(const Graph *g, const int *uses, int i, void *match, bool *gone);
typedef int (*FuseEmit)(struct Arena *a, Graph *out, const Graph *g, int end, const void *match, const int *remap);

/* Run a fusion pass: nodes are tried as group ends from the last to the
 * first, skipping those already in a group (so a longer group that ends
 * later, a linear's relu, claims its nodes first); then g is rebuilt with
 * the groups' nodes dropped and each end replaced by emit's node. g itself
 * when nothing matched. match_size: the size of the pass's match struct. */
Graph fuse_run(struct Arena *a, const Graph *g, size_t match_size, FuseMatch match, FuseEmit emit);

#endif
