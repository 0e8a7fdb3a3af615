import CChecksum

/// Fingerprints that workers compare with the coordinator's when they join, to catch differing data.
///
/// The header hashed before the data is, as little-endian Int64s: `count`, `exampleShape.count`,
/// then each dimension. Floats are hashed as their in-memory (little-endian IEEE-754) bytes.
extension Dataset {
    /// `CRC32C(header ‖ feature bytes) << 32 | CRC32C(header ‖ label bytes)`.
    public func fingerprint() -> UInt64 {
        let header = headerChecksum(0)
        return UInt64(crc32c(features, continuing: header)) << 32 | UInt64(crc32c(labels, continuing: header))
    }

    /// `CRC32C(header ‖ feature bytes ‖ label bytes)`.
    public func checksum() -> UInt32 {
        crc32c(labels, continuing: crc32c(features, continuing: headerChecksum(0)))
    }

    private func headerChecksum(_ start: UInt32) -> UInt32 {
        let words = ([count, exampleShape.count] + exampleShape).map { Int64($0).littleEndian }
        return words.withUnsafeBytes { chorus_crc32c(start, $0.baseAddress, $0.count) }
    }
}

extension DataSplit {
    /// `train.checksum() << 32 | test.checksum()`: changes when any count, shape, feature or label byte changes.
    public func fingerprint() -> UInt64 {
        UInt64(train.checksum()) << 32 | UInt64(test.checksum())
    }
}

private func crc32c(_ values: [Float], continuing crc: UInt32) -> UInt32 {
    values.withUnsafeBytes { chorus_crc32c(crc, $0.baseAddress, $0.count) }
}
