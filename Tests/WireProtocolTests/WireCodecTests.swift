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
        #expect(header[4] == 1 && header[5] == 0)
        #expect(header[6] == MessageKind.leave.rawValue)
        #expect(header[7] == 0)
        #expect(Array(header[8..<16]) == [8, 7, 6, 5, 4, 3, 2, 1])
        let crc = WireChecksum.crc32c(Array(header.dropLast(4)))
        #expect(Array(header.suffix(4)) == [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF),
                                             UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)])
    }

    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(WireChecksum.crc32c(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func payloadIsSharedNotCopiedWhenEncoding() {
        let payload = PayloadBuffer(floats: [1, 2, 3])
        let frames = WireCodec.encode(.gradient(Gradient(step: 1, shard: 0, exampleCount: 1, parameterVersion: 0,
                                                         lossSum: 0, correct: 0, payload: payload)), runID: 1)
        #expect(frames[1].buffer === payload)
    }
}
