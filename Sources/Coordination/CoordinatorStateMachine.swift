/// The coordinator's protocol logic as a plain value: events and the current time in, actions out; no I/O, no clock.
///
/// The lifecycle of a run (docs/coordination.md says the same at more length):
///
/// 1. `init(configuration:now:)` starts the run in `waitingForWorkers`. Each `workerJoined` is
///    answered with `welcome`. When `expectedWorkers` are alive, `startTraining` is emitted and the
///    phase becomes `running`. If that takes longer than `startTimeout`, `fail(.startTimeout)`.
/// 2. The caller calls `beginStep(n, parameterVersion:now:)`. The S shards are planned in
///    contiguous blocks: shard `i` on live worker `⌊i·W/S⌋` (live workers sorted by id), so a
///    worker holds whole nodes of the shard tree where W divides S. Shards inside the reorder
///    window (`next … next + reorderWindow − 1`) go out as one `sendWork` per worker, carrying
///    the parameters only when that worker does not hold `parameterVersion` yet, and allowed to
///    come back as node sums (`sumNodes`) unless the batch holds the audited shard.
/// 3. On an audit step (`n` a multiple of `auditEvery`) one shard also goes to a second, distinct worker.
/// 4. Each `shardResult` is checked: sender alive, step current, shard assigned to the sender, no
///    result yet (for a node sum: every shard of the node, which must be a node of the tree, and
///    none audited; a node is used whole or refused whole, and refused shards are sent again). Failures come back as `discard` with a reason and are counted. The first valid
///    result for a shard is accepted; accepted results are released as `aggregate` strictly in
///    shard order 0, 1, …, S−1, each as soon as all before it are in; later ones wait (their number
///    is bounded by the reorder window). Each release may open the window to more shards (step 2).
/// 5. A `corruptResult` is counted and, unless another copy is in flight, the shard is sent again,
///    preferably to another worker.
/// 6. On `tick`: heartbeats go out every `heartbeatInterval`; a worker silent past `workerTimeout`
///    is evicted (`evict`) and its unanswered shards are sent to the least-loaded live workers
///    (`workerLeft` does the same gracefully); a worker with no result for the straggler deadline
///    gets each of its unanswered shards copied once to an idle worker (first valid result wins).
/// 7. Workers that join while a step runs take any shard that has no live worker at once, idle
///    workers serve as straggler helpers, and all live workers are planned from the next step on.
/// 8. On the audit shard, the first two results from distinct workers are reported as `auditPair`
///    (after the first was aggregated with `retainForAudit`); if no second result can come, `auditAbandoned`.
/// 9. When all S shards are aggregated (and the audit is resolved), `stepComplete(n)` is emitted.
///    The caller applies the optimizer, increments the parameter version and goes to step 2, or calls `finish`.
/// 10. With no live worker for `noWorkerTimeout` while running, `fail(.noWorkers)`. `finish` and
///    `fail` discard every held result and send `shutdown` to the live workers.
public struct CoordinatorStateMachine: Sendable {
    /// The order of every step's sum, which node results must respect.
    public var tree: ShardTree { ShardTree(count: configuration.shardCount) }

    /// Where the run is.
    public enum Phase: Equatable, Sendable {
        /// Waiting for `expectedWorkers` to join.
        case waitingForWorkers
        /// Training: steps may begin.
        case running
        /// `finish` was called.
        case finished
        /// A timeout ended the run.
        case failed
    }

    struct WorkerRecord: Sendable {
        var lastHeard: Nanoseconds
        var parameterVersion: UInt64?
        /// Shards of the current step this worker was sent and has not answered.
        var inFlight: Set<Int> = []
        /// When the worker last started on work from idle, or last answered.
        var progressAt: Nanoseconds
    }

    /// The settings this machine runs with.
    public let configuration: CoordinatorConfiguration
    /// Where the run is.
    public internal(set) var phase: Phase = .waitingForWorkers
    /// Fault bookkeeping so far.
    public internal(set) var statistics = CoordinatorStatistics()
    /// The last step that completed, if any.
    public internal(set) var lastCompletedStep: Int?

    var workers: [WorkerID: WorkerRecord] = [:]
    var departed: [WorkerID: String] = [:]
    var current: StepState?
    let createdAt: Nanoseconds
    var lastHeartbeatSent: Nanoseconds
    var zeroWorkersSince: Nanoseconds?
    var latencies: LatencyWindow

    /// Starts a run at time `now`; throws ``CoordinationError/invalidConfiguration(field:value:expected:)`` for a bad setting.
    public init(configuration: CoordinatorConfiguration, now: Nanoseconds) throws {
        try configuration.validate()
        self.configuration = configuration
        self.createdAt = now
        self.lastHeartbeatSent = now
        self.latencies = LatencyWindow(capacity: configuration.latencyHistory)
    }

    /// Live workers, ascending.
    public var liveWorkers: [WorkerID] { workers.keys.sorted() }

