import Testing
@testable import WireProtocol

/// Decoding garbage never crashes: it decodes to the original message or throws.
@Suite struct WireFuzzTests {
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    @Test func randomByteStringsThrow() {
        var rng = SplitMix(state: 1)
        for round in 0..<10_000 {
            let length = rng.below(96)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if round % 2 == 0 && length >= 6 {  // get past the magic and version checks half the time
                bytes.replaceSubrange(0..<6, with: Array("CHRS".utf8) + [1, 0])
            }
            let frames = [Frame(bytes: bytes)] + (0..<rng.below(3)).map { _ in Frame(bytes: [1, 2, 3]) }
            #expect(throws: WireError.self) { try WireCodec.decode(frames: frames) }
        }
    }

    @Test func randomlyResealedHeadersNeverCrash() {
        // Valid CRC over random field bytes: exercises every field reader on garbage.
        var rng = SplitMix(state: 2)
        for _ in 0..<10_000 {
            let kind = UInt8(1 + rng.below(7))
            var body = Array("CHRS".utf8) + [1, 0, kind, 0] + [UInt8](repeating: 0, count: 8)
            body += (0..<rng.below(64)).map { _ in
                // Small values make plausible lengths and counts.
                rng.below(4) == 0 ? UInt8(truncatingIfNeeded: rng.next()) : UInt8(rng.below(3))
            }
            let crc = WireChecksum.crc32c(body)
            let header = Frame(bytes: body + withUnsafeBytes(of: crc.littleEndian) { Array($0) })
            let frames = [header] + (0..<rng.below(3)).map { _ in Frame(bytes: [0, 0, 0, 0]) }
            _ = try? WireCodec.decode(frames: frames)
        }
    }

    @Test func bitFlipsAndTruncationsOfValidMessagesDecodeIdenticalOrThrow() {
        var rng = SplitMix(state: 3)
        let messages = MessageFixtures.all
        var thrown = 0
        for round in 0..<10_000 {
            let message = messages[round % messages.count]
            var frames = WireCodec.encode(message, runID: 11, maxFrameBytes: 1000).map(\.byteArray)
            switch rng.below(5) {
            case 0, 1:  // flip 1-3 bits anywhere
                for _ in 0...rng.below(3) {
                    let frame = rng.below(frames.count)
                    guard !frames[frame].isEmpty else { continue }
                    frames[frame][rng.below(frames[frame].count)] ^= UInt8(1 << rng.below(8))
                }
            case 2:  // truncate one frame
                let frame = rng.below(frames.count)
                frames[frame] = Array(frames[frame].prefix(rng.below(frames[frame].count + 1)))
            case 3:  // drop or duplicate a frame
                let frame = rng.below(frames.count)
                if rng.below(2) == 0 { frames.remove(at: frame) } else { frames.insert(frames[frame], at: frame) }
            default:  // overwrite a random byte
                let frame = rng.below(frames.count)
                guard !frames[frame].isEmpty else { continue }
                frames[frame][rng.below(frames[frame].count)] = UInt8(truncatingIfNeeded: rng.next())
            }
            do {
                let decoded = try WireCodec.decode(frames: frames.map { Frame(bytes: $0) })
                #expect(decoded.message == message && decoded.runID == 11)
            } catch {
                thrown += 1
            }
        }
        #expect(thrown > 9_000)
    }
}
