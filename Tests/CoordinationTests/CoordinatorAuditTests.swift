import Testing
@testable import Coordination

/// Cross-replica audits: one shard on two distinct workers every K steps.
@Suite struct CoordinatorAuditTests {
    /// Runs one step where every worker answers every shard it was sent, in send order; returns all actions.
    func runStep(_ harness: inout Harness, _ step: Int) throws -> [CoordinatorAction] {
        let sent = try harness.begin(step)
        var actions = sent
        for work in sent.work {
            for shard in work.shards { actions += harness.result(work.worker, step: step, shard: shard) }
        }
        return actions
    }

    @Test func auditPairIsEmittedEveryKStepsFromTwoDistinctWorkers() throws {
        var harness = try Harness.started(shards: 3, workers: [1, 2, 3]) { $0.auditEvery = 2 }
        var pairs: [AuditPair] = []
        for step in 1...6 {
            let actions = try runStep(&harness, step)
            #expect(actions.completedSteps == [step])
            pairs += actions.auditPairs
        }
        #expect(pairs.map(\.step) == [2, 4, 6])
        #expect(pairs.allSatisfy { $0.workerA != $0.workerB })
        #expect(pairs.map(\.shard) == [0, 1, 2])  // the audited shard rotates
        #expect(harness.machine.statistics.auditsCompared == 3)
    }

    @Test func auditedShardAggregatesOnceWithItsTokenRetained() throws {
        var harness = try Harness.started(shards: 2, workers: [1, 2]) { $0.auditEvery = 1 }
        let actions = try runStep(&harness, 1)
        #expect(actions.aggregations.map(\.shard) == [0, 1])
        let pair = try #require(actions.auditPairs.first)
        let audited = try #require(actions.aggregations.first { $0.shard == pair.shard })
        #expect(audited.retainForAudit)
        #expect(audited.token == pair.tokenA)
        #expect(actions.aggregations.filter { $0.shard != pair.shard }.allSatisfy { !$0.retainForAudit })
        #expect(actions.discards.isEmpty)  // the second copy goes to the audit, not the bin
    }

    @Test func reportedMismatchIsCountedForBothWorkers() throws {
        var harness = try Harness.started(shards: 2, workers: [1, 2]) { $0.auditEvery = 1 }
        let pair = try #require(try runStep(&harness, 1).auditPairs.first)
        _ = harness.send(.auditMismatch(step: 1, shard: pair.shard, workerA: pair.workerA, workerB: pair.workerB))
        #expect(harness.machine.statistics.auditMismatches == 1)
        #expect(harness.machine.statistics.workers[pair.workerA]?.auditMismatches == 1)
        #expect(harness.machine.statistics.workers[pair.workerB]?.auditMismatches == 1)
    }

    @Test func auditIsAbandonedWithASingleWorker() throws {
        var harness = try Harness.started(shards: 2, workers: [1]) { $0.auditEvery = 1 }
        let actions = try runStep(&harness, 1)
        #expect(actions.contains(.auditAbandoned(step: 1, shard: 0, retainedToken: nil)))
        #expect(actions.aggregations.allSatisfy { !$0.retainForAudit })
        #expect(actions.completedSteps == [1])
    }

    @Test func auditPartnerEvictedReleasesTheRetainedTokenAndTheStepCompletes() throws {
        var harness = try Harness.started(shards: 2, workers: [1, 2]) { $0.auditEvery = 1 }
        let sent = try harness.begin(1)
        #expect(sent.shardsByWorker == [1: [0], 2: [0, 1]])  // shard 0 audited on worker 2
        let first = harness.result(1, step: 1, shard: 0)
        let retained = try #require(first.aggregations.first)
        #expect(retained.retainForAudit)
        _ = harness.result(2, step: 1, shard: 1)
        let actions = harness.run(for: .seconds(6), heartbeating: [1])  // worker 2 dies before the audit copy
        #expect(actions.evicted == [2])
        #expect(actions.contains(.auditAbandoned(step: 1, shard: 0, retainedToken: retained.token)))
        #expect(actions.completedSteps == [1])
        #expect(harness.machine.statistics.auditsAbandoned == 1)
    }

    @Test func lostAuditPartnerIsReplacedByAnotherWorkerOnce() throws {
        var harness = try Harness.started(shards: 3, workers: [1, 2, 3]) { $0.auditEvery = 1 }
        let sent = try harness.begin(1)
        #expect(sent.shardsByWorker == [1: [0], 2: [0, 1], 3: [2]])  // shard 0 audited on worker 2
        let replaced = harness.send(.workerLeft(2))
        // Shard 1 is reassigned, and the audit copy of shard 0 goes to worker 3 (which never had it).
        #expect(replaced.shardsByWorker == [1: [1], 3: [0]])
        #expect(harness.machine.statistics.reassignments == 1)
        var actions: [CoordinatorAction] = []
        for (worker, shard) in [(1, 0), (1, 1), (3, 2), (3, 0)] as [(WorkerID, Int)] {
            actions += harness.result(worker, step: 1, shard: shard)
        }
        #expect(actions.auditPairs.map { [$0.workerA, $0.workerB] } == [[1, 3]])
        #expect(actions.completedSteps == [1])
    }
}
