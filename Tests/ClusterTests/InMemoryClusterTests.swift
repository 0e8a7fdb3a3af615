import Cluster
import Coordination
import Foundation
@testable import Stress
import Testing
import Transport
import WireProtocol

/// A clock the test moves by hand: nothing times out unless the test says so.
final class ManualClock: @unchecked Sendable {
    var now: UInt64 = 1_000_000_000
    func advance(ms: Int) { now += UInt64(ms) * 1_000_000 }
    var read: () -> UInt64 { { [unowned self] in now } }
}

/// A whole `chorus stress` cluster in one process: the real ``CoordinatorHost`` and
/// ``WorkerHost``s over an ``InMemoryHub``, driven turn by turn with a manual clock, every
/// aggregate checked exactly by the stress aggregator.
final class InMemoryCluster {
    static let runID: UInt64 = 0xC0FFEE
    let clock = ManualClock()
    let hub = InMemoryHub(endpoint: "inproc://cluster")
    let settings: StressSettings
    let coordinator: StressCoordinator
    var workers: [StressWorker] = []
    /// Workers the test holds back (hung or slow): not polled.
    var paused = Set<Int>()
    /// Exit status of each worker that ended.
    var exits: [Int: Int32] = [:]

    init(workers count: Int, shards: Int, parameters: Int = 1_000, timeoutMs: Int = 5_000, stragglerMinimumMs: Int = 300) throws {
        var settings = StressSettings()
        settings.workers = count
        settings.shards = shards
        settings.parameters = parameters
        settings.steps = 10
        settings.sharedMemory = false
        settings.timeoutMs = timeoutMs
        settings.stragglerMinimumMs = stragglerMinimumMs
        self.settings = settings
        coordinator = try StressCoordinator(settings: settings, runID: Self.runID, transport: hub, children: nil, clock: clock.read)
        for slot in 0..<count { addWorker(requesting: slot) }
    }

    /// Connects one more worker, asking for worker id `requesting` (−1: any).
    @discardableResult
    func addWorker(requesting: Int = -1) -> Int {
        var options = StressWorkerOptions(connect: hub.endpoint)
        options.workerID = requesting
        options.heartbeatMs = settings.heartbeatMs
        options.timeoutMs = settings.timeoutMs
        let worker = StressWorker(options: options, transport: hub.connect(), clock: clock.read)
        workers.append(worker)
        let index = workers.count - 1
        if let status = worker.host.start() { exits[index] = status }
        return index
    }

    /// One round: the coordinator handles what is queued, then every running worker does.
    func round() throws {
        try coordinator.host.pump(timeoutMs: 0)
        for (index, worker) in workers.enumerated() where exits[index] == nil && !paused.contains(index) {
            if let status = worker.host.poll(timeoutMs: 0) { exits[index] = status }
        }
    }

    /// Rounds until `done`, advancing the clock `stepMs` per round; fails after `limit` rounds.
    func drive(stepMs: Int = 0, limit: Int = 2_000, until done: () -> Bool) throws {
        for _ in 0..<limit {
            if done() { return }
            try round()
            clock.advance(ms: stepMs)
        }
        Issue.record("the cluster did not get there in \(limit) rounds")
    }

    func start() throws { try drive { coordinator.host.started } }

    /// Runs `step` to completion and checks its aggregate; true when it was exact.
    func step(_ step: Int, stepMs: Int = 0, beforeDriving: (() throws -> Void)? = nil) throws -> Bool {
        let wrongBefore = coordinator.report.wrongAggregates
        try coordinator.beginStep(step)
        try beforeDriving?()
        try drive(stepMs: stepMs) { coordinator.host.stepDone }
        coordinator.finishStep(step)
        return coordinator.report.wrongAggregates == wrongBefore && coordinator.report.contributionsAggregated > 0
    }

    var statistics: CoordinatorStatistics { coordinator.host.machine.statistics }
    func id(of index: Int) -> WorkerID? { workers[index].host.machine.workerID }
}

@Suite struct InMemoryClusterTests {
    @Test func workersJoinAndAStepAggregatesExactlyInShardOrder() throws {
        let cluster = try InMemoryCluster(workers: 3, shards: 4)
        try cluster.start()
        #expect(Set(cluster.coordinator.host.liveWorkers) == [0, 1, 2])
        #expect(try cluster.step(1))
        #expect(try cluster.step(2))
        #expect(cluster.coordinator.report.contributionsAggregated == 8)
        #expect(cluster.coordinator.report.outOfOrderReleases == 0)
        #expect(cluster.statistics.workers.values.map(\.shardsComputed).reduce(0, +) >= 8)
    }

    @Test func aSilentWorkerIsEvictedAndItsShardsReassigned() throws {
        // No straggler copies before the eviction: only the timeout can finish the step.
        let cluster = try InMemoryCluster(workers: 2, shards: 4, timeoutMs: 2_000, stragglerMinimumMs: 600_000)
        try cluster.start()
        #expect(try cluster.step(1))
        // Worker 1 hangs: it gets step 2's work but never answers or heartbeats again.
        cluster.paused = [1]
        #expect(try cluster.step(2, stepMs: 50))
        #expect(cluster.statistics.evictions == 1)
        #expect(cluster.statistics.reassignments >= 1)
        #expect(cluster.coordinator.host.liveWorkers == [cluster.id(of: 0)!])
        // The evicted worker, once it runs again, is told to leave.
        cluster.paused = []
        try cluster.drive(stepMs: 50) { cluster.exits[1] != nil }
        #expect(cluster.exits[0] == nil)
    }

