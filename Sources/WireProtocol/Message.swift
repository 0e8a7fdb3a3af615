/// The version of the wire format this build speaks; peers must match exactly.
public let protocolVersion: UInt16 = 5

/// Identifies one message kind on the wire (the header's `kind` byte).
public enum MessageKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case join = 1, welcome = 2, reject = 3, work = 4, gradient = 5, heartbeat = 6, leave = 7
    case chunk = 8, chunkControl = 9

    /// The kind's name, as in `Message`.
    public var description: String {
        switch self {
        case .join: return "join"
        case .welcome: return "welcome"
        case .reject: return "reject"
        case .work: return "work"
        case .gradient: return "gradient"
        case .heartbeat: return "heartbeat"
        case .leave: return "leave"
        case .chunk: return "chunk"
        case .chunkControl: return "chunkControl"
        }
    }
}

/// A protocol message between the coordinator (ROUTER) and a worker (DEALER).
///
/// The run ID is not part of the message: it travels in every header and `WireCodec.decode`
/// returns it beside the message (0 from a worker that has not been welcomed yet).
public enum Message: Equatable, Sendable {
    /// Worker → coordinator: asks to take part in the run.
    case join(Join)
    /// Coordinator → worker: accepted; here are the worker's ID and the run's config.
    case welcome(Welcome)
    /// Coordinator → worker: refused or failed (the worker should exit with the message).
    case reject(Reject)
    /// Coordinator → worker: compute these shards' gradients at this parameter version.
    case work(Work)
    /// Worker → coordinator: one shard's gradient and statistics.
    case gradient(Gradient)
    /// Either way: liveness, with the sender's clock for round-trip estimates.
    case heartbeat(Heartbeat)
    /// Either way: the sender is going away (worker shutting down, or the run is over).
    case leave(Leave)
    /// Between host agents (`--chunk-owners`): one parameter chunk's piece of a node sum, or
    /// its updated values.
    case chunk(ChunkData)
    /// Owner ↔ coordinator (`--chunk-owners`): chunks' Σg², or the step's norm and learning rate.
    case chunkControl(ChunkControl)

    /// The message's kind byte.
    public var kind: MessageKind {
        switch self {
        case .join: return .join
        case .welcome: return .welcome
        case .reject: return .reject
        case .work: return .work
        case .gradient: return .gradient
        case .heartbeat: return .heartbeat
        case .leave: return .leave
        case .chunk: return .chunk
        case .chunkControl: return .chunkControl
        }
    }
}

/// A worker's request to join a run.
public struct Join: Equatable, Sendable {
    /// Human-readable worker name (host and pid, say), for logs.
    public var workerName: String
    /// The worker binary's version string; logged, and compared when the coordinator requires it.
    public var buildVersion: String
    /// The wire protocol version the worker speaks (also checked in every header).
    public var protocolVersion: UInt16
    /// Fingerprint of the worker's training data, so every replica trains on the same examples.
    public var dataFingerprint: UInt64
    /// The worker's process ID.
    public var pid: Int32
    /// The worker ID asked for (a restarted worker reclaims its slot), or −1 for any.
    public var requestedWorkerID: Int32
    /// A host agent's peer endpoint for chunk owners (`--peer-bind`, resolved); empty: none.
    public var peerEndpoint: String

    /// A join request; `protocolVersion` defaults to this build's.
    public init(workerName: String, buildVersion: String, protocolVersion: UInt16 = WireProtocol.protocolVersion,
                dataFingerprint: UInt64, pid: Int32, requestedWorkerID: Int32 = -1, peerEndpoint: String = "") {
        self.peerEndpoint = peerEndpoint
        self.workerName = workerName
        self.buildVersion = buildVersion
        self.protocolVersion = protocolVersion
        self.dataFingerprint = dataFingerprint
        self.pid = pid
        self.requestedWorkerID = requestedWorkerID
    }
}

