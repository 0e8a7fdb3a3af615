import Testing
@testable import WireProtocol
import struct TensorCore.DeterministicRNG

/// Decoding garbage never crashes, and every input has one of two outcomes: it decodes to a
/// message that re-encodes to the same frames, or it throws a `WireError`. (`decode` is
/// declared `throws(WireError)`, so the compiler already rules out any other error type; the
/// `catch` below is typed by it, not by a cast.)
@Suite struct WireFuzzTests {
    /// What of a message's frames the encoder determines, leaving out the two choices the
    /// decoder accepts in any form, which is why the wire format is not canonical byte for byte:
    ///
    /// 1. The flags byte (offset 7) is reserved: the encoder writes 0, the decoder ignores it.
    /// 2. How each payload is split into frames is the sender's (`maxFrameBytes`): the decoder
    ///    takes any split whose frames add up to the declared size, since the header's CRC32C of
    ///    the payload covers the concatenation. The split shows in the frames and in each payload's
    ///    `frameCount` field of the header (and so in the header's CRC32C).
    ///
    /// So the form keeps the header with the flags byte and the frame counts zeroed and its CRC
    /// dropped, and the payload frames joined. Everything else (fixed-width integers,
    /// length-prefixed UTF-8 checked on decode, Doubles by bit pattern, enum codes checked on
    /// decode) has exactly one encoding.
    struct EncoderDetermined: Equatable {
        var header: [UInt8]
        var payloads: [UInt8]

        init(_ frames: [[UInt8]], payloadCount: Int) {
            var header = Array(frames[0].dropLast(4))
            header[7] = 0
            // The payload table ends the header: per payload u64 byteCount, u32 frameCount, u32 crc32c.
            for payload in 0..<payloadCount {
                let frameCount = header.count - 16 * (payloadCount - payload) + 8
                header.replaceSubrange(frameCount..<(frameCount + 4), with: [0, 0, 0, 0])
            }
            self.header = header
            payloads = frames.dropFirst().flatMap { $0 }
        }
    }

    static func payloadCount(_ message: Message) -> Int {
        switch message {
        case .work(let work): return work.parameters == nil ? 0 : 1
        case .gradient, .chunk: return 1
        default: return 0
        }
    }

