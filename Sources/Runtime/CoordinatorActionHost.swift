import Coordination
import WireProtocol

/// What training's coordinator (``DistributedExecutor``) and the stress coordinator
/// (``StressCoordinator``) share in carrying out a `CoordinatorStateMachine`'s actions:
/// membership messages, freeing results, step completion, eviction, shutdown, failure.
/// Each host supplies only what differs: how work is sent, what happens to a released result
/// (train: add it to the model's gradient; stress: add it and check it exactly), and what an
/// audit pair is compared with.
protocol CoordinatorActionHost: AnyObject {
    /// Live members' sockets.
    var peers: [WorkerID: PeerID] { get }
    /// Set when the state machine starts the run.
    var started: Bool { get set }
    /// Set when the current step's last result was released.
    var stepDone: Bool { get set }
    /// Set when the state machine fails the run.
    var failure: Error? { get set }
    /// Log-line prefix: `chorus coordinator`, `chorus stress`.
    var logName: String { get }
    /// The reason in the `leave` every worker gets when the run ends.
    var finishedReason: String { get }
    /// The sequence number heartbeats carry.
    var heartbeatSequence: UInt64 { get }
    /// Sends `message` to `peer` (counting its bytes as the host does).
    func sendMessage(_ message: Message, to peer: PeerID) throws
    /// Sends one `work` message (and anything the host does along with it, such as fault injection).
    func sendWork(_ assignment: WorkAssignment) throws
    /// Uses a result released in shard order.
    func aggregate(_ aggregation: Aggregation)
    /// Compares the two results of an audit, then frees both.
    func audit(_ pair: AuditPair)
    /// Frees a held result.
    func freeResult(_ token: ResultToken)
    /// Drops a worker from the membership tables (the state machine has been or will be told).
    func forget(_ worker: WorkerID)
}

extension CoordinatorActionHost {
    /// Carries out the state machine's actions in order.
    func perform(_ actions: [CoordinatorAction]) throws {
        for action in actions {
            switch action {
            case .welcome: break
            case .startTraining: started = true
            case let .reject(worker, reason):
                if let peer = peers[worker] { try? sendMessage(.reject(Reject(code: .other, message: reason)), to: peer) }
            case .sendWork(let assignment):
                try sendWork(assignment)
            case .heartbeat(let targets):
                let beat = Message.heartbeat(Heartbeat(sequence: heartbeatSequence, sentAtNanos: monotonicNanos()))
                for worker in targets { if let peer = peers[worker] { try? sendMessage(beat, to: peer) } }
            case .aggregate(let aggregation):
                aggregate(aggregation)
            case .discard(let discard):
                freeResult(discard.token)
            case .auditPair(let pair):
                audit(pair)
            case let .auditAbandoned(_, _, token):
                if let token { freeResult(token) }
            case .stepComplete:
                stepDone = true
            case let .evict(worker, reason):
                logLine("\(logName): evicted worker \(worker): \(reason)")
                if let peer = peers[worker] { try? sendMessage(.leave(Leave(reason: "evicted: \(reason)")), to: peer) }
                forget(worker)
            case .shutdown(let targets):
                for worker in targets { if let peer = peers[worker] { try? sendMessage(.leave(Leave(reason: finishedReason)), to: peer) } }
            case .fail(let error):
                failure = RuntimeError.cluster("coordinator: \(error)")
            }
        }
    }
}
