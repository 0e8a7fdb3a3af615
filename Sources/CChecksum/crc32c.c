#include "chorus_checksum.h"
#include <pthread.h>
#include <string.h>

/* CRC-32C (Castagnoli), reflected polynomial. */
#define POLY 0x82F63B78u

/* ---- Portable: one table, a byte at a time. ---- */

static uint32_t table[256];

static void init_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[i] = c;
    }
}

static pthread_once_t table_once = PTHREAD_ONCE_INIT;

uint32_t chorus_crc32c_portable(uint32_t crc, const void *data, size_t length) {
    pthread_once(&table_once, init_table);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (length--) c = table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>

/*
 * Hardware: the SSE4.2 crc32 instruction has a latency of 3 cycles and a throughput of 1 per
 * cycle, so one dependent stream runs at a third of what the unit can do. Large buffers are
 * cut into blocks of 3 × LONG (then 3 × SHORT) bytes whose thirds are three independent
 * streams; the three register values are combined by "appending zeros": the CRC register is
 * linear, so reg(A‖B) = shift_|B|(reg(A)) ⊕ reg₀(B), where shift_n applies n zero bytes and
 * is a fixed 32×32 GF(2) matrix, tabulated per byte of its operand (4 × 256 entries).
 * This is Mark Adler's construction (crc32c.c, zlib licence, 2013).
 */
#define LONG 8192
#define SHORT 256

static uint32_t zeros_long[4][256];
static uint32_t zeros_short[4][256];

static uint32_t gf2_times(const uint32_t *matrix, uint32_t vector) {
    uint32_t sum = 0;
    while (vector) {
        if (vector & 1) sum ^= *matrix;
        vector >>= 1;
        matrix++;
    }
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *matrix) {
    for (int n = 0; n < 32; n++) square[n] = gf2_times(matrix, matrix[n]);
}

/* The operator that applies `length` zero bytes to a CRC register; `length` a power of two. */
static void zeros_operator(uint32_t *even, size_t length) {
    uint32_t odd[32];
    odd[0] = POLY; /* one zero bit */
    uint32_t row = 1;
    for (int n = 1; n < 32; n++) { odd[n] = row; row <<= 1; }
    gf2_square(even, odd); /* two zero bits */
    gf2_square(odd, even); /* four zero bits */
    /* Each square doubles the count: the first gives one zero byte (in even). */
    do {
        gf2_square(even, odd);
        length >>= 1;
        if (length == 0) return;
        gf2_square(odd, even);
        length >>= 1;
    } while (length);
    memcpy(even, odd, sizeof(odd));
}

static void zeros_table(uint32_t zeros[4][256], size_t length) {
    uint32_t op[32];
    zeros_operator(op, length);
    for (uint32_t n = 0; n < 256; n++) {
        zeros[0][n] = gf2_times(op, n);
        zeros[1][n] = gf2_times(op, n << 8);
        zeros[2][n] = gf2_times(op, n << 16);
        zeros[3][n] = gf2_times(op, n << 24);
    }
}

static inline uint32_t shift(uint32_t zeros[4][256], uint32_t crc) {
    return zeros[0][crc & 0xFF] ^ zeros[1][(crc >> 8) & 0xFF] ^ zeros[2][(crc >> 16) & 0xFF] ^ zeros[3][crc >> 24];
}

static int has_sse42 = 0;

static void init_hardware(void) {
    unsigned a, b, c, d;
    has_sse42 = (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2)) ? 1 : 0;
    zeros_table(zeros_long, LONG);
    zeros_table(zeros_short, SHORT);
}

static pthread_once_t hardware_once = PTHREAD_ONCE_INIT;

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Blocks of 3 × `block` bytes: three independent streams, then combined by shifting. */
__attribute__((target("sse4.2")))
static inline uint64_t three_streams(uint64_t crc0, const uint8_t **cursor, size_t *remaining, size_t block,
                                     uint32_t zeros[4][256]) {
    const uint8_t *next = *cursor;
    size_t length = *remaining;
    while (length >= 3 * block) {
        uint64_t crc1 = 0, crc2 = 0;
        const uint8_t *end = next + block;
        do {
            crc0 = _mm_crc32_u64(crc0, load64(next));
            crc1 = _mm_crc32_u64(crc1, load64(next + block));
            crc2 = _mm_crc32_u64(crc2, load64(next + 2 * block));
            next += 8;
        } while (next < end);
        crc0 = shift(zeros, (uint32_t)crc0) ^ (uint32_t)crc1;
        crc0 = shift(zeros, (uint32_t)crc0) ^ (uint32_t)crc2;
        next += 2 * block;
        length -= 3 * block;
    }
    *cursor = next;
    *remaining = length;
    return crc0;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *next, size_t length) {
    uint64_t crc0 = ~crc;
    while (length && ((uintptr_t)next & 7) != 0) { crc0 = _mm_crc32_u8((uint32_t)crc0, *next); next++; length--; }
    crc0 = three_streams(crc0, &next, &length, LONG, zeros_long);
    crc0 = three_streams(crc0, &next, &length, SHORT, zeros_short);
    while (length >= 8) { crc0 = _mm_crc32_u64(crc0, load64(next)); next += 8; length -= 8; }
    while (length > 0) { crc0 = _mm_crc32_u8((uint32_t)crc0, *next); next++; length--; }
    return ~(uint32_t)crc0;
}
#endif

uint32_t chorus_crc32c(uint32_t crc, const void *data, size_t length) {
#if defined(__x86_64__)
    pthread_once(&hardware_once, init_hardware);
    if (has_sse42) return crc32c_hw(crc, (const uint8_t *)data, length);
#endif
    return chorus_crc32c_portable(crc, data, length);
}