    /// Decodes `frames`; on success checks that re-encoding gives the same frames (re-split at
    /// the size of the first payload frame), or, where the input used the freedoms above, the
    /// same `EncoderDetermined` form and a message that decodes back equal. Returns the decoded
    /// message, or nil when decoding threw (a `WireError`, necessarily).
    @discardableResult
    static func expectRoundTripOrWireError(_ frames: [[UInt8]],
                                           sourceLocation: SourceLocation = #_sourceLocation) -> (runID: UInt64, message: Message)? {
        let decoded: (runID: UInt64, message: Message)
        do {
            decoded = try WireCodec.decode(frames: frames.map { Frame(bytes: $0) })
        } catch {
            let _: WireError = error  // typed throws: this is the only error type decode can throw
            return nil
        }
        let frameBytes = frames.dropFirst().first { !$0.isEmpty }?.count ?? FrameSplitter.defaultMaxFrameBytes
        let again = WireCodec.encode(decoded.message, runID: decoded.runID, maxFrameBytes: frameBytes).map(\.byteArray)
        guard again != frames else { return decoded }
        let payloads = payloadCount(decoded.message)
        #expect(EncoderDetermined(again, payloadCount: payloads) == EncoderDetermined(frames, payloadCount: payloads),
                "re-encoding differs in more than the flags byte and the framing", sourceLocation: sourceLocation)
        #expect(frames[0][7] != 0 || frames.dropFirst().map(\.count) != again.dropFirst().map(\.count),
                "re-encoding differs although flags and framing are the encoder's", sourceLocation: sourceLocation)
        let reread = try? WireCodec.decode(frames: again.map { Frame(bytes: $0) })
        #expect(reread?.message == decoded.message && reread?.runID == decoded.runID, sourceLocation: sourceLocation)
        return decoded
    }

    /// This build's protocol version as it appears on the wire (little-endian).
    static let version = [UInt8(protocolVersion & 0xFF), UInt8(protocolVersion >> 8)]

    /// A header frame: `body` with its CRC32C appended.
    static func sealed(_ body: [UInt8]) -> [UInt8] {
        body + withUnsafeBytes(of: WireChecksum.crc32c(body).littleEndian) { Array($0) }
    }

    @Test func randomByteStringsThrow() {
        var rng = DeterministicRNG(1)
        for round in 0..<10_000 {
            let length = rng.nextIndex(below: 96)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if round % 2 == 0 && length >= 6 {  // get past the magic and version checks half the time
                bytes.replaceSubrange(0..<6, with: Array("CHRS".utf8) + Self.version)
            }
            let frames = [Frame(bytes: bytes)] + (0..<rng.nextIndex(below: 3)).map { _ in Frame(bytes: [1, 2, 3]) }
            #expect(throws: WireError.self) { try WireCodec.decode(frames: frames) }
        }
    }

    @Test func randomlyResealedHeadersRoundTripOrThrow() {
        // Valid CRC over random field bytes: exercises every field reader on garbage (almost
        // all of it throws; the next test reaches the decoding side).
        var rng = DeterministicRNG(2)
        for _ in 0..<10_000 {
            let kind = UInt8(1 + rng.nextIndex(below: 7))
            let flags = rng.nextIndex(below: 4) == 0 ? UInt8(truncatingIfNeeded: rng.next()) : 0
            var body = Array("CHRS".utf8) + Self.version + [kind, flags] + [UInt8](repeating: 0, count: 8)
            body += (0..<rng.nextIndex(below: 64)).map { _ in
                // Small values make plausible lengths and counts.
                rng.nextIndex(below: 4) == 0 ? UInt8(truncatingIfNeeded: rng.next()) : UInt8(rng.nextIndex(below: 3))
            }
            let frames = [Self.sealed(body)] + (0..<rng.nextIndex(below: 3)).map { _ in [0, 0, 0, 0] }
            Self.expectRoundTripOrWireError(frames)
        }
    }

    @Test func resealedFieldChangesOfValidMessagesRoundTripOrThrow() {
        // 1-3 bytes after the version (flags, runID, fields, payload table) overwritten in a
        // valid header, the CRC recomputed: many decode to another message, many throw.
        var rng = DeterministicRNG(4)
        let messages = MessageFixtures.all
        var decoded = 0, withFlags = 0
        for round in 0..<10_000 {
            var frames = WireCodec.encode(messages[round % messages.count], runID: 11, maxFrameBytes: 1000).map(\.byteArray)
            var body = Array(frames[0].dropLast(4))
            for _ in 0...rng.nextIndex(below: 3) { body[7 + rng.nextIndex(below: body.count - 7)] = UInt8(truncatingIfNeeded: rng.next()) }
            frames[0] = Self.sealed(body)
            if Self.expectRoundTripOrWireError(frames) != nil {
                decoded += 1
                if body[7] != 0 { withFlags += 1 }
            }
        }
        #expect(decoded > 1_000 && decoded < 9_000, "\(decoded) of 10000 decoded")
        #expect(withFlags > 0)
    }

    @Test func bitFlipsAndTruncationsOfValidMessagesDecodeIdenticalOrThrow() {
        var rng = DeterministicRNG(3)
        let messages = MessageFixtures.all
        var thrown = 0
        for round in 0..<10_000 {
            let message = messages[round % messages.count]
            var frames = WireCodec.encode(message, runID: 11, maxFrameBytes: 1000).map(\.byteArray)
            switch rng.nextIndex(below: 5) {
            case 0, 1:  // flip 1-3 bits anywhere
                for _ in 0...rng.nextIndex(below: 3) {
                    let frame = rng.nextIndex(below: frames.count)
                    guard !frames[frame].isEmpty else { continue }
                    frames[frame][rng.nextIndex(below: frames[frame].count)] ^= UInt8(1 << rng.nextIndex(below: 8))
                }
            case 2:  // truncate one frame
                let frame = rng.nextIndex(below: frames.count)
                frames[frame] = Array(frames[frame].prefix(rng.nextIndex(below: frames[frame].count + 1)))
            case 3:  // drop or duplicate a frame
                let frame = rng.nextIndex(below: frames.count)
                if rng.nextIndex(below: 2) == 0 { frames.remove(at: frame) } else { frames.insert(frames[frame], at: frame) }
            default:  // overwrite a random byte
                let frame = rng.nextIndex(below: frames.count)
                guard !frames[frame].isEmpty else { continue }
                frames[frame][rng.nextIndex(below: frames[frame].count)] = UInt8(truncatingIfNeeded: rng.next())
            }
            if let decoded = Self.expectRoundTripOrWireError(frames) {
                // A corruption the checks let through must leave the message as it was.
                #expect(decoded.message == message && decoded.runID == 11)
            } else {
                thrown += 1
            }
        }
        #expect(thrown > 9_000)
    }

    @Test func anotherFramingOfAPayloadDecodesToTheSameMessage() {
        // Freedom 2 above: the same gradient split at 1000 and at 7 bytes per frame.
        let message = MessageFixtures.bigGradient(floatCount: 600)
        let frames = WireCodec.encode(message, runID: 5, maxFrameBytes: 7).map(\.byteArray)
        #expect(frames.count == 1 + (2400 + 6) / 7)
        let decoded = Self.expectRoundTripOrWireError(frames)
        #expect(decoded?.message == message)
        // Re-split at the first frame's size, the re-encoding is byte-identical; the check's
        // framing freedom is used only when the sender's frames are uneven, as here.
        var uneven = WireCodec.encode(message, runID: 5, maxFrameBytes: 1000).map(\.byteArray)
        let last = uneven.removeLast()
        uneven += [Array(last.prefix(100)), Array(last.dropFirst(100))]
        uneven[0] = Self.sealed(Self.withFrameCount(uneven[0].dropLast(4), 4))
        #expect(Self.expectRoundTripOrWireError(uneven)?.message == message)
    }

    @Test func aNonzeroFlagsByteDecodesAndReencodesAsZero() {
        // Freedom 1 above.
        var header = WireCodec.encode(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 2)), runID: 3)[0].byteArray
        header[7] = 0x80
        let frames = [Self.sealed(Array(header.dropLast(4)))]
        #expect(Self.expectRoundTripOrWireError(frames)?.message == .heartbeat(Heartbeat(sequence: 1, sentAtNanos: 2)))
        #expect(WireCodec.encode(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 2)), runID: 3)[0].byteArray[7] == 0)
    }

    /// `body` (a header without its CRC, one payload) with that payload's frameCount replaced.
    static func withFrameCount(_ body: ArraySlice<UInt8>, _ count: UInt32) -> [UInt8] {
        var bytes = Array(body)
        let at = bytes.count - 16 + 8
        bytes.replaceSubrange(at..<(at + 4), with: withUnsafeBytes(of: count.littleEndian) { Array($0) })
        return bytes
    }
}
