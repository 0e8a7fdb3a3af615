import Testing
@testable import WireProtocol

/// Each validation step of `WireCodec.decode` rejects its kind of damage with its own error.
@Suite struct WireDecodeErrorTests {
    /// The header bytes with `edit` applied and the trailing CRC32C recomputed.
    func resealed(_ header: [UInt8], _ edit: (inout [UInt8]) -> Void) -> Frame {
        var body = Array(header.dropLast(4))
        edit(&body)
        let crc = WireChecksum.crc32c(body)
        return Frame(bytes: body + withUnsafeBytes(of: crc.littleEndian) { Array($0) })
    }

    func frames(_ message: Message) -> [Frame] { WireCodec.encode(message, runID: 7) }

    func decodeError(_ frames: [Frame]) -> WireError? {
        do { _ = try WireCodec.decode(frames: frames); return nil } catch { return error }
    }

    let leave = Message.leave(Leave(reason: "bye"))

    @Test func noFrames() {
        #expect(decodeError([]) == .noFrames)
    }

    @Test func headerTooShort() {
        #expect(decodeError([Frame(bytes: Array("CHRS".utf8))]) == .headerTooShort(byteCount: 4, minimum: 21))
    }

    @Test func badMagic() {
        var header = frames(leave)[0].byteArray
        header[0] = UInt8(ascii: "X")
        #expect(decodeError([Frame(bytes: header)]) == .badMagic(Array("XHRS".utf8)))
    }

    @Test func versionMismatchCarriesBothVersions() {
        let header = resealed(frames(leave)[0].byteArray) { $0[4] = 99 }
        #expect(decodeError([header]) == .versionMismatch(received: 99, supported: protocolVersion))
    }

    @Test func headerChecksumMismatch() {
        var header = frames(leave)[0].byteArray
        header[17] ^= 0x01
        guard case .headerChecksumMismatch? = decodeError([Frame(bytes: header)]) else {
            Issue.record("expected a header checksum error"); return
        }
    }

    @Test func unknownKind() {
        #expect(decodeError([resealed(frames(leave)[0].byteArray) { $0[6] = 42 }]) == .unknownKind(42))
    }

    @Test func truncatedField() {
        // Cut the reason string short: its declared length runs past the header.
        let header = resealed(frames(leave)[0].byteArray) { $0.removeLast(3) }
        guard case .truncated(field: "leave.reason", needed: 3, available: _)? = decodeError([header]) else {
            Issue.record("expected a truncated leave.reason"); return
        }
    }

    @Test func stringLongerThanItsLimit() {
        let header = resealed(frames(leave)[0].byteArray) { body in
            // Declare a 1 GiB reason at offset 16.
            body.replaceSubrange(16..<20, with: [0, 0, 0, 0x40])
        }
        #expect(decodeError([header]) == .lengthTooLarge(field: "leave.reason", length: 1 << 30,
                                                         limit: WireCodec.Limits.stringBytes))
    }

    @Test func invalidUTF8String() {
        let header = resealed(frames(leave)[0].byteArray) { $0[20] = 0xFF }
        guard case .invalidValue(field: "leave.reason", value: _)? = decodeError([header]) else {
            Issue.record("expected invalid UTF-8"); return
        }
    }

    @Test func unknownRejectCode() {
        let reject = Message.reject(Reject(code: .full, message: "no room"))
        let header = resealed(frames(reject)[0].byteArray) { $0[16] = 99 }
        #expect(decodeError([header]) == .invalidValue(field: "reject.code", value: "99"))
    }

    @Test func trailingBytes() {
        let header = resealed(frames(leave)[0].byteArray) { $0 += [1, 2] }
        #expect(decodeError([header]) == .trailingBytes(count: 2))
    }

    @Test func missingPayloadFrame() {
        let all = frames(MessageFixtures.bigGradient(floatCount: 10))
        #expect(decodeError(Array(all.prefix(1))) == .frameCountMismatch(expected: 2, actual: 1))
    }

    @Test func extraFrame() {
        let all = frames(leave) + [Frame(bytes: [1])]
        #expect(decodeError(all) == .frameCountMismatch(expected: 1, actual: 2))
    }

    @Test func payloadSizeMismatch() {
        var all = frames(MessageFixtures.bigGradient(floatCount: 10))
        all[1] = Frame(bytes: Array(all[1].byteArray.dropLast(4)))
        #expect(decodeError(all) == .payloadSizeMismatch(kind: .gradient, payload: 0, declared: 40, actual: 36))
    }

    @Test func payloadChecksumMismatchNamesStepAndShard() {
        var all = frames(MessageFixtures.bigGradient(floatCount: 10))
        var bytes = all[1].byteArray
        bytes[13] ^= 0x80
        all[1] = Frame(bytes: bytes)
        guard case .payloadChecksumMismatch(kind: .gradient, step: 9, shard: 2, span: 1, expected: _, actual: _)?
                = decodeError(all) else {
            Issue.record("expected a payload checksum error for step 9 shard 2"); return
        }
    }

    @Test func gradientPayloadNotAWholeNumberOfElements() {
        let odd = Message.gradient(Gradient(step: 1, shard: 0, exampleCount: 1, parameterVersion: 0, lossSum: 0,
                                            correct: 0, dtype: .fp16, payload: PayloadBuffer(bytes: [1, 2, 3])))
        #expect(decodeError(frames(odd)) == .payloadSizeMismatch(kind: .gradient, payload: 0, declared: 2, actual: 3))
    }

    @Test func errorDescriptionsAreOneLine() {
        let errors: [WireError] = [.noFrames, .versionMismatch(received: 2, supported: 1),
                                   .payloadChecksumMismatch(kind: .gradient, step: 3, shard: 1, expected: 1, actual: 2)]
        for error in errors {
            #expect(!error.description.contains("\n"))
        }
        #expect(errors[1].description.contains("2") && errors[1].description.contains("1"))
        #expect(errors[2].description.contains("step 3 shard 1"))
    }
}

