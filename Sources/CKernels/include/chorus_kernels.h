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

#endif