    /// Accepted results waiting for an earlier shard (never more than `reorderWindow − 1`).
    public var heldResultCount: Int { current?.order.heldCount ?? 0 }

    /// The straggler deadline in force: the fixed one, or `max(minimum, multiplier × median recent shard time)`.
    public var stragglerDeadline: Duration { .nanoseconds(Int64(clamping: stragglerDeadlineNanoseconds)) }

    var stragglerDeadlineNanoseconds: UInt64 {
        if let fixed = configuration.stragglerDeadline { return fixed.clampedNanoseconds }
        let minimum = configuration.stragglerMinimum.clampedNanoseconds
        guard let median = latencies.median else { return minimum }
        let scaled = Double(median) * configuration.stragglerMultiplier
        return max(minimum, scaled >= Double(UInt64.max) ? UInt64.max : UInt64(scaled))
    }

    /// Handles one event at time `now` and returns what the runtime must do, in order.
    public mutating func handle(_ event: CoordinatorEvent, now: Nanoseconds) -> [CoordinatorAction] {
        switch event {
        case let .workerJoined(worker, version):
            return join(worker, parameterVersion: version, now: now)
        case let .workerLeft(worker):
            return leave(worker, now: now)
        case let .heartbeat(worker):
            return heartbeat(from: worker, now: now)
        case let .shardResult(worker, step, shard, token, span):
            return receiveResult(from: worker, step: step, shards: shard..<(shard + max(span, 1)), token: token, now: now)
        case let .corruptResult(worker, step, shard, span):
            return receiveCorrupt(from: worker, step: step, shards: shard..<(shard + max(span, 1)), now: now)
        case let .auditMismatch(_, _, workerA, workerB):
            statistics.auditMismatches += 1
            statistics.workers[workerA, default: WorkerStatistics()].auditMismatches += 1
            statistics.workers[workerB, default: WorkerStatistics()].auditMismatches += 1
            return []
        case let .parametersDelivered(worker, version):
            workers[worker]?.parameterVersion = version
            return []
        case .tick:
            return tick(now: now)
        }
    }

    /// Starts aggregating step `number` against `parameterVersion`: plans the shards and sends the first ones.
    ///
    /// With `subset`, only those shards make up the step (a host agent's share of a global step;
    /// no audit); they are planned in contiguous blocks over the live workers like a whole step.
    /// Throws when training has not started, the run is over, a step is still in progress, `number`
    /// is not after the last completed step, or `subset` names a shard outside `0..<shardCount`
    /// or none at all.
    public mutating func beginStep(_ number: Int, parameterVersion: UInt64, now: Nanoseconds,
                                   subset: [Int]? = nil) throws -> [CoordinatorAction] {
        switch phase {
        case .waitingForWorkers:
            throw CoordinationError.notStarted(joined: workers.count, expected: configuration.expectedWorkers)
        case .finished: throw CoordinationError.runOver(phase: "finished")
        case .failed: throw CoordinationError.runOver(phase: "failed")
        case .running: break
        }
        if let step = current { throw CoordinationError.stepInProgress(current: step.number, requested: number) }
        if let last = lastCompletedStep, number <= last {
            throw CoordinationError.stepNotIncreasing(previous: last, requested: number)
        }
        if let subset {
            guard !subset.isEmpty, subset.allSatisfy({ (0..<configuration.shardCount).contains($0) }) else {
                throw CoordinationError.invalidConfiguration(field: "subset", value: "\(subset)", expected: "one or more shards of 0..<\(configuration.shardCount)")
            }
        }
        let live = liveWorkers
        var step = StepState(number: number, parameterVersion: parameterVersion, shardCount: configuration.shardCount, subset: subset)
        let planned = subset.map { Array(Set($0)).sorted() } ?? Array(0..<configuration.shardCount)
        if !live.isEmpty {
            for (index, shard) in planned.enumerated() {
                step.shards[shard].plannedWorker = live[index * live.count / planned.count]
            }
        }
        var actions: [CoordinatorAction] = []
        if subset == nil, let every = configuration.auditEvery, number % every == 0 {
            let shard = statistics.auditsRequested % configuration.shardCount
            statistics.auditsRequested += 1
            var audit = AuditState(shard: shard)
            if live.count >= 2, let planned = step.shards[shard].plannedWorker, let index = live.firstIndex(of: planned) {
                audit.partner = live[(index + 1) % live.count]
            } else {
                audit.resolved = true
                statistics.auditsAbandoned += 1
                actions.append(.auditAbandoned(step: number, shard: shard, retainedToken: nil))
            }
            step.audit = audit
        }
        for id in workers.keys { workers[id]!.inFlight = [] }
        current = step
        actions += dispatchNeeded(now: now)
        return actions
    }

    /// Ends the run: discards every held result and tells the live workers to shut down.
    public mutating func finish(now: Nanoseconds) -> [CoordinatorAction] {
        guard phase == .waitingForWorkers || phase == .running else { return [] }
        phase = .finished
        return endRun()
    }
}
