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
        #expect(actions == [.exit(code: 1, message: "coordinator at \(address) did not answer the join for 10 s (is a coordinator running there? if it uses CURVE, does this worker have its public key, --curve-server-key?); exiting")])
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
}
