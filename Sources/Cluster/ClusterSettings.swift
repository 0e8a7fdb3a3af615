import WireProtocol

/// How a coordinator and its workers talk: endpoint, timeouts, wire format.
public struct ClusterSettings: Sendable {
    /// Where the coordinator binds; nil for `train --workers N`: an ipc socket in /tmp.
    public var endpoint: String?
    /// Use tcp://127.0.0.1 with a free port instead of ipc for local workers.
    public var localTCP = false
    /// Heartbeat interval both ways.
    public var heartbeatMs = 500
    /// A worker silent this long is evicted; a coordinator silent this long makes workers exit.
    public var timeoutMs = 5_000
    /// With no live workers this long, the run fails with a clear error.
    public var noWorkerTimeoutMs = 30_000
    /// How long to wait for the expected workers before step 1.
    public var startTimeoutMs = 120_000
    /// Gradient wire format (fp16/bf16 give up bit-reproducibility).
    public var wireDType: WireDType = .fp32
    /// Audit every K steps: one shard computed by two workers and compared bit for bit
    /// (nil: never). On by default: a host with bad memory shows up here and only here.
    public var auditEvery: Int? = ClusterSettings.defaultAuditEvery
    /// The default audit period: one extra shard computation per 50 steps (about 1% of a
    /// 2-worker run's time; step 0 is always audited, so a faulty worker shows up at once).
    public static let defaultAuditEvery = 50
    /// Replace local workers that die (`train --workers N` only).
    public var respawn = true
    /// Local workers read the parameters from shared memory instead of the socket.
    public var sharedMemory = true
    /// Every K steps each worker also evaluates the fixed probe batch (0: never).
    public var probeEvery = 10
    /// The coordinator's CURVE key pair: when set, the socket encrypts and only workers that
    /// know the public key can talk to it (`chorus keygen`).
    public var curve: CurveKeys?
    /// With `curve`: where the sealed bulk channel binds (`--curve-bulk`), or off.
    package var curveBulk = ClusterSocket.CurveBulk.nextPort
    /// Fixed straggler deadline (default: adaptive, ≥ 2 s).
    public var stragglerMs: Int?
    /// The compute kernel (OpenBLAS core) every worker must run, sent in the welcome: kernels
    /// round differently, so a run with two would depend on who computed what. Empty: any.
    public var kernel = ""
    /// `--chunk-owners`: host agents own the parameters' chunks and sum their pieces among
    /// themselves (docs/coordination.md "Chunk owners"); every worker must be an agent with `--peer-bind`.
    public var chunkOwners = false

    public init() {}
}