/// Chunk messages (`--chunk-owners`) that break their own rules are refused by name.
struct ChunkMessageValidationTests {
    func decodeError(_ message: Message) -> WireError? {
        do { _ = try WireCodec.decode(frames: WireCodec.encode(message, runID: 7)); return nil } catch { return error }
    }

    @Test func inconsistentChunkMessagesAreRefused() {
        let values = PayloadBuffer(floats: [1, 2, 3])
        #expect(decodeError(.chunk(ChunkData(role: .piece, step: 1, chunk: 2, shard: 3, span: 0, payload: values)))
            == .invalidValue(field: "chunk.span", value: "0 in a piece"))
        #expect(decodeError(.chunk(ChunkData(role: .update, step: 1, chunk: 2, shard: 1, span: 2, payload: values)))
            == .invalidValue(field: "chunk.span", value: "shards 1+2 in an update"))
        #expect(decodeError(.chunkControl(ChunkControl(role: .report, step: 1, chunks: [1, 2], values: [0.5])))
            == .invalidValue(field: "chunkControl.values", value: "1 for 2 chunks"))
        #expect(decodeError(.chunkControl(ChunkControl(role: .apply, step: 1, values: [1, 2])))
            == .invalidValue(field: "chunkControl.values", value: "2 values and 0 chunks in an apply"))
        #expect(decodeError(.chunkControl(ChunkControl(role: .table, step: 1, chunks: [1, 9], peers: [1], endpoints: ["tcp://a:1"])))
            == .invalidValue(field: "chunkControl.peers", value: "a table of 1 peers, 1 endpoints and owners [1, 9]"))
        #expect(decodeError(.chunkControl(ChunkControl(role: .traffic, step: 1, values: [1]))) == .invalidValue(field: "chunkControl.values", value: "1 values in a traffic report"))
        #expect(decodeError(.chunk(ChunkData(role: .piece, step: 1, chunk: 2, shard: 3, span: 1, payload: values))) == nil)
    }

    @Test func aChunkWhosePayloadChangedInTransitFailsItsChecksum() {
        var frames = WireCodec.encode(.chunk(ChunkData(role: .piece, step: 5, chunk: 9, shard: 2, span: 2,
                                                        payload: PayloadBuffer(floats: [1, 2, 3, 4]))), runID: 7)
        var bytes = frames[1].byteArray
        bytes[5] ^= 0x10
        frames[1] = Frame(bytes: bytes)
        guard case .payloadChecksumMismatch(kind: .chunk, step: 5, shard: 2, span: 2, expected: _, actual: _)? = decodeFrames(frames) else {
            Issue.record("a flipped bit in a chunk's payload was not caught")
            return
        }
    }

    func decodeFrames(_ frames: [Frame]) -> WireError? {
        do { _ = try WireCodec.decode(frames: frames); return nil } catch { return error }
    }
}
