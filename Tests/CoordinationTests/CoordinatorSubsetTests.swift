import Testing
@testable import Coordination

/// Steps over a subset of the shards: a host agent's share of a global step.
@Suite struct CoordinatorSubsetTests {
    @Test func onlyTheSubsetIsPlannedInContiguousBlocksAndItCompletesTheStep() throws {
        var harness = try Harness.started(shards: 8, workers: [1, 2]) { $0.auditEvery = 1 }
        let sent = try harness.machine.beginStep(1, parameterVersion: 1, now: harness.now, subset: [5, 4, 7, 6])
        #expect(sent.shardsByWorker == [1: [4, 5], 2: [6, 7]])
        #expect(sent.auditPairs.isEmpty, "a subset step is never audited")
        var aggregated: [Int] = [], completed: [Int] = []
        for (worker, shard) in [(2, 7), (1, 4), (2, 6), (1, 5)] {
            let actions = harness.result(WorkerID(worker), step: 1, shard: shard)
            aggregated += actions.aggregations.map(\.shard)
            completed += actions.completedSteps
        }
        #expect(aggregated == [4, 5, 6, 7], "in shard order, only the subset")
        #expect(completed == [1])
    }

    @Test func aResultForAShardOutsideTheSubsetIsRefused() throws {
        var harness = try Harness.started(shards: 4, workers: [1, 2])
        _ = try harness.machine.beginStep(1, parameterVersion: 1, now: harness.now, subset: [2, 3])
        let stray = harness.result(1, step: 1, shard: 0)
        #expect(stray.aggregations.isEmpty)
        #expect(stray.discards.count == 1)
    }

    @Test func anEmptyOrOutOfRangeSubsetIsRefused() throws {
        var harness = try Harness.started(shards: 4, workers: [1])
        #expect(throws: CoordinationError.self) { try harness.machine.beginStep(1, parameterVersion: 1, now: harness.now, subset: []) }
        #expect(throws: CoordinationError.self) { try harness.machine.beginStep(1, parameterVersion: 1, now: harness.now, subset: [1, 4]) }
        #expect(throws: CoordinationError.self) { try harness.machine.beginStep(1, parameterVersion: 1, now: harness.now, subset: [-1]) }
        // Nothing was started: a valid subset still begins step 1.
        #expect(try !harness.machine.beginStep(1, parameterVersion: 1, now: harness.now, subset: [0]).work.isEmpty)
    }

    @Test func aWorkerLeavingMidStepHasItsSubsetShardsReassignedAndTheStepStillCompletes() throws {
        var harness = try Harness.started(shards: 8, workers: [1, 2])
        _ = try harness.machine.beginStep(1, parameterVersion: 1, now: harness.now, subset: [4, 5, 6, 7])
        let left = harness.send(.workerLeft(2))
        let reassigned = left.work.filter { $0.worker == 1 }.flatMap(\.shards).sorted()
        #expect(reassigned == [6, 7])
        var aggregated: [Int] = [], completed: [Int] = []
        for shard in [4, 5, 6, 7] {
            let actions = harness.result(1, step: 1, shard: shard)
            aggregated += actions.aggregations.map(\.shard)
            completed += actions.completedSteps
        }
        #expect(aggregated == [4, 5, 6, 7])
        #expect(completed == [1])
    }
}
