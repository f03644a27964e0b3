/* shape.h - shape rules of the primitive ops, on symbolic shapes.
 *
 * Each rule computes an output shape or says why it cannot; the caller (the
 * elaborator) turns the reason into a diagnostic with both shapes and where
 * each came from.
 */
#ifndef VAMOS_SHAPE_H
#define VAMOS_SHAPE_H

#include <stdbool.h>

#include "graph.h"

/* numpy broadcasting; on failure *bad_axis is the output axis that clashed */
bool shape_broadcast(const Shape *a, const Shape *b, Shape *out, int *bad_axis);
/* (..., M, K) @ (..., K, N); *why: 0 ok, 1 rank < 2, 2 K differs, 3 batch dims */
bool shape_matmul(const Shape *a, const Shape *b, Shape *out, int *why);
/* same number of elements, counting symbols as factors */
bool shape_same_numel(const Shape *a, const Shape *b);

#endif