/// The coordinator's acceptance of a worker; parameters come with the next `work` message.
public struct Welcome: Equatable, Sendable {
    /// The worker's ID in this run (0-based).
    public var workerID: UInt32
    /// The run's config file, as JSON bytes, so a standalone worker builds the same model.
    public var configJSON: [UInt8]
    /// Hash of the canonical config, for quick comparisons in logs and checkpoints.
    public var configHash: UInt64
    /// How often each side sends a heartbeat when otherwise idle, in milliseconds.
    public var heartbeatIntervalMs: UInt32
    /// Silence after which a peer counts as dead, in milliseconds.
    public var timeoutMs: UInt32
    /// The parameter version the next `work` message refers to.
    public var parameterVersion: UInt64
    /// The compute kernel every worker of the run must use (the OpenBLAS core name, e.g.
    /// "Haswell"): kernels round differently, so one run uses one. Empty: no requirement.
    public var kernel: String

    /// A welcome message.
    public init(workerID: UInt32, configJSON: [UInt8], configHash: UInt64, heartbeatIntervalMs: UInt32,
                timeoutMs: UInt32, parameterVersion: UInt64, kernel: String = "") {
        self.kernel = kernel
        self.workerID = workerID
        self.configJSON = configJSON
        self.configHash = configHash
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.timeoutMs = timeoutMs
        self.parameterVersion = parameterVersion
    }
}

/// Why a join (or a later message) was refused.
public enum RejectCode: UInt8, Sendable, CaseIterable {
    case versionMismatch = 1, dataMismatch = 2, wrongRun = 3, configMismatch = 4, full = 5
    case malformed = 6, other = 7
    /// The coordinator does not know this worker of its run (it restarted from a checkpoint): say hello again.
    case rejoin = 8
}

/// A refusal, or a fatal error reported to the peer.
public struct Reject: Equatable, Sendable {
    /// The machine-readable reason.
    public var code: RejectCode
    /// One human line naming what is wrong, e.g. "protocol version 2, coordinator speaks 1".
    public var message: String

    /// A reject message.
    public init(code: RejectCode, message: String) {
        self.code = code
        self.message = message
    }
}

/// Flags of a `work` message.
public struct WorkFlags: OptionSet, Equatable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// This step is audited: the shards were also given to another worker for comparison.
    public static let audit = WorkFlags(rawValue: 1 << 0)
    /// Send collapse-monitor statistics (activations, per-layer norms) with the gradients.
    public static let probe = WorkFlags(rawValue: 1 << 1)
    /// Send one gradient per node of the shard tree whose shards are all in this message (their
    /// sum, in the tree's order; `Gradient.span` says how many shards it covers) instead of one
    /// per shard.
    public static let sumNodes = WorkFlags(rawValue: 1 << 3)
    /// The parameters of this version are in the coordinator's shared-memory segment (same-host
    /// workers), not in a payload: slot `parameterVersion % 2`.
    public static let sharedParameters = WorkFlags(rawValue: 1 << 2)
    /// Chunk owners (`--chunk-owners`): the node sums go as pieces to the chunks' owners and the
    /// gradient to the coordinator carries no values; without a payload, the parameters of this
    /// version are the ones the owners' updated chunks bring.
    public static let chunkOwners = WorkFlags(rawValue: 1 << 4)
}

/// One step's assignment to one worker.
public struct Work: Equatable, Sendable {
    /// Global step number (1-based).
    public var step: UInt64
    /// Epoch of this step (0-based).
    public var epoch: UInt32
    /// Step within the epoch (0-based).
    public var stepInEpoch: UInt32
    /// Version of the parameters the gradients must be computed at.
    public var parameterVersion: UInt64
    /// The shard indices (each in 0..<shardCount) this worker computes, one gradient each.
    public var shards: [UInt32]
    /// Total number of shards each step is split into.
    public var shardCount: UInt32
    /// Audit and probe bits.
    public var flags: WorkFlags
    /// The element type the worker sends its gradients in.
    public var gradientDType: WireDType
    /// The fp32 parameters at `parameterVersion`, when the worker does not have them yet.
    public var parameters: PayloadBuffer?

