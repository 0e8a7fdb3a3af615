import CChecksum

/// CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected), the checksum of headers and payloads.
///
/// Hardware-accelerated (SSE4.2 `crc32`) through `chorus_crc32c`; `crc32c("123456789")` is
/// 0xE3069283.
public enum WireChecksum {
    /// CRC32C of `bytes`, continuing from `crc` (0 to start).
    public static func crc32c(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return chorus_crc32c(crc, base, bytes.count)
    }

    /// CRC32C of a byte array.
    public static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { crc32c($0) }
    }
}
