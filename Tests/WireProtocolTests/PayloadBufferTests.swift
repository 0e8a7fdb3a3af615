import Testing
@testable import WireProtocol

@Suite struct PayloadBufferTests {
    @Test func floatsRoundTripThroughTheBuffer() {
        let values: [Float] = [1, -2.5, .pi, 1e-30]
        let buffer = PayloadBuffer(floats: values)
        #expect(buffer.byteCount == 16)
        #expect(Array(buffer.asFloats) == values)
        #expect(Int(bitPattern: buffer.baseAddress) % PayloadBuffer.alignment == 0)
    }

    @Test func adoptedMemoryIsReleasedOnceWhenTheBufferDies() {
        final class Counter { var releases = 0 }
        let counter = Counter()
        do {
            let memory = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
            _ = PayloadBuffer(adopting: memory, byteCount: 8) { pointer in
                counter.releases += 1
                pointer.deallocate()
            }
        }
        #expect(counter.releases == 1)
    }

    @Test func viewKeepsItsParentAlive() {
        var view: PayloadBuffer?
        do {
            let parent = PayloadBuffer(floats: [1, 2, 3, 4])
            view = PayloadBuffer(viewing: parent, offset: 8, count: 8)
        }
        #expect(Array(view!.asFloats) == [3, 4])
    }

    @Test func splitSharesMemoryAndReassembleJoinsTheBytes() {
        let payload = PayloadBuffer(bytes: (0..<1000).map { UInt8($0 % 251) })
        let frames = FrameSplitter.split(payload, maxFrameBytes: 300)
        #expect(frames.map(\.count) == [300, 300, 300, 100])
        #expect(frames.allSatisfy { $0.buffer === payload })
        #expect(FrameSplitter.reassemble(frames) == payload)
        #expect(FrameSplitter.split(PayloadBuffer(byteCount: 0)).isEmpty)
    }

    @Test func reassemblingOneAlignedFrameDoesNotCopy() {
        let payload = PayloadBuffer(floats: [1, 2])
        #expect(FrameSplitter.reassemble([Frame(buffer: payload)]) === payload)
    }

    @Test func reassemblingAMisalignedFrameCopiesToAlignedMemory() {
        let backing = PayloadBuffer(bytes: [0] + PayloadBuffer(floats: [7, 8]).byteArray())
        let joined = FrameSplitter.reassemble([Frame(buffer: backing, offset: 1, count: 8)])
        #expect(joined !== backing)
        #expect(Array(joined.asFloats) == [7, 8])
    }
}