    /// A work message.
    public init(step: UInt64, epoch: UInt32, stepInEpoch: UInt32, parameterVersion: UInt64, shards: [UInt32],
                shardCount: UInt32, flags: WorkFlags = [], gradientDType: WireDType = .fp32,
                parameters: PayloadBuffer? = nil) {
        self.step = step
        self.epoch = epoch
        self.stepInEpoch = stepInEpoch
        self.parameterVersion = parameterVersion
        self.shards = shards
        self.shardCount = shardCount
        self.flags = flags
        self.gradientDType = gradientDType
        self.parameters = parameters
    }
}

/// One shard's gradient, summed loss and statistics; or the sum of a node of the shard tree.
public struct Gradient: Equatable, Sendable {
    /// The step this gradient belongs to.
    public var step: UInt64
    /// The shard index (the node's first shard).
    public var shard: UInt32
    /// Shards covered: `shard ..< shard + span`, a node of the shard tree when over 1 (its
    /// contributions, losses and counts summed in the tree's order).
    public var span: UInt32
    /// Number of examples in the shards (the weight of this gradient in the average).
    public var exampleCount: UInt32
    /// The parameter version the gradient was computed at.
    public var parameterVersion: UInt64
    /// Sum of the per-example losses over the shard.
    public var lossSum: Double
    /// Number of examples predicted right.
    public var correct: UInt32
    /// Element type of `payload`.
    public var dtype: WireDType
    /// Nanoseconds the worker spent computing this shard (straggler detection).
    public var computeNanos: UInt64
    /// Opaque collapse-monitor statistics, encoded by the CollapseMonitor module (may be empty).
    public var statistics: [UInt8]
    /// The gradient (mean over the shard's examples), as `dtype` elements; empty when it is in
    /// shared memory (`sharedSlot`).
    public var payload: PayloadBuffer
    /// Same-host fast path: the slot of the coordinator's shared-memory gradient pool holding the
    /// gradient, or `Gradient.inline` when it travels in `payload`.
    public var sharedSlot: UInt32
    /// CRC32C of the slot's gradient bytes as the worker wrote them (with `sharedSlot`).
    public var sharedCRC: UInt32

    /// `sharedSlot` of a gradient that travels in its payload.
    public static let inline = UInt32.max

    /// A gradient message.
    public init(step: UInt64, shard: UInt32, exampleCount: UInt32, parameterVersion: UInt64, lossSum: Double,
                correct: UInt32, dtype: WireDType = .fp32, computeNanos: UInt64 = 0, statistics: [UInt8] = [],
                payload: PayloadBuffer, sharedSlot: UInt32 = Gradient.inline, sharedCRC: UInt32 = 0, span: UInt32 = 1) {
        self.span = span
        self.sharedSlot = sharedSlot
        self.sharedCRC = sharedCRC
        self.step = step
        self.shard = shard
        self.exampleCount = exampleCount
        self.parameterVersion = parameterVersion
        self.lossSum = lossSum
        self.correct = correct
        self.dtype = dtype
        self.computeNanos = computeNanos
        self.statistics = statistics
        self.payload = payload
    }

    /// `shard ..< shard + span`.
    public var shards: Range<Int> { Int(shard)..<(Int(shard) + Int(span)) }

    /// Bitwise equality (a NaN loss equals itself, so a decoded copy equals its original).
    public static func == (lhs: Gradient, rhs: Gradient) -> Bool {
        lhs.step == rhs.step && lhs.shard == rhs.shard && lhs.span == rhs.span && lhs.exampleCount == rhs.exampleCount
            && lhs.parameterVersion == rhs.parameterVersion
            && lhs.lossSum.bitPattern == rhs.lossSum.bitPattern && lhs.correct == rhs.correct
            && lhs.dtype == rhs.dtype && lhs.computeNanos == rhs.computeNanos
            && lhs.statistics == rhs.statistics && lhs.payload == rhs.payload
            && lhs.sharedSlot == rhs.sharedSlot && lhs.sharedCRC == rhs.sharedCRC
    }
}

