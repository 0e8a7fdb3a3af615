import Testing
@testable import Coordination

/// Starting with `expect N`, joining mid-run, parameter versions, and misuse of `beginStep`.
@Suite struct CoordinatorMembershipTests {
    @Test func trainingStartsWhenTheExpectedNumberOfWorkersHasJoined() throws {
        var harness = try Harness(CoordinatorConfiguration(shardCount: 4, expectedWorkers: 3))
        #expect(harness.send(.workerJoined(5)) == [.welcome(5)])
        #expect(harness.send(.workerJoined(2)) == [.welcome(2)])
        #expect(throws: CoordinationError.notStarted(joined: 2, expected: 3)) { try harness.begin(1) }
        #expect(harness.send(.workerJoined(9)) == [.welcome(9), .startTraining(workers: [2, 5, 9])])
        #expect(harness.machine.phase == .running)
        #expect(try harness.begin(1).work.count == 3)
    }

    @Test func workerJoiningMidStepGetsWorkAndParametersNextStep() throws {
        var harness = try Harness.started(shards: 4, workers: [1, 2])
        _ = try harness.begin(1)
        let joined = harness.send(.workerJoined(3))
        #expect(joined == [.welcome(3)])  // nothing orphaned: the running step is left alone
        for (worker, shard) in [(1, 0), (1, 1), (2, 2), (2, 3)] as [(WorkerID, Int)] {
            _ = harness.result(worker, step: 1, shard: shard)
        }
        let next = try harness.begin(2)
        #expect(next.shardsByWorker == [1: [0, 1], 2: [2], 3: [3]])
        #expect(next.work.first { $0.worker == 3 }?.includeParameters == true)
    }

    @Test func workerJoiningWhileShardsAreOrphanedTakesThemAtOnce() throws {
        var harness = try Harness.started(shards: 2, workers: [1])
        _ = try harness.begin(1)
        _ = harness.send(.workerLeft(1))
        let joined = harness.send(.workerJoined(4))
        #expect(joined.first == .welcome(4))
        #expect(joined.shardsByWorker == [4: [0, 1]])
        #expect(joined.work.first?.includeParameters == true)
    }

    @Test func parametersAreSentOnlyToWorkersWithoutTheCurrentVersion() throws {
        var harness = try Harness.started(shards: 4, workers: [1, 2])
        let first = try harness.begin(1, version: 10)
        #expect(first.work.map(\.includeParameters) == [true, true])
        // Worker 2 leaves: worker 1 already holds version 10, so the reassignment carries no parameters.
        let moved = harness.send(.workerLeft(2))
        #expect(moved.work.map(\.includeParameters) == [false])
        for shard in 0..<4 { _ = harness.result(1, step: 1, shard: shard) }
        // Same version again (nothing changed): no parameters.
        #expect(try harness.begin(2, version: 10).work.map(\.includeParameters) == [false])
        for shard in 0..<4 { _ = harness.result(1, step: 2, shard: shard) }
        // New version delivered by a broadcast beforehand: no parameters in the work message.
        _ = harness.send(.parametersDelivered(1, version: 11))
        #expect(try harness.begin(3, version: 11).work.map(\.includeParameters) == [false])
        for shard in 0..<4 { _ = harness.result(1, step: 3, shard: shard) }
        // New version not delivered: parameters go with the work.
        #expect(try harness.begin(4, version: 12).work.map(\.includeParameters) == [true])
    }

    @Test func restartedWorkerThatAlreadyHoldsTheVersionGetsNoParameters() throws {
        var harness = try Harness(CoordinatorConfiguration(shardCount: 1, expectedWorkers: 1))
        _ = harness.send(.workerJoined(1, parameterVersion: 7))
        #expect(try harness.begin(1, version: 7).work.map(\.includeParameters) == [false])
    }

    @Test func beginningAStepWhileOneIsInProgressThrows() throws {
        var harness = try Harness.started(shards: 1, workers: [1])
        _ = try harness.begin(1)
        #expect(throws: CoordinationError.stepInProgress(current: 1, requested: 2)) { try harness.begin(2) }
    }

    @Test func stepNumbersMustIncrease() throws {
        var harness = try Harness.started(shards: 1, workers: [1])
        _ = try harness.begin(5)
        _ = harness.result(1, step: 5, shard: 0)
        #expect(throws: CoordinationError.stepNotIncreasing(previous: 5, requested: 5)) { try harness.begin(5) }
    }

    @Test func joinAfterTheRunFinishedIsRejected() throws {
        var harness = try Harness.started(shards: 1, workers: [1])
        _ = harness.machine.finish(now: harness.now)
        guard case .reject(2, _)? = harness.send(.workerJoined(2)).first else {
            Issue.record("expected a reject")
            return
        }
    }

    @Test func invalidConfigurationNamesTheField() {
        #expect(throws: CoordinationError.invalidConfiguration(field: "shards", value: "0", expected: "at least 1")) {
            try CoordinatorStateMachine(configuration: CoordinatorConfiguration(shardCount: 0, expectedWorkers: 1), now: 0)
        }
        let error = CoordinationError.invalidConfiguration(field: "shards", value: "0", expected: "at least 1")
        #expect(error.description == "coordination setting 'shards' is 0; expected at least 1")
    }
}
