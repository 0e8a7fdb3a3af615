/// Fault bookkeeping of a coordinator: what went wrong, how often, and who did what.
public struct CoordinatorStatistics: Equatable, Sendable {
    /// Steps whose S shards were all aggregated.
    public var stepsCompleted = 0
    /// Workers evicted for silence past `workerTimeout`.
    public var evictions = 0
    /// Workers that left gracefully.
    public var leaves = 0
    /// Shards sent again to another worker because their worker was evicted or left, or sent a corrupt result.
    public var reassignments = 0
    /// Extra copies of late shards sent to idle workers (straggler mitigation).
    public var stragglerDuplicates = 0
    /// Results dropped because the shard already had one (late straggler copies, re-sent messages).
    public var duplicates = 0
    /// Results dropped because they were for another step.
    public var stale = 0
    /// Results dropped because the sender never joined, was evicted or left.
    public var unknownWorker = 0
    /// Results dropped because the shard was never assigned to the sender this step.
    public var notAssigned = 0
    /// Results that failed their checksum or decoding (each leads to recomputation unless another copy is in flight).
    public var corrupt = 0
    /// Audits scheduled (one shard sent to two distinct workers).
    public var auditsRequested = 0
    /// Audit pairs handed to the caller for comparison.
    public var auditsCompared = 0
    /// Audit pairs the caller reported as different.
    public var auditMismatches = 0
    /// Audits that could not get a second result (worker lost, too late, fewer than two workers).
    public var auditsAbandoned = 0
    /// Per-worker counts, kept after a worker departs.
    public var workers: [WorkerID: WorkerStatistics] = [:]

    /// Empty statistics.
    public init() {}
}

/// What one worker contributed.
public struct WorkerStatistics: Equatable, Sendable {
    /// Results of this worker that were accepted (aggregated or used for an audit).
    public var shardsComputed = 0
    /// Time from the worker starting a shard (its send, or the worker's previous result) to its result, for its last result.
    public var lastLatency: Duration?
    /// Times this worker was evicted.
    public var evictions = 0
    /// Corrupt results from this worker.
    public var corrupt = 0
    /// Audits in which this worker took part and the caller reported a mismatch.
    public var auditMismatches = 0

    /// Empty statistics.
    public init() {}
}
