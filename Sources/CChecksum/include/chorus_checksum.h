#ifndef CHORUS_CHECKSUM_H
#define CHORUS_CHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/// CRC32C (Castagnoli) of `length` bytes, continuing from `crc` (pass 0 to start).
/// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
uint32_t chorus_crc32c(uint32_t crc, const void *data, size_t length);

/// The same CRC with a table, a byte at a time (the fallback; tests compare the two).
uint32_t chorus_crc32c_portable(uint32_t crc, const void *data, size_t length);

#endif
