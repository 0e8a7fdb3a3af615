import Testing
@testable import Coordination

/// The worker's side: join, heartbeats, compute requests and the ways it exits.
@Suite struct WorkerStateMachineTests {
    let address = "tcp://127.0.0.1:5555"
    let start: Nanoseconds = 1_000_000_000

    func joinedWorker() -> (WorkerStateMachine, Nanoseconds) {
        var worker = WorkerStateMachine(coordinatorAddress: address, now: start)
        _ = worker.handle(.connected, now: start)
        _ = worker.handle(.welcome(3), now: start)
        return (worker, start)
    }

    /// Ticks every 100 ms for `seconds`, optionally hearing from the coordinator each tick; returns all actions.
    func run(_ worker: inout WorkerStateMachine, from now: inout Nanoseconds, seconds: Double,
             coordinatorAlive: Bool) -> [WorkerAction] {
        var actions: [WorkerAction] = []
        for _ in 0..<Int(seconds * 10) {
            now += 100_000_000
            if coordinatorAlive { actions += worker.handle(.heartbeatFromCoordinator, now: now) }
            actions += worker.handle(.tick, now: now)
        }
        return actions
    }

    @Test func connectingSendsJoinAndWelcomeJoins() {
        var worker = WorkerStateMachine(coordinatorAddress: address, now: start)
        #expect(worker.handle(.connected, now: start) == [.sendJoin(parameterVersion: nil)])
        #expect(worker.state == .joining)
        #expect(worker.handle(.welcome(3), now: start) == [.sendHeartbeat])
        #expect(worker.state == .joined)
        #expect(worker.workerID == 3)
    }

    @Test func heartbeatsGoOutEveryInterval() {
        var (worker, now) = joinedWorker()
        let actions = run(&worker, from: &now, seconds: 3, coordinatorAlive: true)
        #expect(actions.filter { $0 == .sendHeartbeat }.count == 6)
    }

    @Test func silentCoordinatorMakesTheWorkerExitWithAClearMessage() {
        var (worker, now) = joinedWorker()
        var actions = run(&worker, from: &now, seconds: 9.9, coordinatorAlive: false)
        #expect(!actions.contains { if case .exit = $0 { return true } else { return false } })
        actions = run(&worker, from: &now, seconds: 0.2, coordinatorAlive: false)
        #expect(actions.last == .exit(code: 1, message: "coordinator at \(address) silent for 10 s; exiting"))
        #expect(worker.state == .exited)
        #expect(worker.handle(.tick, now: now + 1_000_000_000) == [])
    }

    @Test func coordinatorHeartbeatsKeepTheWorkerAlive() {
        var (worker, now) = joinedWorker()
        let actions = run(&worker, from: &now, seconds: 60, coordinatorAlive: true)
        #expect(!actions.contains { if case .exit = $0 { return true } else { return false } })
    }

    @Test func unansweredJoinTimesOut() {
        var worker = WorkerStateMachine(coordinatorAddress: address, now: start)
        _ = worker.handle(.connected, now: start)
        var now = start
        let actions = run(&worker, from: &now, seconds: 10.1, coordinatorAlive: false)
        // The hello goes out again every second until the join times out; at 5 s the worker says what it waits for.
        let notices = actions.filter { if case .notice = $0 { return true } else { return false } }
        #expect(notices.count == 1)
        #expect("\(notices)".contains("no answer yet from a coordinator at \(address) after 5 s; waiting up to 10 s"))
        #expect(actions.dropLast().filter { !notices.contains($0) } == Array(repeating: .sendJoin(parameterVersion: nil), count: 9))
        #expect(actions.last == .exit(code: 1, message: "coordinator at \(address) did not answer the join for 10 s (is a coordinator running there? if it uses CURVE, does this worker have its public key, --curve-server-key?); exiting"))
    }

    @Test func workWithParametersIsComputedAndVersionRemembered() {
        var (worker, now) = joinedWorker()
        let actions = worker.handle(.work(step: 4, shards: [1, 3], parameterVersion: 9, includesParameters: true), now: now)
        #expect(actions == [.compute(WorkerComputation(step: 4, shards: [1, 3], parameterVersion: 9))])
        #expect(worker.state == .working(step: 4))
        #expect(worker.parameterVersion == 9)
        _ = worker.handle(.computeFinished(step: 4), now: now)
        #expect(worker.state == .joined)
        now += 1
        let next = worker.handle(.work(step: 5, shards: [0], parameterVersion: 9, includesParameters: false), now: now)
        #expect(next == [.compute(WorkerComputation(step: 5, shards: [0], parameterVersion: 9))])
    }

    @Test func workForAVersionTheWorkerLacksEndsItWithAnError() {
        var (worker, now) = joinedWorker()
        now += 1
        let actions = worker.handle(.work(step: 1, shards: [0], parameterVersion: 2, includesParameters: false), now: now)
        guard case let .exit(code, message)? = actions.first else {
            Issue.record("expected an exit, got \(actions)")
            return
        }
        #expect(code == 1)
        #expect(message.contains("parameter version 2"))
    }

