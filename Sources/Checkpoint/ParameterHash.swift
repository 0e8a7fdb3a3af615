import Crypto

/// SHA-256 over parameters as little-endian Float32 bytes, fed in parameter order: the
/// run's `params_sha256`. Equal parameters give equal digests on every host.
public struct ParameterHasher {
    private var hasher = SHA256()

    /// Creates an empty hasher.
    public init() {}

    /// Appends the little-endian bytes of `values`.
    public mutating func update(_ values: UnsafeBufferPointer<Float>) {
        #if _endian(little)
        hasher.update(bufferPointer: UnsafeRawBufferPointer(values))
        #else
        for value in values {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { hasher.update(bufferPointer: $0) }
        }
        #endif
    }

    /// Appends the little-endian bytes of `values`.
    public mutating func update(_ values: [Float]) {
        values.withUnsafeBufferPointer { update($0) }
    }

    /// The digest as 64 lowercase hex digits.
    public func finalize() -> String {
        hasher.finalize().map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

/// SHA-256 (hex) of the concatenated little-endian Float32 bytes of `tensors`, in the given order.
public func parametersSHA256(_ tensors: [[Float]]) -> String {
    var hasher = ParameterHasher()
    for tensor in tensors { hasher.update(tensor) }
    return hasher.finalize()
}
