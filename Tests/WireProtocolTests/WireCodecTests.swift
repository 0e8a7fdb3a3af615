import CChecksum
import Testing
@testable import WireProtocol

@Suite struct WireCodecRoundTripTests {
    @Test(arguments: MessageFixtures.all)
    func roundTripPreservesMessageAndRunID(message: Message) throws {
        let frames = WireCodec.encode(message, runID: 0xABCD_0001)
        let decoded = try WireCodec.decode(frames: frames)
        #expect(decoded.runID == 0xABCD_0001)
        #expect(decoded.message == message)
    }

    @Test func roundTripSurvivesACopyOfEveryFrame() throws {
        // Received frames live in fresh memory, not the sender's buffers.
        let message = MessageFixtures.all[3]
        let copies = WireCodec.encode(message, runID: 5).map { Frame(bytes: $0.byteArray) }
        #expect(try WireCodec.decode(frames: copies).message == message)
    }

    @Test func bigPayloadIsSplitIntoFramesOfAtMostMaxFrameBytes() throws {
        let message = MessageFixtures.bigGradient(floatCount: 300_001)  // 1_200_004 bytes
        let frames = WireCodec.encode(message, runID: 1, maxFrameBytes: 250_000)
        #expect(frames.count == 1 + 5)
        #expect(frames.dropFirst().allSatisfy { $0.count <= 250_000 })
        #expect(frames.dropFirst().reduce(0) { $0 + $1.count } == 1_200_004)
        #expect(try WireCodec.decode(frames: frames).message == message)
    }

    @Test func headerLayoutStartsWithMagicVersionKindAndRunID() {
        let header = WireCodec.encode(.leave(Leave(reason: "x")), runID: 0x0102_0304_0506_0708)[0].byteArray
        #expect(Array(header[0..<4]) == Array("CHRS".utf8))
        #expect(header[4] == UInt8(protocolVersion) && header[5] == 0)
        #expect(header[6] == MessageKind.leave.rawValue)
        #expect(header[7] == 0)
        #expect(Array(header[8..<16]) == [8, 7, 6, 5, 4, 3, 2, 1])
        let crc = WireChecksum.crc32c(Array(header.dropLast(4)))
        #expect(Array(header.suffix(4)) == [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF),
                                             UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)])
    }

    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(WireChecksum.crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(chorus_crc32c_portable(0, Array("123456789".utf8), 9) == 0xE306_9283)
    }

    /// The three-stream hardware path (blocks of 3 × 8 KiB and 3 × 256 B, combined by shifting)
    /// against the byte-at-a-time table, at every alignment and across the block boundaries.
    @Test func crc32cHardwarePathMatchesThePortableOneAtEveryLengthAndAlignment() {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<(3 * 8192 * 2 + 3 * 256 + 77)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!
            for length in [0, 1, 7, 8, 767, 768, 769, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 3 * 256 + 5, raw.count - 8] {
                for offset in 0..<8 {
                    let fast = chorus_crc32c(0, base + offset, length)
                    let slow = chorus_crc32c_portable(0, base + offset, length)
                    #expect(fast == slow, "length \(length) offset \(offset)")
                }
            }
            // Continuing from a previous CRC equals one pass over the concatenation.
            let whole = chorus_crc32c(0, base, raw.count)
            let split = chorus_crc32c(chorus_crc32c(0, base, 30_001), base + 30_001, raw.count - 30_001)
            #expect(whole == split)
            #expect(whole == chorus_crc32c_portable(0, base, raw.count))
        }
    }

    @Test func payloadIsSharedNotCopiedWhenEncoding() {
        let payload = PayloadBuffer(floats: [1, 2, 3])
        let frames = WireCodec.encode(.gradient(Gradient(step: 1, shard: 0, exampleCount: 1, parameterVersion: 0,
                                                         lossSum: 0, correct: 0, payload: payload)), runID: 1)
        #expect(frames[1].buffer === payload)
    }
}
