import Testing
@testable import Coordination

/// Exactly-once acceptance and in-order release of shard results.
@Suite struct CoordinatorResultsTests {
    @Test(arguments: permutations([0, 1, 2, 3]))
    func aggregatesInShardOrderWhateverTheArrivalOrder(_ arrival: [Int]) throws {
        var harness = try Harness.started(shards: 4, workers: [1, 2, 3, 4])
        let sent = try harness.begin(1)
        let owner = Dictionary(uniqueKeysWithValues: sent.work.flatMap { work in work.shards.map { ($0, work.worker) } })
        var aggregated: [Aggregation] = []
        var completions: [Int] = []
        var tokenOfShard: [Int: ResultToken] = [:]
        for shard in arrival {
            tokenOfShard[shard] = harness.nextToken
            let actions = harness.result(owner[shard]!, step: 1, shard: shard)
            aggregated += actions.aggregations
            completions += actions.completedSteps
            #expect(actions.discards.isEmpty)
        }
        #expect(aggregated.map(\.shard) == [0, 1, 2, 3])
        #expect(aggregated.map(\.token) == [0, 1, 2, 3].map { tokenOfShard[$0]! })
        #expect(completions == [1])
    }

    @Test func shardsArePlannedInContiguousBlocksOverWorkersSortedById() throws {
        var harness = try Harness.started(shards: 5, workers: [30, 10, 20])
        let sent = try harness.begin(1)
        #expect(sent.shardsByWorker == [10: [0, 1], 20: [2, 3], 30: [4]])
        #expect(sent.work.map(\.sumNodes) == [true, true, false])
    }

    @Test func aNodeSumIsAcceptedWholeAndReleasedAsOneAggregation() throws {
        var harness = try Harness.started(shards: 4, workers: [1, 2])
        _ = try harness.begin(1)
        // Worker 2's node [2, 4) arrives first and waits for [0, 2).
        let early = harness.send(.shardResult(2, step: 1, shard: 2, token: 7, span: 2))
        #expect(early.aggregations.isEmpty && early.discards.isEmpty)
        let late = harness.send(.shardResult(1, step: 1, shard: 0, token: 8, span: 2))
        #expect(late.aggregations.map { [$0.shard, $0.span, Int($0.token)] } == [[0, 2, 8], [2, 2, 7]])
        #expect(late.completedSteps == [1])
        #expect(harness.machine.statistics.workers[1]?.shardsComputed == 2)
    }

    @Test func aNodeSumIsRefusedWholeWhenNotANodeOrNotAssigned() throws {
        var harness = try Harness.started(shards: 6, workers: [1, 2, 3])
        _ = try harness.begin(1)
        // Worker 2 holds [2, 4), which is a node; [3, 5) is not one (nor all its).
        #expect(harness.send(.shardResult(2, step: 1, shard: 3, token: 1, span: 2)).discards.map(\.reason) == [.notAssigned])
        #expect(harness.send(.shardResult(1, step: 1, shard: 0, token: 2, span: 4)).discards.map(\.reason) == [.notAssigned])
        let good = harness.send(.shardResult(2, step: 1, shard: 2, token: 3, span: 2))
        #expect(good.discards.isEmpty)
    }

    @Test func aNodeWhoseShardAlreadyHasAResultIsRefusedAndItsOtherShardsSentAgain() throws {
        var harness = try Harness.started(shards: 4, workers: [1, 2]) { $0.stragglerDeadline = .milliseconds(500) }
        _ = try harness.begin(1)
        _ = harness.send(.shardResult(2, step: 1, shard: 2, token: 1, span: 2))
        // Worker 1 is slow: its first shard is copied to idle worker 2, which answers it.
        let copies = harness.run(for: .seconds(1), heartbeating: [1, 2])
        try #require(copies.shardsByWorker[2] == [0], "\(copies.shardsByWorker)")
        _ = harness.result(2, step: 1, shard: 0)
        // Now worker 1's node [0, 2) arrives: shard 0 has a result, so the node is refused whole
        // and shard 1 is computed again, elsewhere.
        let node = harness.send(.shardResult(1, step: 1, shard: 0, token: 9, span: 2))
        #expect(node.discards.map(\.reason) == [.duplicate])
        #expect(node.aggregations.isEmpty)
        #expect(node.shardsByWorker == [2: [1]])
        let last = harness.result(2, step: 1, shard: 1)
        #expect(last.aggregations.map(\.shards) == [1..<2, 2..<4])
        #expect(last.completedSteps == [1])
    }

