#ifndef CHORUS_CLONES_H
#define CHORUS_CLONES_H
/* CHORUS_CLONES before a kernel: compiled for AVX-512, AVX2 and the baseline, one picked at load
   time (target_clones; GCC and Clang on x86-64, a plain function elsewhere). */
#if defined(__x86_64__) && defined(__GNUC__)
#define CHORUS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CHORUS_CLONES
#endif
#endif
