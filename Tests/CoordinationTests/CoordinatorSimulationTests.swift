import Testing
@testable import Coordination
import struct TensorCore.DeterministicRNG

/// A seeded discrete-time simulation of a cluster with random delays, kills, joins, stragglers,
/// corrupt and duplicated results, checked against the invariants the maths layer relies on.
@Suite struct CoordinatorSimulationTests {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func everyStepAggregatesEachShardExactlyOnceInOrder(seed: UInt64) throws {
        var simulation = try Simulation(seed: seed)
        simulation.run()
        #expect(simulation.failures.isEmpty)
        #expect(simulation.completedSteps == Simulation.targetSteps)
        #expect(simulation.orderViolations.prefix(5) == [])
        #expect(simulation.parameterViolations == 0)
        #expect(simulation.maxHeld <= simulation.window - 1)
        // Every token the coordinator was given came back exactly once; retained audit tokens were released.
        #expect(simulation.tokensIssued == Set(simulation.tokenReturns.keys))
        #expect(simulation.tokenReturns.values.allSatisfy { $0 == 1 })
        #expect(simulation.retained.isEmpty)
        // The faults were really exercised.
        let statistics = simulation.harness.machine.statistics
        #expect(statistics.evictions > 0)
        #expect(statistics.stragglerDuplicates > 0)
        #expect(statistics.duplicates > 0)
        #expect(statistics.corrupt > 0)
        #expect(statistics.unknownWorker > 0)
        #expect(statistics.auditsCompared > 0)
    }
}

struct Simulation {
    static let targetSteps = 200
    static let shards = 6
    static let tick: Nanoseconds = 10_000_000

    struct Worker {
        var alive = true
        var jobs: [(step: Int, shard: Int)] = []
        var busyUntil: Nanoseconds?
        var nextHeartbeat: Nanoseconds
        var parameterVersion: UInt64?
        /// A frozen process (a long GC pause, a swapped-out host): no heartbeats, no progress.
        var pausedUntil: Nanoseconds = 0
        /// When the worker reads the coordinator's reject and exits (after any pause ends).
        var exitsAt: Nanoseconds = .max
    }

    var rng: DeterministicRNG
    var harness: Harness
    var workers: [WorkerID: Worker] = [:]
    var inbox: [(at: Nanoseconds, order: Int, event: CoordinatorEvent)] = []
    var messageCount = 0
    var nextWorkerID: WorkerID = 1
    var version: UInt64 = 0
    var aggregated: [Int: [Int]] = [:]
    var completedSteps = 0
    var begunStep = 0
    var done = false
    let window = 4

    var failures: [CoordinationError] = []
    var orderViolations: [String] = []
    var parameterViolations = 0
    var maxHeld = 0
    var tokensIssued = Set<ResultToken>()
    var tokenReturns: [ResultToken: Int] = [:]
    var retained = Set<ResultToken>()

    init(seed: UInt64) throws {
        rng = DeterministicRNG(seed)
        var configuration = CoordinatorConfiguration(shardCount: Self.shards, expectedWorkers: 3)
        configuration.reorderWindow = window
        configuration.auditEvery = 5
        harness = try Harness(configuration)
        for _ in 0..<3 { spawnWorker() }
    }

    mutating func spawnWorker() {
        let id = nextWorkerID
        nextWorkerID += 1
        workers[id] = Worker(nextHeartbeat: harness.now + 500_000_000)
        deliver(.workerJoined(id), after: 1_000_000)
    }

    mutating func deliver(_ event: CoordinatorEvent, after delay: Nanoseconds) {
        inbox.append((harness.now + delay, messageCount, event))
        messageCount += 1
    }

    mutating func run() {
        let limit = harness.now + 3_600_000_000_000
        while harness.now < limit, !(done && inbox.isEmpty), failures.isEmpty {
            let due = inbox.filter { $0.at <= harness.now }.sorted { ($0.at, $0.order) < ($1.at, $1.order) }
            inbox.removeAll { $0.at <= harness.now }
            for message in due { process(harness.send(message.event)) }
            if !done { stepWorkers() }
            process(harness.tick())
            harness.now += Self.tick
        }
    }

