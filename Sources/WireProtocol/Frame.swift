/// One ZeroMQ message part: a byte range of a `PayloadBuffer`, shared, not copied.
///
/// Outgoing frames point into the header bytes or into a payload; incoming frames point into
/// the memory libzmq received them in. Either way the buffer stays alive as long as the frame.
public struct Frame: Sendable {
    /// The buffer holding the bytes.
    public let buffer: PayloadBuffer
    /// Offset of the first byte in `buffer`.
    public let offset: Int
    /// Number of bytes.
    public let count: Int

    /// A frame covering `count` bytes of `buffer` from `offset`.
    public init(buffer: PayloadBuffer, offset: Int = 0, count: Int? = nil) {
        let length = count ?? (buffer.byteCount - offset)
        precondition(offset >= 0 && length >= 0 && offset + length <= buffer.byteCount,
                     "Frame \(offset)..<\(offset + length) outside buffer of \(buffer.byteCount) bytes")
        self.buffer = buffer
        self.offset = offset
        self.count = length
    }

    /// A frame holding a copy of `bytes`.
    public init(bytes: [UInt8]) {
        self.init(buffer: PayloadBuffer(bytes: bytes))
    }

    /// The frame's bytes.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: buffer.baseAddress + offset, count: count)
    }

    /// A copy of the frame's bytes.
    public var byteArray: [UInt8] { Array(bytes) }
}

/// Splitting big payloads into frames and joining them back.
///
/// libzmq resets its heartbeat timers only when a whole frame has arrived (libzmq#2709), so a
/// 40 MB tensor sent as one frame can make a healthy peer look dead on a slow link; frames of a
/// few MiB keep heartbeats flowing.
public enum FrameSplitter {
    /// Default largest payload frame: 4 MiB.
    public static let defaultMaxFrameBytes = 4 << 20

    /// The frames of `payload`, each at most `maxFrameBytes` long, sharing its memory;
    /// an empty payload has no frames.
    public static func split(_ payload: PayloadBuffer,
                             maxFrameBytes: Int = defaultMaxFrameBytes) -> [Frame] {
        precondition(maxFrameBytes > 0, "maxFrameBytes must be positive, got \(maxFrameBytes)")
        var frames: [Frame] = []
        frames.reserveCapacity((payload.byteCount + maxFrameBytes - 1) / maxFrameBytes)
        var offset = 0
        while offset < payload.byteCount {
            let length = min(maxFrameBytes, payload.byteCount - offset)
            frames.append(Frame(buffer: payload, offset: offset, count: length))
            offset += length
        }
        return frames
    }

    /// One contiguous payload from `frames`: shares the memory when there is a single frame
    /// aligned to `alignment` bytes, copies otherwise.
    public static func reassemble<C: Collection>(_ frames: C, alignment: Int = 4) -> PayloadBuffer
    where C.Element == Frame {
        if frames.count == 1, let only = frames.first,
           Int(bitPattern: only.buffer.baseAddress + only.offset) % alignment == 0 {
            if only.offset == 0 && only.count == only.buffer.byteCount { return only.buffer }
            return PayloadBuffer(viewing: only.buffer, offset: only.offset, count: only.count)
        }
        let total = frames.reduce(0) { $0 + $1.count }
        let joined = PayloadBuffer(byteCount: total)
        var offset = 0
        for frame in frames where frame.count > 0 {
            (joined.baseAddress + offset).copyMemory(from: frame.bytes.baseAddress!, byteCount: frame.count)
            offset += frame.count
        }
        return joined
    }
}