    @Test func rejectExitsWithFailureAndShutdownExitsCleanly() {
        var (rejected, now) = joinedWorker()
        #expect(rejected.handle(.reject(reason: "evicted"), now: now)
            == [.exit(code: 2, message: "coordinator at \(address) refused this worker: evicted")])
        var (finished, _) = joinedWorker()
        now += 1
        #expect(finished.handle(.shutdown(reason: "training complete"), now: now)
            == [.exit(code: 0, message: "coordinator at \(address) ended the run: training complete")])
    }

    @Test func itKnowsWhetherItExitedWaitingForAnAnswerOrAfterOne() {
        let configuration = WorkerConfiguration(heartbeatInterval: .milliseconds(500), coordinatorTimeout: .seconds(5), joinTimeout: .seconds(2))
        var unanswered = WorkerStateMachine(coordinatorAddress: address, configuration: configuration, now: start)
        _ = unanswered.handle(.connected, now: start)
        #expect(unanswered.waitingForCoordinator)
        var now = start
        let actions = run(&unanswered, from: &now, seconds: 2.1, coordinatorAlive: false)
        #expect(actions.contains { if case .exit(1, _) = $0 { true } else { false } })
        #expect(unanswered.state == .exited && unanswered.waitingForCoordinator)
        var answered = WorkerStateMachine(coordinatorAddress: address, configuration: configuration, now: start)
        _ = answered.handle(.connected, now: start)
        _ = answered.handle(.welcome(1), now: start)
        #expect(!answered.waitingForCoordinator)
        now = start
        _ = run(&answered, from: &now, seconds: 5.1, coordinatorAlive: false)
        #expect(answered.state == .exited && !answered.waitingForCoordinator)
    }

    @Test func aSilentCoordinatorIsLookedForAgainAndARestartedOneTakesTheWorkerBack() {
        var configuration = WorkerConfiguration(heartbeatInterval: .milliseconds(500), coordinatorTimeout: .seconds(5), joinTimeout: .seconds(5))
        configuration.reconnectTimeout = .seconds(60)
        var worker = WorkerStateMachine(coordinatorAddress: address, configuration: configuration, now: start)
        _ = worker.handle(.connected, now: start)
        _ = worker.handle(.welcome(3), now: start)
        _ = worker.handle(.work(step: 40, shards: [0], parameterVersion: 40, includesParameters: true), now: start)
        _ = worker.handle(.computeFinished(step: 40), now: start)
        var now = start
        // Silent for 5 s: back to joining with a fresh hello, not an exit.
        var actions = run(&worker, from: &now, seconds: 5.05, coordinatorAlive: false)
        #expect(actions.last == .sendJoin(parameterVersion: 40))
        #expect(actions.contains(.notice("coordinator at \(address) silent for 5 s; looking for it again for up to 60 s")))
        #expect(worker.state == .joining)
        #expect(worker.workerID == nil)
        // Hellos every second while it is gone; a restarted coordinator's welcome takes it back,
        // and work for an earlier step (from the checkpoint) is computed.
        actions = run(&worker, from: &now, seconds: 3, coordinatorAlive: false)
        #expect(actions.filter { $0 == .sendJoin(parameterVersion: 40) }.count == 3)
        #expect(worker.handle(.welcome(7), now: now) == [.sendHeartbeat])
        #expect(worker.handle(.work(step: 20, shards: [1], parameterVersion: 20, includesParameters: true), now: now)
            == [.compute(WorkerComputation(step: 20, shards: [1], parameterVersion: 20))])
    }

    @Test func olderWorkIsStaleUnlessItComesWithNewerParameters() {
        var (worker, now) = joinedWorker()
        _ = worker.handle(.work(step: 9, shards: [0], parameterVersion: 9, includesParameters: true), now: now)
        _ = worker.handle(.computeFinished(step: 9), now: now)
        now += 1_000
        // A late copy of earlier work: dropped.
        #expect(worker.handle(.work(step: 5, shards: [0], parameterVersion: 5, includesParameters: true), now: now) == [])
        // The coordinator went back (a rewind): step 5 again under a newer version is computed.
        let rewound: UInt64 = 5 | 1 << 40
        #expect(worker.handle(.work(step: 5, shards: [1], parameterVersion: rewound, includesParameters: true), now: now)
            == [.compute(WorkerComputation(step: 5, shards: [1], parameterVersion: rewound))])
    }

    @Test func anEvictedWorkerExitsWithFailure() {
        var (worker, now) = joinedWorker()
        now += 1
        #expect(worker.handle(.shutdown(reason: "evicted: quarantined: wrong gradients"), now: now)
            == [.exit(code: 1, message: "coordinator at \(address) ended the run: evicted: quarantined: wrong gradients")])
    }

    @Test func aCoordinatorThatNeverComesBackEndsTheWorkerAfterTheReconnectTimeout() {
        var configuration = WorkerConfiguration(coordinatorTimeout: .seconds(5))
        configuration.reconnectTimeout = .seconds(20)
        var worker = WorkerStateMachine(coordinatorAddress: address, configuration: configuration, now: start)
        _ = worker.handle(.connected, now: start)
        _ = worker.handle(.welcome(3), now: start)
        var now = start
        var actions = run(&worker, from: &now, seconds: 19.9, coordinatorAlive: false)
        #expect(!actions.contains { if case .exit = $0 { return true } else { return false } })
        actions = run(&worker, from: &now, seconds: 0.2, coordinatorAlive: false)
        #expect(actions.last == .exit(code: 1, message: "coordinator at \(address) gone for 20 s and did not come back; exiting"))
    }

    @Test func aRejoinRequestFromARestartedCoordinatorSendsAFreshHello() {
        var (worker, now) = joinedWorker()
        #expect(worker.handle(.rejoin, now: now) == [.sendJoin(parameterVersion: nil)])
        #expect(worker.state == .joining)
        now += 1_000_000
        #expect(worker.handle(.welcome(9), now: now) == [.sendHeartbeat])
        #expect(worker.workerID == 9)
    }
}
