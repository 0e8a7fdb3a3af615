#if canImport(Glibc)
import Glibc
#endif
import Coordination
import Foundation
import Transport
import WireProtocol

/// What a ``WorkerHost`` asks of the work it does: training (`chorus worker`: load the data
/// and the model the welcome names, compute shards) or `chorus stress-worker` (generate them).
package protocol WorkerWorkload: AnyObject {
    /// Log-line prefix: `chorus worker`, `chorus stress-worker`.
    var logName: String { get }
    /// Builds what the welcome describes; returns the fingerprint the ready join carries.
    /// Throw ``WorkerExit`` to end the worker with a particular status.
    func prepare(_ welcome: Welcome) throws -> UInt64
    /// Computes every shard of `work` and hands each result's frames (run `runID`) to `send`.
    func compute(_ work: Work, runID: UInt64, send: ([Frame]) throws -> Void) throws
    /// A message of this run the worker protocol itself has no use for (chunk owners' `chunk`
    /// and `chunkControl`); ignored unless the workload takes them.
    func receive(other message: Message, runID: UInt64) throws
}

extension WorkerWorkload {
    package func receive(other message: Message, runID: UInt64) throws {}
}

/// Ends a worker with `status` after printing `message`.
package struct WorkerExit: Error, CustomStringConvertible {
    package var status: Int32
    package var message: String
    package init(status: Int32, message: String) { self.status = status; self.message = message }
    package var description: String { message }
}

/// What a worker says of itself in its join.
package struct WorkerIdentity: Sendable {
    /// The worker id to ask for (−1: any).
    package var requestedWorkerID: Int32 = -1
    /// For tests: claim another build or protocol version.
    package var buildVersion = BuildInfo.version
    package var protocolVersion = WireProtocol.protocolVersion
    /// A host agent's peer endpoint for chunk owners (empty: none).
    package var peerEndpoint = ""
    package init(requestedWorkerID: Int = -1) { self.requestedWorkerID = Int32(clamping: requestedWorkerID) }
}

