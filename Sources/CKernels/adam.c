#include "chorus_kernels.h"
#include "clones.h"

/* Built with -ffp-contract=off (Package.swift): no fused multiply-adds, so the bits are those of
   the scalar expression whatever vector width the compiler picks. target_clones compiles the
   loop for AVX-512, AVX2 and the baseline and picks one at load time. */
CHORUS_CLONES
void chorus_adam(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t count,
                 float b1, float one1, float b2, float one2, float l2, float shrink,
                 float step, float root, float eps) {
    for (size_t i = 0; i < count; i++) {
        float d = g[i] + l2 * p[i];
        float mi = b1 * m[i] + one1 * d;
        float vi = b2 * v[i] + one2 * d * d;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * shrink - step * mi / (__builtin_sqrtf(vi) / root + eps);
    }
}
