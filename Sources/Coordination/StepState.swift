/// A result the coordinator accepted: who computed it and the caller's token for it.
struct AcceptedResult: Equatable, Sendable {
    var worker: WorkerID
    var token: ResultToken
}

/// One copy of a shard sent to one worker.
struct ShardAttempt: Sendable {
    var worker: WorkerID
    var sentAt: Nanoseconds
    /// True until the worker answers (a result or a corrupt one) or departs.
    var inFlight = true
}

/// The bookkeeping of one shard within the current step.
struct ShardState: Sendable {
    /// False for a shard outside the step's subset (a host agent's step): never sent, never accepted.
    var needed = true
    /// The worker the round-robin plan chose at `beginStep`; nil when no worker was alive then.
    var plannedWorker: WorkerID?
    var attempts: [ShardAttempt] = []
    /// The first valid result; the one aggregated.
    var accepted: AcceptedResult?
    /// Whether a straggler copy was already sent (at most one per shard and step).
    var duplicated = false

    var inFlightWorkers: [WorkerID] {
        attempts.filter(\.inFlight).map(\.worker)
    }

    func hasAttempt(by worker: WorkerID) -> Bool {
        attempts.contains { $0.worker == worker }
    }

    /// Marks `worker`'s copy answered; returns whether one was in flight.
    mutating func finishAttempt(by worker: WorkerID) -> Bool {
        guard let index = attempts.firstIndex(where: { $0.worker == worker && $0.inFlight }) else { return false }
        attempts[index].inFlight = false
        return true
    }
}

/// The audit of one step: one shard computed by two distinct workers.
struct AuditState: Sendable {
    var shard: Int
    /// The second worker the plan chose (the next live worker after the planned one).
    var partner: WorkerID?
    var first: AcceptedResult?
    var second: AcceptedResult?
    var firstAggregated = false
    /// Whether a replacement copy was already sent after a partner was lost (at most once per step).
    var retried = false
    /// Paired or abandoned; nothing more will be reported.
    var resolved = false
}

/// Everything the coordinator tracks about the step being aggregated.
struct StepState: Sendable {
    let number: Int
    let parameterVersion: UInt64
    var shards: [ShardState]
    var order: ReorderBuffer<AcceptedResult>
    var audit: AuditState?

    /// A step over every shard, or over `subset` of them.
    init(number: Int, parameterVersion: UInt64, shardCount: Int, subset: [Int]? = nil) {
        self.number = number
        self.parameterVersion = parameterVersion
        self.shards = Array(repeating: ShardState(), count: shardCount)
        var skipped = Set<Int>()
        if let subset {
            skipped = Set(0..<shardCount).subtracting(subset)
            for shard in skipped { shards[shard].needed = false }
        }
        self.order = ReorderBuffer(count: shardCount, skipping: skipped)
    }

    var isComplete: Bool {
        order.isComplete && (audit?.resolved ?? true)
    }
}