    @Test func resentResultIsDroppedAsDuplicate() throws {
        var harness = try Harness.started(shards: 2, workers: [1, 2])
        _ = try harness.begin(1)
        #expect(harness.result(1, step: 1, shard: 0).aggregations.count == 1)
        let again = harness.result(1, step: 1, shard: 0)
        #expect(again.aggregations.isEmpty)
        #expect(again.discards.map(\.reason) == [.duplicate])
        #expect(harness.machine.statistics.duplicates == 1)
    }

    @Test func resultForAnotherStepIsDroppedAsStale() throws {
        var harness = try Harness.started(shards: 1, workers: [1])
        _ = try harness.begin(1)
        #expect(harness.result(1, step: 1, shard: 0).completedSteps == [1])
        _ = try harness.begin(2)
        let old = harness.result(1, step: 1, shard: 0)
        let future = harness.result(1, step: 3, shard: 0)
        #expect(old.discards.map(\.reason) == [.wrongStep(current: 2)])
        #expect(future.discards.map(\.reason) == [.wrongStep(current: 2)])
        #expect(harness.machine.statistics.stale == 2)
    }

    @Test func resultFromUnknownOrDepartedWorkerIsDropped() throws {
        var harness = try Harness.started(shards: 2, workers: [1, 2])
        _ = try harness.begin(1)
        _ = harness.send(.workerLeft(2))
        let departed = harness.result(2, step: 1, shard: 1)
        let stranger = harness.result(9, step: 1, shard: 1)
        #expect(departed.discards.map(\.reason) == [.departedWorker])
        #expect(stranger.discards.map(\.reason) == [.unknownWorker])
        #expect(harness.machine.statistics.unknownWorker == 2)
    }

    @Test func resultForShardNotAssignedToSenderIsDropped() throws {
        var harness = try Harness.started(shards: 2, workers: [1, 2])
        _ = try harness.begin(1)
        let wrong = harness.result(1, step: 1, shard: 1)
        let outOfRange = harness.result(1, step: 1, shard: 7)
        #expect(wrong.discards.map(\.reason) == [.notAssigned])
        #expect(outOfRange.discards.map(\.reason) == [.notAssigned])
        #expect(harness.machine.statistics.notAssigned == 2)
    }

    @Test func corruptResultIsRecomputedElsewhereAndNeverAggregated() throws {
        var harness = try Harness.started(shards: 2, workers: [1, 2])
        _ = try harness.begin(1)
        let actions = harness.send(.corruptResult(1, step: 1, shard: 0))
        #expect(actions.aggregations.isEmpty)
        #expect(actions.shardsByWorker == [2: [0]])
        #expect(harness.machine.statistics.corrupt == 1)
        #expect(harness.machine.statistics.reassignments == 1)
        let recomputed = harness.result(2, step: 1, shard: 0)
        #expect(recomputed.aggregations.map(\.worker) == [2])
    }

    @Test func reorderWindowBoundsHeldResultsAndOpensAsPrefixArrives() throws {
        var harness = try Harness.started(shards: 6, workers: [1, 2, 3, 4, 5, 6]) { $0.reorderWindow = 2 }
        let first = try harness.begin(1)
        #expect(first.work.flatMap(\.shards).sorted() == [0, 1])
        let early = harness.result(2, step: 1, shard: 1)
        #expect(early.aggregations.isEmpty && early.work.isEmpty)
        #expect(harness.machine.heldResultCount == 1)
        let opened = harness.result(1, step: 1, shard: 0)
        #expect(opened.aggregations.map(\.shard) == [0, 1])
        #expect(opened.work.flatMap(\.shards).sorted() == [2, 3])
    }

    @Test func everyHeldTokenIsDiscardedWhenTheRunFinishes() throws {
        var harness = try Harness.started(shards: 3, workers: [1, 2, 3])
        _ = try harness.begin(1)
        _ = harness.result(2, step: 1, shard: 1)
        _ = harness.result(3, step: 1, shard: 2)
        let end = harness.machine.finish(now: harness.now)
        #expect(end.discards.map(\.shard) == [1, 2])
        #expect(end.discards.allSatisfy { $0.reason == .runEnded })
        #expect(end.contains(.shutdown(to: [1, 2, 3])))
    }
}
