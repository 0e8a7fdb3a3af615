/// A worker's side of the protocol as a plain value: connect, join, heartbeat, compute, and exit when the coordinator goes quiet.
///
/// States: `connecting` (until the transport is up) → `joining` (join sent, waiting for welcome)
/// → `joined` ⇄ `working` (a compute request is outstanding) → `exited`. Any message from the
/// coordinator counts as a sign of life; silence past `coordinatorTimeout` ends the worker with
/// exit code 1 and a message naming the coordinator's address.
///
/// Exit codes: 0 when the coordinator ends the run, 1 when the coordinator or the parent
/// process is gone (or an error), 2 when the coordinator refuses the worker or speaks another
/// protocol version, 130 when the worker is interrupted (after a `leave`).
public struct WorkerStateMachine: Sendable {
    /// Where the worker is.
    public enum State: Equatable, Sendable {
        /// Waiting for the transport to connect.
        case connecting
        /// Join sent; waiting for the welcome.
        case joining
        /// Welcomed, idle.
        case joined
        /// Computing the shards of this step.
        case working(step: Int)
        /// Done; nothing more will be emitted.
        case exited
    }

    /// The settings this machine runs with (the coordinator's timeout replaces ours at welcome).
    public private(set) var configuration: WorkerConfiguration
    /// The coordinator's address, for messages (for example `tcp://host:5555`).
    public let coordinatorAddress: String
    /// Where the worker is.
    public private(set) var state: State = .connecting
    /// Whether the worker is waiting for a coordinator to answer, or exited while it was.
    public var waitingForCoordinator: Bool { state == .connecting || state == .joining || exitedWaiting }
    private var exitedWaiting = false
    /// The id the coordinator welcomed this worker as, once welcomed.
    public private(set) var workerID: WorkerID?
    /// The parameter version this worker holds, if any.
    public private(set) var parameterVersion: UInt64?

    private var lastHeardFromCoordinator: Nanoseconds
    private var lastHeartbeatSent: Nanoseconds
    private var latestStep: Int?
    private var latestVersion: UInt64?
    /// Set while the worker looks for a coordinator that went away: when it was last heard.
    private var reconnectingSince: Nanoseconds?
    private var lastHelloSent: Nanoseconds = 0
    /// Whether the "still waiting" notice of this join went out.
    private var waitNoticeSent = false

    /// Starts a worker at time `now` that will talk to `coordinatorAddress`.
    public init(coordinatorAddress: String, configuration: WorkerConfiguration = WorkerConfiguration(),
                parameterVersion: UInt64? = nil, now: Nanoseconds) {
        self.coordinatorAddress = coordinatorAddress
        self.configuration = configuration
        self.parameterVersion = parameterVersion
        self.lastHeardFromCoordinator = now
        self.lastHeartbeatSent = now
    }

    /// Handles one event at time `now` and returns what the runtime must do, in order.
    public mutating func handle(_ event: WorkerEvent, now: Nanoseconds) -> [WorkerAction] {
        if state == .exited { return [] }
        switch event {
        case .connected:
            guard state == .connecting else { return [] }
            state = .joining
            lastHeardFromCoordinator = now
            lastHelloSent = now
            return [.sendJoin(parameterVersion: parameterVersion)]
        case let .welcome(id, coordinatorTimeout):
            heard(now)
            guard state == .joining else { return [] }
            workerID = id
            if let coordinatorTimeout { configuration.coordinatorTimeout = coordinatorTimeout }
            // A coordinator that came back (from a checkpoint) may start from an earlier step.
            latestStep = nil
            latestVersion = nil
            reconnectingSince = nil
            state = .joined
            lastHeartbeatSent = now
            return [.sendHeartbeat]
        case .rejoin:
            // The coordinator does not know this worker (it restarted): say hello again.
            guard state == .joined || isWorking else { return [] }
            heard(now)
            return startOver(now: now, since: now)
        case let .reject(reason):
            return exit(code: 2, "coordinator at \(coordinatorAddress) refused this worker: \(reason)")
        case let .protocolMismatch(received, supported):
            return exit(code: 2, "coordinator at \(coordinatorAddress) speaks protocol version \(received), this worker \(supported); exiting")
        case let .parentGone(pid):
            return exit(code: 1, "parent process \(pid) is gone; exiting")
        case .interrupted:
            let joined = state != .connecting && state != .joining
            return (joined ? [.sendLeave(reason: "worker interrupted")] : []) + exit(code: 130, "interrupted; exiting")
        case let .work(step, shards, version, includesParameters):
            heard(now)
            return receiveWork(step: step, shards: shards, version: version, includesParameters: includesParameters)
        case .heartbeatFromCoordinator:
            heard(now)
            return []
        case let .computeFinished(step):
            if state == .working(step: step) { state = .joined }
            return []
        case let .shutdown(reason):
            // Evicted (a quarantine above all) is not a run that ended well: a supervisor should notice.
            return exit(code: reason.hasPrefix("evicted") ? 1 : 0, "coordinator at \(coordinatorAddress) ended the run: \(reason)")
        case .tick:
            return tick(now: now)
        }
    }