/// A worker process around a `WorkerStateMachine`: the DEALER side of the handshake
/// (hello → welcome → ready join), heartbeats, work ↔ gradients, and every way a worker ends
/// (the coordinator silent or gone, the parent gone, a refusal, a signal) — rules that live in
/// the state machine alone; this class only translates messages and the clock into its events
/// and carries out its actions. Over any `MessageTransport`, with the clock passed in.
package final class WorkerHost<Workload: WorkerWorkload> {
    unowned let workload: Workload
    package let transport: MessageTransport
    let owner: AnyObject?
    package private(set) var machine: WorkerStateMachine
    let clock: () -> UInt64
    let parentPID: Int32?
    let identity: WorkerIdentity
    let pollMs: Int
    /// The run this worker was welcomed into (0 until then).
    package private(set) var runID: UInt64 = 0
    var beatSequence: UInt64 = 0
    /// Sealed messages refused so far (logged: the first three, then every hundredth).
    var refusals = 0
    /// Print the exit message of a clean end too.
    package var quiet = false

    /// `timeoutMs`: coordinator silence that ends the worker, or with `reconnectTimeoutMs` makes
    /// it look for the coordinator again for that long (and wait that long for one at start).
    package init(workload: Workload, transport: MessageTransport, owner: AnyObject? = nil, heartbeatMs: Int, timeoutMs: Int,
                 reconnectTimeoutMs: Int? = nil, parentPID: Int32? = nil, identity: WorkerIdentity = WorkerIdentity(),
                 clock: @escaping () -> UInt64 = monotonicNanos) {
        self.workload = workload
        self.transport = transport
        self.owner = owner
        self.clock = clock
        self.parentPID = parentPID
        self.identity = identity
        pollMs = min(max(heartbeatMs, 1), 100)
        var configuration = WorkerConfiguration(heartbeatInterval: .milliseconds(heartbeatMs), coordinatorTimeout: .milliseconds(timeoutMs),
                                                joinTimeout: .milliseconds(reconnectTimeoutMs ?? timeoutMs))
        configuration.reconnectTimeout = reconnectTimeoutMs.map { .milliseconds($0) }
        machine = WorkerStateMachine(coordinatorAddress: transport.endpoint, configuration: configuration, now: clock())
    }

    /// Connects and runs until the state machine says exit; returns the process exit status.
    package func run() -> Int32 {
        if let status = start() { return status }
        while true { if let status = poll(timeoutMs: pollMs) { return status } }
    }

    /// Sends the hello join.
    package func start() -> Int32? { carryOut(machine.handle(.connected, now: clock())) }

    /// One turn: signals and the parent, the clock, then at most one message (waiting up to
    /// `timeoutMs`). Returns the exit status once the worker is done.
    package func poll(timeoutMs: Int) -> Int32? {
        if interruptSignal != 0 { return carryOut(machine.handle(.interrupted, now: clock())) }
        if let parentPID, getppid() != parentPID { return carryOut(machine.handle(.parentGone(pid: parentPID), now: clock())) }
        if let status = carryOut(machine.handle(.tick, now: clock())) { return status }
        let received: (peer: PeerID?, frames: [Frame])?
        do { received = try transport.receive(timeoutMs: timeoutMs) } catch { return fail(error) }
        for line in transport.takeRefusals() {
            refusals += 1
            if refusals <= 3 || refusals % 100 == 0 { logLine("\(workload.logName): \(line) (\(refusals) so far)") }
        }
        guard let (_, frames) = received else { return nil }
        do {
            let (messageRunID, message) = try WireCodec.decode(frames: frames)
            return try handle(message, runID: messageRunID)
        } catch let error as WireError {
            if case let .versionMismatch(received, supported) = error {
                return carryOut(machine.handle(.protocolMismatch(received: received, supported: supported), now: clock()))
            }
            logLine("\(workload.logName): dropped malformed message: \(error)")
            return nil
        } catch let exit as WorkerExit {
            // Tell the coordinator why, so its log names this worker's reason too.
            if runID != 0 { try? transport.send(.leave(Leave(reason: exit.message)), runID: runID) }
            logLine("\(workload.logName): \(exit.message)")
            return exit.status
        } catch {
            return fail(error)
        }
    }

    func handle(_ message: Message, runID messageRunID: UInt64) throws -> Int32? {
        switch message {
        case .welcome(let welcome):
            guard runID == 0 else { return nil }
            runID = messageRunID
            let fingerprint = try workload.prepare(welcome)
            try sendJoin(fingerprint: fingerprint)
            // After loading, which may take a while: the silence clock starts now.
            let timeout: Duration? = welcome.timeoutMs > 0 ? .milliseconds(Int(welcome.timeoutMs)) : nil
            return carryOut(machine.handle(.welcome(welcome.workerID, coordinatorTimeout: timeout), now: clock()))
        case .reject(let reject) where reject.code == .rejoin:
            return carryOut(machine.handle(.rejoin, now: clock()))
        case .reject(let reject):
            return carryOut(machine.handle(.reject(reason: reject.message), now: clock()))
        case .leave(let leave):
            return carryOut(machine.handle(.shutdown(reason: leave.reason), now: clock()))
        case .heartbeat:
            return carryOut(machine.handle(.heartbeatFromCoordinator, now: clock()))
        case .work(let work):
            guard messageRunID == runID, runID != 0 else { return nil }
            // The step picks batches; release builds do not check the conversion to Int.
            guard work.step <= UInt64(Int32.max) else {
                logLine("\(workload.logName): dropped work for step \(work.step): beyond any run's steps")
                return nil
            }
            // With chunk owners the parameters come as updated chunks from the owners (the agent
            // waits for them before computing).
            let carries = work.parameters != nil || work.flags.contains(.sharedParameters) || work.flags.contains(.chunkOwners)
            let event = WorkerEvent.work(step: Int(work.step), shards: work.shards.map(Int.init),
                                         parameterVersion: work.parameterVersion, includesParameters: carries)
            for action in machine.handle(event, now: clock()) {
                if case .compute = action {
                    try workload.compute(work, runID: runID) { frames in
                        do { try transport.send(frames, to: nil) } catch TransportError.wouldBlock {
                            // No connection to the coordinator now: the result is lost, and the
                            // coordinator gives the shard to another worker (or to this one again).
                            logLine("\(workload.logName): could not send a result of step \(work.step): the coordinator is unreachable; it will be recomputed")
                        }
                    }
                    _ = machine.handle(.computeFinished(step: Int(work.step)), now: clock())
                } else if let status = carryOut([action]) {
                    return status
                }
            }
            return nil
        case .join(let join):
            // Only workers send joins: the endpoint is this worker itself (a TCP self-connect,
            // which Linux makes when nothing listens on a port of its ephemeral range and the
            // connection happens to get that port as its own) or another worker.
            let who = join.pid == getpid() ? "itself (a TCP self-connect: nothing listens there, and the port is in this machine's ephemeral range — start the coordinator first, or give it a port below \(Self.ephemeralPortFloor))" : "another worker (pid \(join.pid) on \(join.workerName)), not a coordinator"
            throw WorkerExit(status: 1, message: "\(transport.endpoint) answered with a worker's join: this worker is connected to \(who)")
        case .chunk, .chunkControl:
            guard messageRunID == runID, runID != 0 else { return nil }
            try workload.receive(other: message, runID: runID)
            return nil
        default:
            return nil
        }
    }

    /// The lowest port of Linux's ephemeral range (`ip_local_port_range`), for messages.
    static var ephemeralPortFloor: Int {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return range.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32768
    }

    func sendJoin(fingerprint: UInt64) throws {
        let join = Join(workerName: ProcessInfo.processInfo.hostName, buildVersion: identity.buildVersion,
                        protocolVersion: identity.protocolVersion, dataFingerprint: fingerprint, pid: getpid(),
                        requestedWorkerID: identity.requestedWorkerID, peerEndpoint: identity.peerEndpoint)
        try transport.send(.join(join), runID: runID)
    }

    /// Carries out actions other than `compute`; returns the exit status of an `exit`.
    func carryOut(_ actions: [WorkerAction]) -> Int32? {
        for action in actions {
            switch action {
            case .sendJoin:
                // A hello: run id 0, whatever run this worker was in (its coordinator may have
                // restarted). One that cannot go out now is sent again in a second.
                runID = 0
                try? sendJoin(fingerprint: 0)
            case .sendHeartbeat:
                beatSequence += 1
                try? transport.send(.heartbeat(Heartbeat(sequence: beatSequence, sentAtNanos: clock())), runID: runID)
            case .sendLeave(let reason):
                try? transport.send(.leave(Leave(reason: reason)), runID: runID)
            case .compute:
                break  // handled with the work message that caused it
            case .notice(let text):
                logLine("\(workload.logName): \(withProbe(text))")
            case let .exit(code, message):
                // A clean end and a signal (the coordinator stopping its children) are news only when not quiet.
                if (code != 0 && code != 130) || !quiet { logLine("\(workload.logName): \(code == 1 ? withProbe(message) : message)") }
                return code
            }
        }
        return nil
    }

    /// While no coordinator has answered, what a plain TCP connection to it finds (refused,
    /// dropped, no route), put before `text`: ZeroMQ retries such connections silently.
    func withProbe(_ text: String) -> String {
        guard machine.waitingForCoordinator, let finding = TCPProbe.diagnose(transport.endpoint) else { return text }
        return finding + "; " + text
    }

    func fail(_ error: Error) -> Int32 {
        logLine("\(workload.logName): error: \(error)")
        return 1
    }

    /// Closes the transport.
    package func close() { transport.close() }
}
