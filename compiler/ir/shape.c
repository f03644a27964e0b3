/* shape.c - shape rules of the primitive ops (see shape.h). */
#include "shape.h"

/* Broadcast two shapes aligned on the right: equal dims, or a constant 1. */
bool shape_broadcast(const Shape *a, const Shape *b, Shape *out, int *bad_axis)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = a->rank - r + i, ib = b->rank - r + i;
        Dim da = ia >= 0 ? a->d[ia] : dim_const(1);
        Dim db = ib >= 0 ? b->d[ib] : dim_const(1);
        if (dim_eq(da, db) || (db.sym < 0 && db.n == 1))
            out->d[i] = da;
        else if (da.sym < 0 && da.n == 1)
            out->d[i] = db;
        else {
            *bad_axis = i;
            return false;
        }
    }
    return true;
}

bool shape_matmul(const Shape *a, const Shape *b, Shape *out, int *why)
{
    *why = 0;
    if (a->rank < 2 || b->rank < 2) {
        *why = 1;
        return false;
    }
    if (!dim_eq(a->d[a->rank - 1], b->d[b->rank - 2])) {
        *why = 2;
        return false;
    }
    Shape ba = *a, bb = *b;
    ba.rank -= 2;
    bb.rank -= 2;
    int bad;
    if (!shape_broadcast(&ba, &bb, out, &bad)) {
        *why = 3;
        return false;
    }
    out->d[out->rank++] = a->d[a->rank - 2];
    out->d[out->rank++] = b->d[b->rank - 1];
    return true;
}

/* Count each symbol's uses and the constant product of a shape. */
static void factor(const Shape *s, int sym_count[MAX_SYMS], int64_t *prod)
{
    *prod = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i].sym >= 0)
            sym_count[s->d[i].sym]++;
        else
            *prod *= s->d[i].n;
    }
}

bool shape_same_numel(const Shape *a, const Shape *b)
{
    int ca[MAX_SYMS] = { 0 }, cb[MAX_SYMS] = { 0 };
    int64_t pa, pb;
    factor(a, ca, &pa);
    factor(b, cb, &pb);
    for (int i = 0; i < MAX_SYMS; i++)
        if (ca[i] != cb[i])
            return false;
    return pa == pb;
}