    private mutating func heard(_ now: Nanoseconds) {
        lastHeardFromCoordinator = max(lastHeardFromCoordinator, now)
    }

    private mutating func receiveWork(step: Int, shards: [Int], version: UInt64, includesParameters: Bool) -> [WorkerAction] {
        guard state == .joined || isWorking else { return [] }
        // Older work than the latest is stale, unless it comes with newer parameters: after a
        // rewind the coordinator computes earlier steps again, under a higher parameter version.
        if let latest = latestStep, step < latest, version <= (latestVersion ?? 0) { return [] }
        if includesParameters {
            parameterVersion = version
        } else if parameterVersion != version {
            let held = parameterVersion.map { "version \($0)" } ?? "no parameters"
            return exit(code: 1, "coordinator at \(coordinatorAddress) sent work for parameter version \(version) "
                        + "without the parameters, but this worker holds \(held)")
        }
        latestStep = step
        latestVersion = version
        state = .working(step: step)
        return [.compute(WorkerComputation(step: step, shards: shards, parameterVersion: version))]
    }

    private var isWorking: Bool {
        if case .working = state { return true }
        return false
    }

    private mutating func tick(now: Nanoseconds) -> [WorkerAction] {
        let silence = now >= lastHeardFromCoordinator ? now - lastHeardFromCoordinator : 0
        let helloDue = now - min(now, lastHelloSent) >= configuration.helloInterval.clampedNanoseconds
        if let since = reconnectingSince, let limit = configuration.reconnectTimeout {
            // Looking for a coordinator that went away: hello again every second, for so long.
            let gone = now >= since ? now - since : 0
            if gone >= limit.clampedNanoseconds {
                return exit(code: 1, "coordinator at \(coordinatorAddress) gone for \(formatSeconds(gone)) and did not come back; exiting")
            }
            guard helloDue else { return [] }
            lastHelloSent = now
            return [.sendJoin(parameterVersion: parameterVersion)]
        }
        var notices: [WorkerAction] = []
        if state == .joining, !waitNoticeSent, silence >= configuration.waitNoticeAfter.clampedNanoseconds,
           configuration.joinTimeout > configuration.waitNoticeAfter {
            // A long wait should not look like a hang: say once what the worker waits for.
            waitNoticeSent = true
            notices.append(.notice("no answer yet from a coordinator at \(coordinatorAddress) after \(formatSeconds(silence)); "
                                   + "waiting up to \(formatSeconds(configuration.joinTimeout.clampedNanoseconds)) (is it running, is the port right, does a firewall drop it?)"))
        }
        switch state {
        case .connecting, .joining:
            if silence >= configuration.joinTimeout.clampedNanoseconds {
                let what = state == .connecting ? "could not be reached" : "did not answer the join"
                return exit(code: 1, "coordinator at \(coordinatorAddress) \(what) for \(formatSeconds(silence)) (is a coordinator running there? "
                            + "if it uses CURVE, does this worker have its public key, --curve-server-key?); exiting")
            }
            guard state == .joining, helloDue else { return notices }
            // No answer yet (a coordinator not started yet, or one that lost the hello): ask again.
            lastHelloSent = now
            return notices + [.sendJoin(parameterVersion: parameterVersion)]
        default:
            if silence >= configuration.coordinatorTimeout.clampedNanoseconds {
                if let limit = configuration.reconnectTimeout {
                    return [.notice("coordinator at \(coordinatorAddress) silent for \(formatSeconds(silence)); looking for it again for up to \(formatSeconds(limit.clampedNanoseconds))")]
                        + startOver(now: now, since: lastHeardFromCoordinator)
                }
                return exit(code: 1, "coordinator at \(coordinatorAddress) silent for \(formatSeconds(silence)); exiting")
            }
            guard now >= lastHeartbeatSent, now - lastHeartbeatSent >= configuration.heartbeatInterval.clampedNanoseconds else { return [] }
            lastHeartbeatSent = now
            return [.sendHeartbeat]
        }
    }

