/// Encodes messages into ZeroMQ frames and decodes and validates received frames.
///
/// Layout (all integers little-endian; see docs/protocol.md):
/// ```
/// header frame: "CHRS" | version u16 | kind u8 | flags u8 (reserved, 0) | runID u64
///               | kind fields | payload count u8
///               | per payload: byteCount u64, frameCount u32, crc32c u32
///               | crc32c u32 of all header bytes before it
/// payload frames: each payload's bytes, split into frames of at most maxFrameBytes
/// ```
public enum WireCodec {
    /// Bytes before the kind fields: magic, version, kind, flags, runID.
    public static let prefixBytes = 16
    /// The magic bytes "CHRS".
    public static let magic: [UInt8] = Array("CHRS".utf8)

    /// Upper bounds the decoder enforces on declared lengths.
    public enum Limits {
        /// Longest string field (names, reasons): 64 KiB.
        public static let stringBytes = 64 << 10
        /// Longest byte-array field (config JSON, statistics): 16 MiB.
        public static let blobBytes = 16 << 20
        /// Most shards in one work message.
        public static let shards = 1 << 20
        /// Most payloads in one message.
        public static let payloads = 2
        /// Largest payload: 16 GiB.
        public static let payloadBytes = 16 << 30
    }

    // MARK: Encoding

    /// The frames of `message`: a header frame, then each payload split into frames of at most
    /// `maxFrameBytes` (default 4 MiB), sharing the payload's memory. Computes payload CRC32Cs.
    public static func encode(_ message: Message, runID: UInt64,
                              maxFrameBytes: Int = FrameSplitter.defaultMaxFrameBytes) -> [Frame] {
        var writer = ByteWriter(capacity: 128)
        writer.bytes.append(contentsOf: magic)
        writer.write(protocolVersion)
        writer.write(message.kind.rawValue)
        writer.write(UInt8(0))
        writer.write(runID)
        let payloads = writeFields(of: message, to: &writer)

        var payloadFrames: [Frame] = []
        writer.write(UInt8(payloads.count))
        for payload in payloads {
            let frames = FrameSplitter.split(payload, maxFrameBytes: maxFrameBytes)
            writer.write(UInt64(payload.byteCount))
            writer.write(UInt32(frames.count))
            writer.write(payload.crc32c)
            payloadFrames += frames
        }
        writer.write(WireChecksum.crc32c(writer.bytes))
        return [Frame(bytes: writer.bytes)] + payloadFrames
    }

    private static func writeFields(of message: Message, to writer: inout ByteWriter) -> [PayloadBuffer] {
        switch message {
        case .join(let join):
            writer.write(string: join.workerName)
            writer.write(string: join.buildVersion)
            writer.write(join.protocolVersion)
            writer.write(join.dataFingerprint)
            writer.write(join.pid)
            writer.write(join.requestedWorkerID)
            writer.write(string: join.peerEndpoint)
        case .welcome(let welcome):
            writer.write(welcome.workerID)
            writer.write(bytes: welcome.configJSON)
            writer.write(welcome.configHash)
            writer.write(welcome.heartbeatIntervalMs)
            writer.write(welcome.timeoutMs)
            writer.write(welcome.parameterVersion)
            writer.write(string: welcome.kernel)
        case .reject(let reject):
            writer.write(reject.code.rawValue)
            writer.write(string: reject.message)
        case .work(let work):
            writer.write(work.step)
            writer.write(work.epoch)
            writer.write(work.stepInEpoch)
            writer.write(work.parameterVersion)
            writer.write(array: work.shards)
            writer.write(work.shardCount)
            writer.write(work.flags.rawValue)
            writer.write(work.gradientDType.rawValue)
            return work.parameters.map { [$0] } ?? []
        case .gradient(let gradient):
            writer.write(gradient.step)
            writer.write(gradient.shard)
            writer.write(gradient.exampleCount)
            writer.write(gradient.parameterVersion)
            writer.write(gradient.lossSum)
            writer.write(gradient.correct)
            writer.write(gradient.dtype.rawValue)
            writer.write(gradient.computeNanos)
            writer.write(bytes: gradient.statistics)
            writer.write(gradient.sharedSlot)
            writer.write(gradient.sharedCRC)
            writer.write(gradient.span)
            return [gradient.payload]
        case .heartbeat(let heartbeat):
            writer.write(heartbeat.sequence)
            writer.write(heartbeat.sentAtNanos)
        case .leave(let leave):
            writer.write(string: leave.reason)
        case .chunk(let chunk):
            writer.write(chunk.role.rawValue)
            writer.write(chunk.step)
            writer.write(chunk.chunk)
            writer.write(chunk.shard)
            writer.write(chunk.span)
            return [chunk.payload]
        case .chunkControl(let control):
            writer.write(control.role.rawValue)
            writer.write(control.step)
            writer.write(array: control.chunks)
            writer.write(UInt32(control.values.count))
            for value in control.values { writer.write(value) }
            writer.write(control.learningRate.bitPattern)
            writer.write(control.optimizerStep)
            writer.write(array: control.peers)
            writer.write(UInt32(control.endpoints.count))
            for endpoint in control.endpoints { writer.write(string: endpoint) }
        }
        return []
    }

