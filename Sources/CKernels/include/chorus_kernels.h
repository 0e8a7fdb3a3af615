#ifndef CHORUS_KERNELS_H
#define CHORUS_KERNELS_H
#include <stddef.h>

/// One Adam/AdamW step over `count` elements, element by element exactly as PyTorch's
/// (non-fused) Adam computes it, in IEEE single precision without contractions:
///   d = g + l2·p;  m = b1·m + one1·d;  v = b2·v + (one2·d)·d;
///   p = p·shrink − (step·m) / (√v / root + eps).
/// Vectorized for the widest instruction set the CPU has (chosen at run time); every width
/// gives the same bits.
void chorus_adam(float *p, const float *g, float *m, float *v, size_t count,
                 float b1, float one1, float b2, float one2, float l2, float shrink,
                 float step, float root, float eps);

/// Per-unit Σy, Σy² and max y over the `rows` rows of a row-major `rows × units` matrix (a dense
/// layer's output), each unit's values added in row order (the same bits at every vector width);
/// a NaN is never taken as the maximum (an all-NaN unit's is −∞).
void chorus_column_stats(const float *y, size_t rows, size_t units, float *sums, float *squares, float *maxima);

/// A model output's per-unit Σy and Σy² over its finite values in Float64 (row order), and per unit
/// how many rows have their argmax there (among the row's finite values, the first of equals; unit
/// 0 when none is finite). Returns how many values are not finite.
size_t chorus_output_stats(const float *y, size_t rows, size_t units, double *sums, double *squares, long *argmax_counts);

/// Shared-memory slot ownership (`SharedGradients`): `owners[i]` is 0 for a free slot, else the
/// owner's id (a worker's pid). Claims the first free slot from `start` on (atomically 0 → owner)
/// and returns its index, or -1 when all `count` are taken.
int chorus_slot_claim(unsigned int *owners, int count, unsigned int owner, int start);
/// Frees slot `index` if `owner` holds it (atomically owner → 0); returns 1 if it did.
int chorus_slot_release(unsigned int *owners, int index, unsigned int owner);
/// Hands slot `index` from `from` to `to` if `from` holds it (atomically); returns 1 if it did.
int chorus_slot_transfer(unsigned int *owners, int index, unsigned int from, unsigned int to);
/// The current owner of slot `index` (0: free).
unsigned int chorus_slot_owner(const unsigned int *owners, int index);

#endif