    /// Back to `joining` after the coordinator went away (last heard `since`): a fresh hello.
    private mutating func startOver(now: Nanoseconds, since: Nanoseconds) -> [WorkerAction] {
        state = .joining
        workerID = nil
        reconnectingSince = reconnectingSince ?? since
        lastHelloSent = now
        waitNoticeSent = true
        return [.sendJoin(parameterVersion: parameterVersion)]
    }

    private mutating func exit(code: Int32, _ message: String) -> [WorkerAction] {
        exitedWaiting = state == .connecting || state == .joining
        state = .exited
        return [.exit(code: code, message: message)]
    }
}

/// The worker's timers.
public struct WorkerConfiguration: Sendable, Equatable {
    /// Interval between heartbeats to the coordinator; default 500 ms.
    public var heartbeatInterval: Duration
    /// The worker exits when the coordinator has been silent this long; default 10 s.
    public var coordinatorTimeout: Duration
    /// The worker exits when the transport does not connect or the join is not answered this long; default 10 s.
    public var joinTimeout: Duration
    /// When set, a coordinator silent past `coordinatorTimeout` is looked for again (hello
    /// every `helloInterval`) for this long before the worker exits: a restarted coordinator
    /// takes its workers back. Nil: exit at once.
    public var reconnectTimeout: Duration?
    /// How often an unanswered hello is sent again; default 1 s.
    public var helloInterval: Duration = .seconds(1)
    /// After this long without an answer to a join, say once what the worker waits for; default 5 s.
    public var waitNoticeAfter: Duration = .seconds(5)

    /// Makes a configuration with the documented defaults.
    public init(heartbeatInterval: Duration = .milliseconds(500), coordinatorTimeout: Duration = .seconds(10),
                joinTimeout: Duration = .seconds(10)) {
        self.heartbeatInterval = heartbeatInterval
        self.coordinatorTimeout = coordinatorTimeout
        self.joinTimeout = joinTimeout
    }
}

/// Something that happened to a worker, translated from the wire (or the clock) by the runtime.
public enum WorkerEvent: Equatable, Sendable {
    /// The transport to the coordinator is up.
    case connected
    /// The coordinator does not know this worker (it restarted from a checkpoint): join again.
    case rejoin
    /// The coordinator accepted the join under this id (and may set the silence that ends the worker).
    case welcome(WorkerID, coordinatorTimeout: Duration? = nil)
    /// The coordinator refused or removed this worker.
    case reject(reason: String)
    /// Shards of a step to compute against a parameter version; `includesParameters` when the message carried them.
    case work(step: Int, shards: [Int], parameterVersion: UInt64, includesParameters: Bool)
    /// A heartbeat from the coordinator.
    case heartbeatFromCoordinator
    /// The runtime finished computing (and sent) the shards of this step.
    case computeFinished(step: Int)
    /// The coordinator ended the run.
    case shutdown(reason: String)
    /// The coordinator speaks another protocol version.
    case protocolMismatch(received: UInt16, supported: UInt16)
    /// The process that started this worker is gone.
    case parentGone(pid: Int32)
    /// SIGINT or SIGTERM.
    case interrupted
    /// Time passed.
    case tick
}

/// What the worker's runtime must do, in order.
public enum WorkerAction: Equatable, Sendable {
    /// Send the join request (with the parameter version already held, if any).
    case sendJoin(parameterVersion: UInt64?)
    /// Send a heartbeat.
    case sendHeartbeat
    /// Tell the coordinator this worker is leaving.
    case sendLeave(reason: String)
    /// Print this line (a wait that should not look like a hang).
    case notice(String)
    /// Compute these shards and send one result per shard.
    case compute(WorkerComputation)
    /// Exit the process with this status after printing `message` (one line, to stderr when `code != 0`).
    case exit(code: Int32, message: String)
}

/// Shards one worker must compute.
public struct WorkerComputation: Equatable, Sendable {
    /// The step.
    public var step: Int
    /// Shard indices, ascending.
    public var shards: [Int]
    /// The parameter version to compute against.
    public var parameterVersion: UInt64
}