    mutating func stepWorkers() {
        for id in workers.keys.sorted() where workers[id]!.alive && workers[id]!.exitsAt <= harness.now {
            workers[id]!.alive = false
        }
        for id in workers.keys.sorted() where workers[id]!.alive && workers[id]!.pausedUntil <= harness.now {
            if harness.now >= workers[id]!.nextHeartbeat {
                workers[id]!.nextHeartbeat = harness.now + 500_000_000
                deliver(.heartbeat(id), after: 1_000_000)
            }
            guard let finish = workers[id]!.busyUntil, finish <= harness.now else { continue }
            let job = workers[id]!.jobs.removeFirst()
            let delay = rng.between(1_000_000, 20_000_000)
            if rng.chance(0.02) {
                deliver(.corruptResult(id, step: job.step, shard: job.shard), after: delay)
            } else {
                sendResult(id, job, after: delay)
                if rng.chance(0.03) { sendResult(id, job, after: delay + rng.between(0, 300_000_000)) }
            }
            workers[id]!.busyUntil = workers[id]!.jobs.isEmpty ? nil : harness.now + jobDuration()
        }
        let alive = workers.keys.filter { workers[$0]!.alive }.sorted()
        if alive.count >= 2, rng.chance(0.003) {
            workers[alive[rng.nextIndex(below: alive.count)]]!.alive = false
        }
        let busy = alive.filter { workers[$0]!.busyUntil != nil }
        if alive.count >= 2, !busy.isEmpty, rng.chance(0.002) {
            let paused = busy[rng.nextIndex(below: busy.count)]
            workers[paused]!.pausedUntil = harness.now + rng.between(3_000_000_000, 7_000_000_000)
            if let finish = workers[paused]!.busyUntil { workers[paused]!.busyUntil = max(finish, workers[paused]!.pausedUntil) }
        }
        if alive.count < 6, rng.chance(0.002) { spawnWorker() }
    }

    mutating func sendResult(_ worker: WorkerID, _ job: (step: Int, shard: Int), after delay: Nanoseconds) {
        let token = harness.nextToken
        harness.nextToken += 1
        tokensIssued.insert(token)
        deliver(.shardResult(worker, step: job.step, shard: job.shard, token: token), after: delay)
    }

    mutating func jobDuration() -> Nanoseconds {
        rng.chance(0.02) ? rng.between(3_000_000_000, 6_000_000_000) : rng.between(5_000_000, 40_000_000)
    }

    mutating func returned(_ token: ResultToken) {
        tokenReturns[token, default: 0] += 1
    }

    mutating func begin(_ step: Int) {
        version += 1
        begunStep = step
        do {
            process(try harness.machine.beginStep(step, parameterVersion: version, now: harness.now))
        } catch {
            orderViolations.append("beginStep(\(step)) threw \(error)")
        }
    }

    mutating func process(_ actions: [CoordinatorAction]) {
        maxHeld = max(maxHeld, harness.machine.heldResultCount)
        for action in actions {
            switch action {
            case .startTraining:
                begin(1)
            case let .sendWork(work):
                guard workers[work.worker]?.alive == true else { continue }
                if work.includeParameters {
                    workers[work.worker]!.parameterVersion = work.parameterVersion
                } else if workers[work.worker]!.parameterVersion != work.parameterVersion {
                    parameterViolations += 1
                }
                workers[work.worker]!.jobs += work.shards.map { (work.step, $0) }
                if workers[work.worker]!.busyUntil == nil {
                    workers[work.worker]!.busyUntil = harness.now + jobDuration()
                }
            case let .aggregate(aggregation):
                let expected = aggregated[aggregation.step, default: []].count
                if aggregation.shard != expected || aggregation.step != begunStep {
                    orderViolations.append("step \(aggregation.step): got shard \(aggregation.shard), expected \(expected)")
                }
                aggregated[aggregation.step, default: []].append(aggregation.shard)
                returned(aggregation.token)
                if aggregation.retainForAudit { retained.insert(aggregation.token) }
            case let .discard(discard):
                returned(discard.token)
            case let .auditPair(pair):
                returned(pair.tokenB)
                if retained.remove(pair.tokenA) == nil || pair.workerA == pair.workerB {
                    orderViolations.append("bad audit pair \(pair)")
                }
            case let .auditAbandoned(_, _, token):
                if let token, retained.remove(token) == nil { orderViolations.append("unretained token \(token)") }
            case let .stepComplete(step):
                if aggregated[step] != Array(0..<Self.shards) {
                    orderViolations.append("step \(step) aggregated \(aggregated[step] ?? [])")
                }
                completedSteps += 1
                if completedSteps < Self.targetSteps {
                    begin(step + 1)
                } else {
                    process(harness.machine.finish(now: harness.now))
                }
            case let .evict(worker, _), let .reject(worker, _):
                // The worker reads this once it runs again; until then it may still send (stale) messages.
                if let paused = workers[worker]?.pausedUntil {
                    workers[worker]!.exitsAt = min(workers[worker]!.exitsAt, max(paused, harness.now) + Self.tick)
                }
            case .shutdown:
                done = true
            case let .fail(error):
                failures.append(error)
            case .welcome, .heartbeat:
                break
            }
        }
    }
}
