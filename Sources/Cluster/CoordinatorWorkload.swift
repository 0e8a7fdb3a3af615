import Coordination
import WireProtocol

/// What a ``CoordinatorHost`` asks of the work it coordinates: training (the model's
/// gradients) or `chorus stress` (generated gradients checked exactly). The host owns the
/// socket, the handshake, membership, child processes and the state machine; a workload says
/// what a welcome carries, what work looks like, what to make of a result, and how to sum one.
///
/// Every method is called on the host's one thread.
package protocol CoordinatorWorkload: AnyObject {
    /// A result the host holds until the state machine releases it in shard order.
    associatedtype Result

    /// Log-line prefix: `chorus coordinator`, `chorus stress`.
    var logName: String { get }
    /// The reason in the `leave` every worker gets when the run ends.
    var finishedReason: String { get }
    /// The sequence number the coordinator's heartbeats carry.
    var heartbeatSequence: UInt64 { get }
    /// What a welcome carries besides the worker id and the timeouts: the config (or the
    /// workload's description), its hash, the parameter version, and the kernel workers must run.
    var welcomePayload: WelcomePayload { get }

    /// Why a worker's ready join (after the welcome) is refused, or nil to take it in.
    func refusal(ofReady join: Join) -> (code: RejectCode, message: String)?
    /// The `chorus` subcommand of a local worker process (`worker`, `stress-worker`).
    var childCommand: String { get }
    /// What a local worker process gets besides the endpoint, parent, timeouts, id and faults
    /// the host passes to every one (shared-memory names, keys).
    var childArguments: [String] { get }
    /// The work message for `assignment` (parameters included when the assignment says so).
    func work(for assignment: WorkAssignment, member: Member) -> Work
    /// Called after a work message that carried (or named) parameters went out.
    func delivered(_ work: Work, to member: Member)
    /// Reads a gradient from `member` into a result, or says why it is corrupt or malformed.
    func accept(_ gradient: Gradient, from member: Member) -> GradientIntake<Result>
    /// Uses a result released in shard order.
    func aggregate(_ result: Result, _ aggregation: Aggregation)
    /// Compares an audit's two results; true when they differ (the host tells the state machine).
    func auditDiffers(_ a: Result, _ b: Result, _ pair: AuditPair) -> Bool
    /// Counts the payload bytes of a gradient whose checksum failed on the socket.
    func corruptPayloadArrived(byteCount: Int)
    /// Whether its workers may answer with node sums (`Gradient.span` > 1); a node sum to a
    /// workload that never asks for them is refused before it reaches the state machine.
    var acceptsNodeSums: Bool { get }
    /// The state machine's step of a result that says it is of wire step `step`: the same
    /// number, except for a host agent, whose machine counts its own steps (it may run several
    /// for one global step).
    func machineStep(ofWire step: UInt64) -> Int
    /// A chunk owners' message (`chunk`, `chunkControl`) from a member; false: not taken (dropped).
    func receive(other message: Message, from member: Member) -> Bool
}

extension CoordinatorWorkload {
    package func corruptPayloadArrived(byteCount: Int) {}
    package var acceptsNodeSums: Bool { false }
    package func machineStep(ofWire step: UInt64) -> Int { Int(clamping: step) }
    package func receive(other message: Message, from member: Member) -> Bool { false }
}

/// The workload's part of a welcome.
package struct WelcomePayload {
    package var configJSON: [UInt8]
    package var configHash: UInt64
    package var parameterVersion: UInt64
    package var kernel = ""
    package init(configJSON: [UInt8], configHash: UInt64, parameterVersion: UInt64, kernel: String = "") {
        self.configJSON = configJSON
        self.configHash = configHash
        self.parameterVersion = parameterVersion
        self.kernel = kernel
    }
}

/// What a workload made of a gradient message.
package enum GradientIntake<Result> {
    /// Intact: hold it until it is released.
    case accepted(Result)
    /// Its checksum failed: count it and recompute the shard.
    case corrupt(String)
    /// It is not what this run's gradients look like (size, type, a slot the worker does not
    /// hold): drop it and recompute the shard.
    case invalid(String)
}

/// A worker the host took in: its id, socket peer, process and, for a local child, the slot it was started in.
package struct Member: Sendable {
    package let id: WorkerID
    package let peer: PeerID
    package let pid: Int32
    /// The child-process slot (0..<N) of a worker this coordinator started; nil for others.
    package let slot: Int?
    /// A host agent's peer endpoint for chunk owners, from its join (empty: none).
    package var peerEndpoint = ""
    /// Whether this coordinator started the process (it shares this host's memory).
    package var isLocalChild: Bool { slot != nil }
}

/// What the coordinator exchanged with one worker host.
package struct HostTraffic: Sendable {
    /// The coordinator's own worker processes (same host: ipc and shared memory).
    package static let local = "local"
    /// Peers that never joined and whose address is unknown.
    package static let unjoined = "unjoined"
    package var bytesSent = 0, bytesReceived = 0
    /// Of those, what the host's agent exchanged with other agents (chunk owners), as it reported.
    package var peerBytesSent = 0, peerBytesReceived = 0
    /// The worker ids that joined from this host.
    package var workers = Set<WorkerID>()
    package init() {}
}