    @Test func aWorkerThatLeavesMidStepHasItsShardsReassigned() throws {
        let cluster = try InMemoryCluster(workers: 2, shards: 4)
        try cluster.start()
        let exact = try cluster.step(1) {
            // Worker 1 has its work queued; it says leave instead of computing.
            cluster.paused = [1]
            try cluster.workers[1].host.transport.send(.leave(Leave(reason: "test")), runID: InMemoryCluster.runID)
        }
        #expect(exact)
        #expect(cluster.statistics.leaves == 1)
        #expect(cluster.statistics.reassignments >= 1)
        #expect(cluster.statistics.evictions == 0)
    }

    @Test func aStragglerGetsADuplicateAndItsLateResultIsNotAddedTwice() throws {
        let cluster = try InMemoryCluster(workers: 2, shards: 2, timeoutMs: 60_000)
        try cluster.start()
        #expect(try cluster.step(1))
        cluster.paused = [1]
        // Worker 1 is slow (not silent long enough to be evicted): the other computes a copy.
        #expect(try cluster.step(2, stepMs: 20))
        #expect(cluster.statistics.stragglerDuplicates >= 1)
        #expect(cluster.statistics.evictions == 0)
        cluster.paused = []
        let aggregated = cluster.coordinator.report.contributionsAggregated
        #expect(try cluster.step(3))
        #expect(cluster.coordinator.report.contributionsAggregated == aggregated + 2)
        #expect(cluster.statistics.stale + cluster.statistics.duplicates >= 1)
    }

    @Test func aLateJoinerTakesWorkFromTheNextStep() throws {
        let cluster = try InMemoryCluster(workers: 2, shards: 4)
        try cluster.start()
        #expect(try cluster.step(1))
        let late = cluster.addWorker()
        try cluster.drive { cluster.coordinator.host.liveWorkers.count == 3 }
        let id = try #require(cluster.id(of: late))
        #expect(id == 2)  // the next id never handed out
        #expect(try cluster.step(2))
        #expect(try cluster.step(3))
        #expect((cluster.statistics.workers[id]?.shardsComputed ?? 0) >= 1)
    }

    @Test func aMessageFromAnotherRunIsRefusedWithWrongRun() throws {
        let cluster = try InMemoryCluster(workers: 1, shards: 1)
        try cluster.start()
        let stranger = cluster.hub.connect()
        try stranger.send(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 0)), runID: 12345)
        try cluster.round()
        let reply = try #require(try stranger.receive(timeoutMs: 0))
        let (_, message) = try WireCodec.decode(frames: reply.frames)
        guard case .reject(let reject) = message else { Issue.record("expected a reject, got \(message.kind)"); return }
        #expect(reject.code == .wrongRun)
        #expect(reject.message.contains("your run 12345 is over"))
        #expect(try cluster.step(1))
    }

    @Test func aWorkerWithOtherGradientsIsRefusedAtJoinAndExitsWithStatus2() throws {
        let cluster = try InMemoryCluster(workers: 1, shards: 1)
        try cluster.start()
        // A worker whose data (here: generator) differs: its ready join carries another fingerprint.
        let odd = FixedFingerprintWorkload(fingerprint: 0xBAD)
        let host = WorkerHost(workload: odd, transport: cluster.hub.connect(), heartbeatMs: 250, timeoutMs: 5_000, clock: cluster.clock.read)
        var status = host.start()
        for _ in 0..<20 where status == nil {
            try cluster.round()
            status = host.poll(timeoutMs: 0)
        }
        #expect(status == 2)
        #expect(odd.prepared == 1)
        #expect(cluster.coordinator.host.liveWorkers.count == 1)
        #expect(try cluster.step(1))
    }

    @Test func aWorkerWhoseCoordinatorFallsSilentExitsAfterItsTimeout() throws {
        let cluster = try InMemoryCluster(workers: 1, shards: 1, timeoutMs: 1_000)
        try cluster.start()
        // The coordinator stops pumping; the worker's own clock runs out.
        var status: Int32?
        for _ in 0..<100 where status == nil {
            cluster.clock.advance(ms: 50)
            status = cluster.workers[0].host.poll(timeoutMs: 0)
        }
        #expect(status == 1)
        #expect(cluster.workers[0].host.machine.state == .exited)
    }
}

/// A worker workload that computes nothing and joins with a fixed fingerprint.
final class FixedFingerprintWorkload: WorkerWorkload {
    let fingerprint: UInt64
    var prepared = 0
    init(fingerprint: UInt64) { self.fingerprint = fingerprint }
    var logName: String { "test worker" }
    func prepare(_ welcome: Welcome) throws -> UInt64 { prepared += 1; return fingerprint }
    func compute(_ work: Work, runID: UInt64, send: ([Frame]) throws -> Void) throws {}
}

@Suite struct FileOutputTests {
    @Test func aFailedWriteIsAnErrorNamingTheFileNotATrap() throws {
        let full = try AppendingFile(path: "/dev/full", truncate: false)
        #expect(throws: RuntimeError.self) { try full.append("a metrics row\n") }
        do { try full.append("x") } catch { #expect("\(error)".contains("/dev/full") && "\(error)".contains("No space left on device"), "\(error)") }
    }
}
