import Testing
@testable import Coordination

@Suite struct ReorderBufferTests {
    @Test(arguments: permutations([0, 1, 2, 3]))
    func releasesLongestInOrderPrefixForEveryArrivalOrder(_ arrival: [Int]) {
        var buffer = ReorderBuffer<String>(count: 4)
        var released: [Int] = []
        var arrived = Set<Int>()
        for index in arrival {
            arrived.insert(index)
            let out = buffer.insert(index, "payload-\(index)")
            for item in out { #expect(item.payload == "payload-\(item.index)") }
            released += out.map(\.index)
            // Reference: the longest prefix 0..<k with every index arrived.
            var prefix = 0
            while arrived.contains(prefix) { prefix += 1 }
            #expect(released == Array(0..<prefix))
            #expect(buffer.heldCount == arrived.count - prefix)
        }
        #expect(buffer.isComplete)
    }

    @Test func drainReturnsHeldResultsInIndexOrder() {
        var buffer = ReorderBuffer<Int>(count: 5)
        _ = buffer.insert(3, 30)
        _ = buffer.insert(1, 10)
        let drained = buffer.drain()
        #expect(drained.map(\.index) == [1, 3])
        #expect(drained.map(\.payload) == [10, 30])
        #expect(buffer.heldCount == 0)
    }
}