/// A liveness beat.
public struct Heartbeat: Equatable, Sendable {
    /// Sender's counter, incremented per beat.
    public var sequence: UInt64
    /// Sender's monotonic clock when sent, in nanoseconds.
    public var sentAtNanos: UInt64

    /// A heartbeat message.
    public init(sequence: UInt64, sentAtNanos: UInt64) {
        self.sequence = sequence
        self.sentAtNanos = sentAtNanos
    }
}

/// A goodbye.
public struct Leave: Equatable, Sendable {
    /// Why the sender leaves ("run completed", "interrupted", ...).
    public var reason: String

    /// A leave message.
    public init(reason: String) { self.reason = reason }
}

/// What a `chunk` message carries.
public enum ChunkRole: UInt8, Sendable {
    /// The chunk's values of the node sum of shards `shard ..< shard + span` (agent → owner).
    case piece = 1
    /// The chunk's parameters after step `step` (owner → every agent).
    case update = 2
}

/// One parameter chunk's values (docs/coordination.md "Chunk owners"), always fp32.
public struct ChunkData: Equatable, Sendable {
    public var role: ChunkRole
    public var step: UInt64
    /// The chunk's index in the model's `ParameterChunks`.
    public var chunk: UInt32
    /// A piece's node: `shard ..< shard + span` (0 and 0 in an update).
    public var shard: UInt32
    public var span: UInt32
    /// The values, fp32.
    public var payload: PayloadBuffer

    public init(role: ChunkRole, step: UInt64, chunk: UInt32, shard: UInt32 = 0, span: UInt32 = 0, payload: PayloadBuffer) {
        self.role = role; self.step = step; self.chunk = chunk; self.shard = shard; self.span = span; self.payload = payload
    }

    /// `shard ..< shard + span`.
    public var shards: Range<Int> { Int(shard)..<(Int(shard) + Int(span)) }
}

/// What a `chunkControl` message carries.
public enum ChunkControlRole: UInt8, Sendable {
    /// Owner → coordinator: `values[i]` is chunk `chunks[i]`'s Σg² (averaged gradient).
    case report = 1
    /// Coordinator → owners: `values[0]` is the step's global norm; clip and update with
    /// `learningRate` at optimizer step `optimizerStep` (1-based).
    case apply = 2
    /// Coordinator → agents: `chunks[c]` is chunk c's owner; `peers[i]` listens at `endpoints[i]`.
    case table = 3
    /// Agent → coordinator: `values` = [bytes sent, bytes received] to and from peers so far.
    case traffic = 4
}

/// The control plane of chunk owners: small, header only.
public struct ChunkControl: Sendable {
    public var role: ChunkControlRole
    public var step: UInt64
    public var chunks: [UInt32]
    public var values: [Double]
    public var learningRate: Float
    public var optimizerStep: UInt64
    /// A table's agents and their peer endpoints (empty in the other roles).
    public var peers: [UInt32]
    public var endpoints: [String]

    public init(role: ChunkControlRole, step: UInt64, chunks: [UInt32] = [], values: [Double] = [], learningRate: Float = 0, optimizerStep: UInt64 = 0,
                peers: [UInt32] = [], endpoints: [String] = []) {
        self.role = role; self.step = step; self.chunks = chunks; self.values = values
        self.learningRate = learningRate; self.optimizerStep = optimizerStep
        self.peers = peers; self.endpoints = endpoints
    }
}

extension ChunkControl: Equatable {
    /// Bitwise equality (a NaN norm equals itself, so a decoded copy equals its original).
    public static func == (lhs: ChunkControl, rhs: ChunkControl) -> Bool {
        lhs.role == rhs.role && lhs.step == rhs.step && lhs.chunks == rhs.chunks
            && lhs.values.map(\.bitPattern) == rhs.values.map(\.bitPattern)
            && lhs.learningRate.bitPattern == rhs.learningRate.bitPattern && lhs.optimizerStep == rhs.optimizerStep
            && lhs.peers == rhs.peers && lhs.endpoints == rhs.endpoints
    }
}