    // MARK: Decoding

    /// Decodes and validates `frames`; returns the header's run ID and the message.
    ///
    /// Checks, in order: at least one frame, header length, magic, version, header CRC32C,
    /// known kind, every field within the header (bounded lengths), no trailing bytes, frame
    /// count, payload sizes, payload CRC32Cs. Never reads out of bounds on any input.
    public static func decode(frames: [Frame]) throws(WireError) -> (runID: UInt64, message: Message) {
        guard let header = frames.first else { throw .noFrames }
        let bytes = header.bytes
        let minimum = prefixBytes + 1 + 4
        guard bytes.count >= minimum else { throw .headerTooShort(byteCount: bytes.count, minimum: minimum) }
        guard bytes.prefix(4).elementsEqual(magic) else { throw .badMagic(Array(bytes.prefix(4))) }
        let version = UInt16(bytes[4]) | UInt16(bytes[5]) << 8
        guard version == protocolVersion else {
            throw .versionMismatch(received: version, supported: protocolVersion)
        }
        let body = UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 4)])
        let expected = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self))
        let actual = WireChecksum.crc32c(body)
        guard expected == actual else { throw .headerChecksumMismatch(expected: expected, actual: actual) }
        guard let kind = MessageKind(rawValue: bytes[6]) else { throw .unknownKind(bytes[6]) }

        var reader = ByteReader(body)
        reader.position = 8
        let runID = try reader.read(UInt64.self, "runID")
        var message = try readFields(kind: kind, from: &reader)
        let descriptors = try readPayloadTable(from: &reader)
        guard reader.remaining == 0 else { throw .trailingBytes(count: reader.remaining) }

        let expectedFrames = 1 + descriptors.reduce(0) { $0 + $1.frameCount }
        guard frames.count == expectedFrames else {
            throw .frameCountMismatch(expected: expectedFrames, actual: frames.count)
        }
        var payloads: [PayloadBuffer] = []
        var next = 1
        for (index, descriptor) in descriptors.enumerated() {
            let slice = frames[next..<(next + descriptor.frameCount)]
            next += descriptor.frameCount
            let size = slice.reduce(0) { $0 + $1.count }
            guard size == descriptor.byteCount else {
                throw .payloadSizeMismatch(kind: kind, payload: index, declared: descriptor.byteCount, actual: size)
            }
            let crc = slice.reduce(UInt32(0)) { WireChecksum.crc32c($1.bytes, continuing: $0) }
            guard crc == descriptor.crc32c else {
                let (step, shard, span) = identity(of: message)
                throw .payloadChecksumMismatch(kind: kind, step: step, shard: shard, span: span,
                                               expected: descriptor.crc32c, actual: crc)
            }
            payloads.append(FrameSplitter.reassemble(slice))
        }
        try attach(payloads, to: &message)
        return (runID, message)
    }

    private struct PayloadDescriptor {
        var byteCount: Int
        var frameCount: Int
        var crc32c: UInt32
    }

    private static func readPayloadTable(from reader: inout ByteReader) throws(WireError) -> [PayloadDescriptor] {
        let count = Int(try reader.read(UInt8.self, "payloadCount"))
        guard count <= Limits.payloads else {
            throw .lengthTooLarge(field: "payloadCount", length: count, limit: Limits.payloads)
        }
        var descriptors: [PayloadDescriptor] = []
        for _ in 0..<count {
            let byteCount = try reader.read(UInt64.self, "payload.byteCount")
            guard byteCount <= UInt64(Limits.payloadBytes) else {
                throw .lengthTooLarge(field: "payload.byteCount", length: Int(clamping: byteCount),
                                      limit: Limits.payloadBytes)
            }
            let frameCount = Int(try reader.read(UInt32.self, "payload.frameCount"))
            let crc = try reader.read(UInt32.self, "payload.crc32c")
            descriptors.append(PayloadDescriptor(byteCount: Int(byteCount), frameCount: frameCount, crc32c: crc))
        }
        return descriptors
    }

    /// Step, shard and span of a message, for error reports.
    private static func identity(of message: Message) -> (UInt64, UInt32?, UInt32) {
        switch message {
        case .work(let work): return (work.step, nil, 1)
        case .gradient(let gradient): return (gradient.step, gradient.shard, gradient.span)
        case .chunk(let chunk): return (chunk.step, chunk.shard, chunk.span)
        default: return (0, nil, 1)
        }
    }
}
