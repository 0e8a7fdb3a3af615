import Testing
@testable import Coordination

/// Heartbeats, evictions, stragglers and the timeouts that keep a run from hanging.
@Suite struct CoordinatorLivenessTests {
    @Test func silentWorkerIsEvictedAndExactlyItsMissingShardsAreReassigned() throws {
        var harness = try Harness.started(shards: 6, workers: [1, 2, 3])
        let sent = try harness.begin(1)
        #expect(sent.shardsByWorker[3] == [4, 5])
        _ = harness.result(3, step: 1, shard: 4)  // worker 3 finishes shard 4, then dies
        var actions = harness.run(for: .milliseconds(4_900), heartbeating: [1, 2])
        #expect(actions.evicted.isEmpty)
        actions = harness.run(for: .milliseconds(200), heartbeating: [1, 2])
        #expect(actions.evicted == [3])
        #expect(actions.work.flatMap(\.shards) == [5])
        #expect(harness.machine.statistics.evictions == 1)
        #expect(harness.machine.statistics.reassignments == 1)
        let owners = (sent.work + actions.work).flatMap { work in work.shards.map { ($0, work.worker) } }
        var aggregated: [Int] = []
        var completed: [Int] = []
        for shard in [0, 1, 2, 3, 5] {
            let worker = owners.last { $0.0 == shard }!.1
            let out = harness.result(worker, step: 1, shard: shard)
            aggregated += out.aggregations.map(\.shard)
            completed += out.completedSteps
        }
        #expect(aggregated == [0, 1, 2, 3, 4, 5])
        #expect(completed == [1])
    }

    @Test func heartbeatingWorkerIsNeverEvicted() throws {
        var harness = try Harness.started(shards: 1, workers: [1])
        let actions = harness.run(for: .seconds(60), heartbeating: [1])
        #expect(actions.evicted.isEmpty)
        #expect(harness.machine.liveWorkers == [1])
    }

    @Test func gracefulLeaveReassignsWithoutCountingAnEviction() throws {
        var harness = try Harness.started(shards: 2, workers: [1, 2])
        _ = try harness.begin(1)
        let actions = harness.send(.workerLeft(2))
        #expect(actions.shardsByWorker == [1: [1]])
        #expect(harness.machine.statistics.leaves == 1)
        #expect(harness.machine.statistics.evictions == 0)
    }

    @Test func coordinatorHeartbeatsGoToLiveWorkersEveryInterval() throws {
        var harness = try Harness.started(shards: 1, workers: [1, 2])
        let actions = harness.run(for: .seconds(2), slice: .milliseconds(100), heartbeating: [1, 2])
        let beats = actions.filter { $0 == .heartbeat(to: [1, 2]) }
        #expect(beats.count == 4)  // 2 s at the default 500 ms interval
    }

    @Test func stragglerIsDuplicatedOnIdleWorkerAndLateResultDropped() throws {
        var harness = try Harness.started(shards: 2, workers: [1, 2]) { $0.stragglerDeadline = .seconds(2) }
        _ = try harness.begin(1)
        _ = harness.result(1, step: 1, shard: 0)  // worker 1 is now idle; worker 2 straggles on shard 1
        var actions = harness.run(for: .milliseconds(1_900), heartbeating: [1, 2])
        #expect(actions.work.isEmpty)
        actions = harness.run(for: .milliseconds(200), heartbeating: [1, 2])
        #expect(actions.shardsByWorker == [1: [1]])
        #expect(harness.machine.statistics.stragglerDuplicates == 1)
        let copy = harness.result(1, step: 1, shard: 1)
        #expect(copy.aggregations.map(\.worker) == [1])
        #expect(copy.completedSteps == [1])
        let late = harness.result(2, step: 1, shard: 1)
        #expect(late.discards.count == 1)
        #expect(late.aggregations.isEmpty)
    }

    @Test func adaptiveStragglerDeadlineIsThreeTimesMedianShardTimeWithTwoSecondFloor() throws {
        var harness = try Harness.started(shards: 1, workers: [1])
        #expect(harness.machine.stragglerDeadline == .seconds(2))
        let times: [Duration] = [.seconds(1), .seconds(3), .seconds(2)]
        for (index, time) in times.enumerated() {
            _ = try harness.begin(index + 1)
            harness.advance(time)
            _ = harness.result(1, step: index + 1, shard: 0)
        }
        #expect(harness.machine.stragglerDeadline == .seconds(6))  // median 2 s × 3
    }

    @Test func runFailsAfterNoWorkersForNoWorkerTimeout() throws {
        var harness = try Harness.started(shards: 1, workers: [1]) { $0.noWorkerTimeout = .seconds(30) }
        _ = try harness.begin(1)
        _ = harness.send(.workerLeft(1))
        var actions = harness.run(for: .milliseconds(29_900), heartbeating: [])
        #expect(actions.failures.isEmpty)
        actions = harness.run(for: .milliseconds(200), heartbeating: [])
        #expect(actions.failures.count == 1)
        #expect(harness.machine.phase == .failed)
        #expect(harness.run(for: .seconds(1), heartbeating: []).isEmpty)
    }

    @Test func joinBeforeNoWorkerTimeoutKeepsTheRunAlive() throws {
        var harness = try Harness.started(shards: 1, workers: [1])
        _ = try harness.begin(1)
        _ = harness.send(.workerLeft(1))
        _ = harness.run(for: .seconds(20), heartbeating: [])
        let rejoined = harness.send(.workerJoined(7))
        #expect(rejoined.shardsByWorker == [7: [0]])
        let actions = harness.run(for: .seconds(40), heartbeating: [7])
        #expect(actions.failures.isEmpty)
    }

    @Test func runFailsWhenExpectedWorkersDoNotJoinWithinStartTimeout() throws {
        var configuration = CoordinatorConfiguration(shardCount: 2, expectedWorkers: 3)
        configuration.startTimeout = .seconds(10)
        var harness = try Harness(configuration)
        _ = harness.send(.workerJoined(1))
        var actions = harness.run(for: .milliseconds(9_900), heartbeating: [1])
        #expect(actions.failures.isEmpty)
        actions = harness.run(for: .milliseconds(200), heartbeating: [1])
        guard case let .startTimeout(joined, expected, waited)? = actions.failures.first else {
            Issue.record("expected a start timeout, got \(actions)")
            return
        }
        #expect(joined == 1 && expected == 3)
        #expect(waited >= 10_000_000_000 && waited < 10_200_000_000)
        #expect(actions.contains(.shutdown(to: [1])))
    }

    @Test func evictedWorkerThatStillTalksIsToldItIsOut() throws {
        var harness = try Harness.started(shards: 1, workers: [1, 2])
        _ = harness.run(for: .seconds(6), heartbeating: [1])
        let actions = harness.send(.heartbeat(2))
        guard case let .reject(worker, reason)? = actions.first else {
            Issue.record("expected a reject, got \(actions)")
            return
        }
        #expect(worker == 2)
        #expect(reason.contains("silent"))
    }
}
