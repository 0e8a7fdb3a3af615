/// The fixed settings of one coordinator: shard count, start condition, timeouts and audit cadence.
public struct CoordinatorConfiguration: Sendable, Equatable {
    /// Shards per step (S); fixed for the run, so results do not depend on the number of workers.
    public var shardCount: Int
    /// Workers that must have joined before the first step (`--expect N`); at least 1.
    public var expectedWorkers: Int
    /// Most shards dispatched beyond the next one to aggregate; bounds the results held out of order
    /// to `reorderWindow - 1`. Default `nil`: the whole step (`shardCount`).
    public var reorderWindow: Int?
    /// Interval between coordinator heartbeats to workers; default 500 ms.
    public var heartbeatInterval: Duration
    /// A worker silent (no heartbeat, no result) this long is evicted; default 5 s.
    public var workerTimeout: Duration
    /// Fixed straggler deadline; default `nil`: adaptive,
    /// `max(stragglerMinimum, stragglerMultiplier × median recent shard time)`.
    public var stragglerDeadline: Duration?
    /// Floor of the adaptive straggler deadline; default 2 s.
    public var stragglerMinimum: Duration
    /// Multiple of the median recent shard time in the adaptive straggler deadline; default 3.
    public var stragglerMultiplier: Double
    /// Number of recent shard times the adaptive deadline takes its median over; default 64.
    public var latencyHistory: Int
    /// Training fails when no worker has been alive this long after the start; default 30 s.
    public var noWorkerTimeout: Duration
    /// Training fails when fewer than `expectedWorkers` have joined this long after the coordinator started; default 60 s.
    public var startTimeout: Duration
    /// Every step whose number is a multiple of this, one shard is computed by two distinct workers
    /// and both results are reported for a bit-for-bit comparison; default `nil`: never.
    public var auditEvery: Int?

    /// Makes a configuration with the documented defaults.
    public init(
        shardCount: Int,
        expectedWorkers: Int,
        reorderWindow: Int? = nil,
        heartbeatInterval: Duration = .milliseconds(500),
        workerTimeout: Duration = .seconds(5),
        stragglerDeadline: Duration? = nil,
        stragglerMinimum: Duration = .seconds(2),
        stragglerMultiplier: Double = 3,
        latencyHistory: Int = 64,
        noWorkerTimeout: Duration = .seconds(30),
        startTimeout: Duration = .seconds(60),
        auditEvery: Int? = nil
    ) {
        self.shardCount = shardCount
        self.expectedWorkers = expectedWorkers
        self.reorderWindow = reorderWindow
        self.heartbeatInterval = heartbeatInterval
        self.workerTimeout = workerTimeout
        self.stragglerDeadline = stragglerDeadline
        self.stragglerMinimum = stragglerMinimum
        self.stragglerMultiplier = stragglerMultiplier
        self.latencyHistory = latencyHistory
        self.noWorkerTimeout = noWorkerTimeout
        self.startTimeout = startTimeout
        self.auditEvery = auditEvery
    }

    /// Throws ``CoordinationError/invalidConfiguration(field:value:expected:)`` naming the first bad field.
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ value: Any, _ expected: String) throws {
            if !ok {
                throw CoordinationError.invalidConfiguration(field: field, value: "\(value)", expected: expected)
            }
        }
        try check(shardCount >= 1, "shards", shardCount, "at least 1")
        try check(expectedWorkers >= 1, "expect", expectedWorkers, "at least 1")
        if let window = reorderWindow { try check(window >= 1, "reorder_window", window, "at least 1") }
        try check(heartbeatInterval > .zero, "heartbeat_interval", heartbeatInterval, "a positive duration")
        try check(workerTimeout > heartbeatInterval, "worker_timeout", workerTimeout,
                  "longer than heartbeat_interval (\(heartbeatInterval))")
        if let fixed = stragglerDeadline {
            try check(fixed > .zero, "straggler_deadline", fixed, "a positive duration")
        }
        try check(stragglerMinimum > .zero, "straggler_minimum", stragglerMinimum, "a positive duration")
        try check(stragglerMultiplier.isFinite && stragglerMultiplier > 0, "straggler_multiplier",
                  stragglerMultiplier, "a positive number")
        try check(latencyHistory >= 1, "latency_history", latencyHistory, "at least 1")
        try check(noWorkerTimeout > .zero, "no_worker_timeout", noWorkerTimeout, "a positive duration")
        try check(startTimeout > .zero, "start_timeout", startTimeout, "a positive duration")
        if let every = auditEvery { try check(every >= 1, "audit_every", every, "at least 1") }
    }

    /// The reorder window in effect: `reorderWindow` or, when unset, `shardCount`.
    public var effectiveReorderWindow: Int { min(reorderWindow ?? shardCount, shardCount) }
}
