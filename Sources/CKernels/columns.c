#include "chorus_kernels.h"
#include "clones.h"

/* The collapse monitor's per-unit statistics of a dense layer's output. Units are taken BLOCK at a
   time down all the rows, their sums, squares and maxima held in registers; each unit's values
   are added in row order, so every vector width gives the same bits (built without contractions:
   Package.swift). target_clones picks AVX-512, AVX2 or the baseline at load time. */
enum { BLOCK = 32 };

CHORUS_CLONES
void chorus_column_stats(const float *restrict y, size_t rows, size_t units,
                         float *restrict sums, float *restrict squares, float *restrict maxima) {
    size_t u0 = 0;
    for (; u0 + BLOCK <= units; u0 += BLOCK) {
        float s[BLOCK], q[BLOCK], m[BLOCK];
        for (int k = 0; k < BLOCK; k++) { s[k] = 0; q[k] = 0; m[k] = -__builtin_inff(); }
        for (size_t r = 0; r < rows; r++) {
            const float *row = y + r * units + u0;
            for (int k = 0; k < BLOCK; k++) {
                float v = row[k];
                s[k] += v;
                q[k] += v * v;
                m[k] = v > m[k] ? v : m[k];  /* a NaN is never the maximum */
            }
        }
        for (int k = 0; k < BLOCK; k++) { sums[u0 + k] = s[k]; squares[u0 + k] = q[k]; maxima[u0 + k] = m[k]; }
    }
    for (size_t u = u0; u < units; u++) { sums[u] = 0; squares[u] = 0; maxima[u] = -__builtin_inff(); }
    for (size_t r = 0; r < rows; r++) {
        const float *row = y + r * units;
        for (size_t u = u0; u < units; u++) {
            float v = row[u];
            sums[u] += v;
            squares[u] += v * v;
            maxima[u] = v > maxima[u] ? v : maxima[u];
        }
    }
}

/* The model's output, row by row: per-unit Σy and Σy² over the finite values in Float64 (each
   unit's in row order: the same bits at every width), and each row's argmax among its finite
   values (the first of equals; 0 when none is finite) counted per unit. */
CHORUS_CLONES
size_t chorus_output_stats(const float *restrict y, size_t rows, size_t units,
                           double *restrict sums, double *restrict squares, long *restrict argmax_counts) {
    size_t nonfinite = 0;
    for (size_t u = 0; u < units; u++) { sums[u] = 0; squares[u] = 0; argmax_counts[u] = 0; }
    for (size_t r = 0; r < rows; r++) {
        const float *row = y + r * units;
        /* The usual row, every value finite: no per-value tests (the same sums and argmax). */
        int all_finite = 1;
        for (size_t u = 0; u < units; u++) all_finite &= __builtin_isfinite(row[u]);
        if (all_finite) {
            size_t best = 0;
            float best_value = row[0];
            for (size_t u = 0; u < units; u++) {
                double d = (double)row[u];
                sums[u] += d;
                squares[u] += d * d;
            }
            for (size_t u = 1; u < units; u++) {
                if (row[u] > best_value) { best_value = row[u]; best = u; }
            }
            argmax_counts[best] += 1;
            continue;
        }
        for (size_t u = 0; u < units; u++) {
            float v = row[u];
            int finite = __builtin_isfinite(v);
            double d = finite ? (double)v : 0.0;
            sums[u] += d;
            squares[u] += d * d;
            nonfinite += !finite;
        }
        size_t best = 0;
        for (size_t u = 1; u < units; u++) {
            float v = row[u];
            if (__builtin_isfinite(v) && (v > row[best] || !__builtin_isfinite(row[best]))) best = u;
        }
        argmax_counts[best] += 1;
    }
    return nonfinite;
}
