/// Something that happened to the coordinator, translated from the wire (or the clock) by the runtime.
public enum CoordinatorEvent: Equatable, Sendable {
    /// A worker asked to join; `parameterVersion` is the version it already holds, if any (a restarted worker).
    case workerJoined(WorkerID, parameterVersion: UInt64? = nil)
    /// A worker said goodbye; handled like an eviction but counted as a leave.
    case workerLeft(WorkerID)
    /// A worker's heartbeat arrived.
    case heartbeat(WorkerID)
    /// A worker's result for shards `shard ..< shard + span` arrived and passed its checksum; the
    /// caller holds the payload under `token`. A span over 1 is the sum of a node of the shard
    /// tree (``ShardTree``), which is used whole or not at all.
    case shardResult(WorkerID, step: Int, shard: Int, token: ResultToken, span: Int = 1)
    /// A worker's result for shards `shard ..< shard + span` arrived but failed its checksum or
    /// decoding; the payload is already gone.
    case corruptResult(WorkerID, step: Int, shard: Int, span: Int = 1)
    /// The caller compared an ``AuditPair`` and found the two results differ.
    case auditMismatch(step: Int, shard: Int, workerA: WorkerID, workerB: WorkerID)
    /// The caller delivered `version` of the parameters to a worker outside a work message (for example a broadcast).
    case parametersDelivered(WorkerID, version: UInt64)
    /// Time passed: heartbeats, evictions, stragglers and timeouts are checked.
    case tick
}

/// What the runtime must do on the coordinator's behalf, in the order given.
public enum CoordinatorAction: Equatable, Sendable {
    /// Tell a worker it has joined (send the welcome message).
    case welcome(WorkerID)
    /// Refuse a worker, or tell an evicted worker that still talks that it is out; it should exit with `reason`.
    case reject(WorkerID, reason: String)
    /// `expect` workers have joined: the caller may call `beginStep` for the first step.
    case startTraining(workers: [WorkerID])
    /// Send shards of a step to a worker, with the parameters when it does not hold that version yet.
    case sendWork(WorkAssignment)
    /// Send a heartbeat to each of these workers.
    case heartbeat(to: [WorkerID])
    /// Add this shard's result to the step's sum now; these come in shard order 0, 1, …, S−1 per step.
    case aggregate(Aggregation)
    /// Free this result's payload without using it.
    case discard(Discard)
    /// Compare these two results of the same shard bit for bit, report a mismatch with
    /// ``CoordinatorEvent/auditMismatch(step:shard:workerA:workerB:)``, then free both payloads.
    case auditPair(AuditPair)
    /// The audit of this step could not get a second result; free `retainedToken` if one is given.
    case auditAbandoned(step: Int, shard: Int, retainedToken: ResultToken?)
    /// Every shard of the step was aggregated: apply the optimizer, then `beginStep` the next step or `finish`.
    case stepComplete(step: Int)
    /// This worker was evicted (silent past `workerTimeout`); drop its connection.
    case evict(WorkerID, reason: String)
    /// Tell these workers the run is over so they exit cleanly.
    case shutdown(to: [WorkerID])
    /// The run cannot go on; stop with this error.
    case fail(CoordinationError)
}

/// The shards of one step sent to one worker.
public struct WorkAssignment: Equatable, Sendable {
    /// The receiving worker.
    public var worker: WorkerID
    /// The step the shards belong to.
    public var step: Int
    /// Shard indices, ascending.
    public var shards: [Int]
    /// The parameter version the shards must be computed against.
    public var parameterVersion: UInt64
    /// Whether the message must carry the parameters (the worker does not hold `parameterVersion`).
    public var includeParameters: Bool
    /// Whether the worker may send the sum of each node of the shard tree it holds entirely
    /// instead of one result per shard (false when a shard of the batch is audited).
    public var sumNodes: Bool

    /// Makes an assignment.
    public init(worker: WorkerID, step: Int, shards: [Int], parameterVersion: UInt64, includeParameters: Bool, sumNodes: Bool = false) {
        self.sumNodes = sumNodes
        self.worker = worker
        self.step = step
        self.shards = shards
        self.parameterVersion = parameterVersion
        self.includeParameters = includeParameters
    }
}

/// One result released for summation, in canonical shard order.
public struct Aggregation: Equatable, Sendable {
    /// The step.
    public var step: Int
    /// The first shard of the result; consecutive per step starting at 0.
    public var shard: Int
    /// The shards it covers: `shard ..< shard + span` (a node of the shard tree when over 1).
    public var span: Int = 1
    /// `shard ..< shard + span`.
    public var shards: Range<Int> { shard..<(shard + span) }
    /// The caller's handle on the payload.
    public var token: ResultToken
    /// The worker that computed it (for statistics and fault attribution only; the sum does not depend on it).
    public var worker: WorkerID
    /// Keep the payload (or a bit-exact copy) after summing: an ``AuditPair`` or `auditAbandoned` will name it.
    public var retainForAudit: Bool
}

/// Why a result was not used.
public enum DropReason: Equatable, Sendable, CustomStringConvertible {
    /// The result is for a step other than the one being aggregated.
    case wrongStep(current: Int?)
    /// The shard already has a result (a straggler's late copy or a re-sent message).
    case duplicate
    /// The sender never joined.
    case unknownWorker
    /// The sender was evicted or left.
    case departedWorker
    /// The shard was never assigned to the sender in this step (or is out of range).
    case notAssigned
    /// The run finished or failed while the result was held.
    case runEnded

    /// A short human explanation.
    public var description: String {
        switch self {
        case let .wrongStep(current):
            return current.map { "stale: current step is \($0)" } ?? "stale: no step in progress"
        case .duplicate: return "duplicate: the shard already has a result"
        case .unknownWorker: return "from a worker that never joined"
        case .departedWorker: return "from a worker that was evicted or left"
        case .notAssigned: return "shard not assigned to that worker"
        case .runEnded: return "the run ended"
        }
    }
}

/// A result that was dropped, with its token so the caller can free the payload.
public struct Discard: Equatable, Sendable {
    /// The sender.
    public var worker: WorkerID
    /// The step the result claims.
    public var step: Int
    /// The shard the result claims.
    public var shard: Int
    /// The caller's handle on the payload.
    public var token: ResultToken
    /// Why it was dropped.
    public var reason: DropReason
}

/// Two results of the same shard from distinct workers, for the cross-replica check.
public struct AuditPair: Equatable, Sendable {
    /// The step.
    public var step: Int
    /// The audited shard.
    public var shard: Int
    /// The worker whose result was aggregated.
    public var workerA: WorkerID
    /// Its token (already aggregated with `retainForAudit`).
    public var tokenA: ResultToken
    /// The second worker.
    public var workerB: WorkerID
    /// The second result's token (never aggregated).
    public var tokenB: ResultToken
}
