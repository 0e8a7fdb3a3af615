/// A contiguous, owned block of raw little-endian bytes that travels as message payload.
///
/// The memory is either allocated here (64-byte aligned) or adopted from elsewhere (a received
/// ZeroMQ frame) together with a release closure. The transport sends a buffer zero-copy by
/// retaining it until libzmq has written it out, so a buffer must not be changed after it has
/// been handed to `send` (the fault injector that garbles payloads "in transit" does change it
/// between `WireCodec.encode` and `send`, on purpose). Not synchronised: one writer at a time.
public final class PayloadBuffer: @unchecked Sendable {
    /// First byte of the payload.
    public let baseAddress: UnsafeMutableRawPointer
    /// Number of bytes in the payload.
    public let byteCount: Int
    private let release: ((UnsafeMutableRawPointer) -> Void)?

    /// Alignment of buffers allocated here, in bytes (a cache line).
    public static let alignment = 64

    /// Allocates `byteCount` uninitialised bytes, 64-byte aligned.
    public init(byteCount: Int) {
        precondition(byteCount >= 0, "PayloadBuffer: negative byte count \(byteCount)")
        self.byteCount = byteCount
        self.baseAddress = UnsafeMutableRawPointer.allocate(
            byteCount: max(byteCount, 1), alignment: PayloadBuffer.alignment)
        self.release = nil
    }

    /// Adopts memory owned elsewhere; `release` runs once, when the buffer is freed.
    public init(adopting pointer: UnsafeMutableRawPointer, byteCount: Int,
                release: @escaping (UnsafeMutableRawPointer) -> Void) {
        self.baseAddress = pointer
        self.byteCount = byteCount
        self.release = release
    }

    /// Copies `bytes` into a new buffer.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(byteCount: bytes.count)
        if let source = bytes.baseAddress, bytes.count > 0 {
            baseAddress.copyMemory(from: source, byteCount: bytes.count)
        }
    }

    /// Copies a byte array into a new buffer.
    public convenience init(bytes: [UInt8]) {
        self.init(byteCount: bytes.count)
        bytes.withUnsafeBytes { source in
            if let pointer = source.baseAddress, source.count > 0 {
                baseAddress.copyMemory(from: pointer, byteCount: source.count)
            }
        }
    }

    /// Copies `floats` into a new buffer as little-endian fp32 (this module assumes a
    /// little-endian host, as are x86-64 and arm64).
    public convenience init(floats: [Float]) {
        self.init(byteCount: floats.count * MemoryLayout<Float>.stride)
        floats.withUnsafeBytes { source in
            if let pointer = source.baseAddress, source.count > 0 {
                baseAddress.copyMemory(from: pointer, byteCount: source.count)
            }
        }
    }

    /// A buffer sharing `count` bytes of `parent` from `offset`, keeping `parent` alive.
    public convenience init(viewing parent: PayloadBuffer, offset: Int, count: Int) {
        releaseCheck(offset >= 0 && count >= 0 && offset + count <= parent.byteCount,
                     "PayloadBuffer view \(offset)..<\(offset + count) outside 0..<\(parent.byteCount)")
        self.init(adopting: parent.baseAddress + offset, byteCount: count) { _ in
            withExtendedLifetime(parent) {}
        }
    }

    deinit {
        if let release { release(baseAddress) } else { baseAddress.deallocate() }
    }

    /// The payload as raw bytes.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: baseAddress, count: byteCount)
    }

    /// The payload as mutable raw bytes.
    public var mutableBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: baseAddress, count: byteCount)
    }

    /// The payload seen as fp32 values; requires 4-byte alignment and a multiple of 4 bytes.
    public var asFloats: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(mutableFloats)
    }

    /// The payload seen as mutable fp32 values; requires 4-byte alignment and a multiple of 4 bytes.
    public var mutableFloats: UnsafeMutableBufferPointer<Float> {
        releaseCheck(byteCount % 4 == 0 && Int(bitPattern: baseAddress) % 4 == 0,
                     "PayloadBuffer of \(byteCount) bytes is not an aligned fp32 array")
        return UnsafeMutableBufferPointer(
            start: baseAddress.assumingMemoryBound(to: Float.self), count: byteCount / 4)
    }

    /// The payload seen as 16-bit values (fp16/bf16 bit patterns); requires 2-byte alignment.
    public var asUInt16: UnsafeBufferPointer<UInt16> {
        releaseCheck(byteCount % 2 == 0 && Int(bitPattern: baseAddress) % 2 == 0,
                     "PayloadBuffer of \(byteCount) bytes is not an aligned 16-bit array")
        return UnsafeBufferPointer(
            start: baseAddress.assumingMemoryBound(to: UInt16.self), count: byteCount / 2)
    }

    /// A copy of the payload as a byte array.
    public func byteArray() -> [UInt8] { Array(bytes) }

    /// CRC32C (Castagnoli) of the payload bytes.
    public var crc32c: UInt32 { WireChecksum.crc32c(bytes) }
}

extension PayloadBuffer: Equatable {
    /// Two buffers are equal when their bytes are equal.
    public static func == (lhs: PayloadBuffer, rhs: PayloadBuffer) -> Bool {
        if lhs === rhs { return true }
        guard lhs.byteCount == rhs.byteCount else { return false }
        return lhs.bytes.elementsEqual(rhs.bytes)
    }
}

extension PayloadBuffer: CustomStringConvertible {
    /// A short summary: size and checksum.
    public var description: String {
        "PayloadBuffer(\(byteCount) bytes, crc32c 0x\(String(crc32c, radix: 16)))"
    }
}
