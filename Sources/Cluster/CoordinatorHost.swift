#if canImport(Glibc)
import Glibc
#endif
import Coordination
import Foundation
import Transport
import WireProtocol

/// How a coordinator host runs besides its state machine's configuration.
package struct HostOptions: Sendable {
    /// This run's id: messages carrying another are refused.
    package var runID: UInt64
    /// Heartbeat interval and worker silence limit, sent to workers in the welcome.
    package var heartbeatMs: Int
    package var timeoutMs: Int
    /// Replace local worker processes that die.
    package var respawn = true
    /// Faults by child slot: `kill` ones the host carries out (SIGKILL once the slot's process
    /// holds work for the step), the others go to that slot's process as `--fault`.
    package var faults: [FaultSpec] = []
    /// Deaths of local workers that no `kill` fault caused, before the run gives up.
    package var respawnBudget = 64
    /// Log each worker's join (training does: remote workers come and go; stress does not, nor
    /// does a quiet host agent: their workers are their own children, and killing one every
    /// few steps would fill stderr).
    package var logsJoins = true

    package init(runID: UInt64, heartbeatMs: Int, timeoutMs: Int) {
        self.runID = runID
        self.heartbeatMs = heartbeatMs
        self.timeoutMs = timeoutMs
    }
}

/// The coordinator's process around a `CoordinatorStateMachine`, for any workload: the one
/// thread that owns the socket turns wire messages into events and the machine's actions into
/// messages; it runs the join handshake (hello → welcome → ready join), hands out worker ids
/// (never reused), starts, watches and replaces local worker processes, injects `kill` faults,
/// holds results until the machine releases them in shard order, and shuts everything down.
///
/// It talks through any `MessageTransport` and reads time from `clock`, so tests run a whole
/// cluster in one process over ``InMemoryHub`` with a manual clock. Lifecycle in docs/protocol.md.
package final class CoordinatorHost<Workload: CoordinatorWorkload> {
    unowned let workload: Workload
    package let options: HostOptions
    package let transport: MessageTransport
    /// Kept alive as long as the transport (a ZeroMQ context).
    let owner: AnyObject?
    package internal(set) var machine: CoordinatorStateMachine
    package let children: ChildProcesses?
    /// The same-host gradient pool, whose slots a reaped child may still hold.
    package let gradientPool: SharedGradients?
    package let clock: () -> UInt64

    package internal(set) var members: [WorkerID: Member] = [:]
    var workersByPeer: [PeerID: WorkerID] = [:]
    var pending: [PeerID: WorkerID] = [:]
    var assignedIDs = Set<WorkerID>()
    var nextWorkerID: WorkerID
    var results: [ResultToken: Workload.Result] = [:]
    var nextToken: ResultToken = 1
    package private(set) var started = false
    package private(set) var stepDone = false
    var stopping = false
    var failure: Error?
    var lastTick: UInt64 = 0
    /// Pids SIGKILLed by a `kill` fault (their deaths do not count against the respawn budget).
    var faultKilled = Set<Int32>()
    var unplannedDeaths = 0
    /// Local slots and processes (host/pid) a refereed audit proved wrong: never replaced, never let back in.
    var quarantinedSlots = Set<Int>()
    var quarantinedProcesses = Set<String>()

    // Counters for reports.
    package private(set) var wireBytesSent = 0, wireBytesReceived = 0
    /// Wire bytes by peer, and the host of each peer that joined (its tcp address, else its
    /// host name; `local` for this coordinator's own worker processes).
    var peerBytes: [PeerID: (sent: Int, received: Int)] = [:]
    var hostOfPeer: [PeerID: String] = [:]
    var workersOfHost: [String: Set<WorkerID>] = [:]
    package internal(set) var dropped = 0, corruptPayloads = 0, restarts = 0, auditMismatches = 0
    /// Connections the connection guard closed (a peer holding too much unfinished input).
    package internal(set) var guardDrops = 0
    /// Sealed bulk-channel sessions the transport handed out (0 without CURVE's bulk channel).
    package var sealedSessions: Int { (transport as? SealedServerTransport)?.sessionsOpened ?? 0 }
    /// Evictions after silence, by worker (report.json's per-worker table).
    package internal(set) var evictionsByWorker: [WorkerID: Int] = [:]
    package private(set) var kills: [(step: Int, slot: Int)] = []
    var droppedReasons: [String: Int] = [:]

    package init(workload: Workload, transport: MessageTransport, owner: AnyObject? = nil,
                 configuration: CoordinatorConfiguration, options: HostOptions, children: ChildProcesses? = nil,
                 gradientPool: SharedGradients? = nil, clock: @escaping () -> UInt64 = monotonicNanos) throws {
        self.workload = workload
        self.transport = transport
        self.owner = owner
        self.options = options
        self.children = children
        self.gradientPool = gradientPool
        self.clock = clock
        nextWorkerID = WorkerID(configuration.expectedWorkers)
        machine = try CoordinatorStateMachine(configuration: configuration, now: clock())
    }

    /// The endpoint workers connect to.
    package var endpoint: String { transport.endpoint }
    /// Workers taking part now.
    package var liveWorkers: [WorkerID] { machine.liveWorkers }

    // MARK: Running

    /// Starts `count` local worker processes in slots 0..<count, each asking for the id of its slot.
    package func spawnChildren(_ count: Int) throws {
        for slot in 0..<count { try spawn(slot: slot, requestID: slot) }
    }

    func spawn(slot: Int, requestID: Int) throws {
        guard let children else { return }
        var arguments = [workload.childCommand, "--connect", endpoint, "--parent-pid", String(getpid()),
                         "--heartbeat-ms", String(options.heartbeatMs), "--timeout-ms", String(options.timeoutMs)]
        if requestID >= 0 { arguments.append("--worker-id=\(requestID)") }
        arguments += workload.childArguments
        for fault in options.faults where fault.worker == slot && fault.kind != .kill { arguments += ["--fault", fault.description] }
        try children.spawn(arguments: arguments, index: slot)
    }

    /// Pumps until the state machine starts the run (the expected workers joined).
    package func waitForStart() throws {
        while !started {
            try pump(timeoutMs: 50)
            try checkFailure(while: "waiting for workers")
        }
    }

    /// Runs global step `step` against `parameterVersion` until its last result is released;
    /// `whileWaiting` runs between pumps (progress lines).
    /// With `subset`, only those shards (a host agent's share of a global step).
    package func runStep(_ step: Int, parameterVersion: UInt64, subset: [Int]? = nil, whileWaiting: (() -> Void)? = nil) throws {
        try beginStep(step, parameterVersion: parameterVersion, subset: subset)
        while !stepDone {
            try checkFailure(while: "at step \(step)")
            try pump(timeoutMs: 10)
            whileWaiting?()
        }
        try checkFailure(while: "at step \(step)")
    }

    /// Starts `step` (for tests that interleave the host with in-process workers).
    package func beginStep(_ step: Int, parameterVersion: UInt64, subset: [Int]? = nil) throws {
        stepDone = false
        let actions: [CoordinatorAction]
        do { actions = try machine.beginStep(step, parameterVersion: parameterVersion, now: clock(), subset: subset) } catch {
            throw RuntimeError.cluster("\(workload.logName): \(error)")
        }
        try perform(actions)
    }

    func checkFailure(while what: String) throws {
        if let failure { throw failure }
        if interruptSignal != 0 { throw RuntimeError.cluster("interrupted by signal \(interruptSignal) \(what)") }
    }

    /// Receives and handles messages for up to `timeoutMs` (0: only what is queued), then runs
    /// timers at most every 20 ms of the clock.
    package func pump(timeoutMs: Int) throws {
        var waited = false
        while true {
            let received: (peer: PeerID?, frames: [Frame])?
            do { received = try transport.receive(timeoutMs: waited ? 0 : timeoutMs) } catch {
                throw RuntimeError.cluster("\(workload.logName) socket: \(error)")
            }
            waited = true
            guard let (peer, frames) = received else { break }
            let bytes = frames.reduce(0) { $0 + $1.count }
            wireBytesReceived += bytes
            if let peer { peerBytes[peer, default: (0, 0)].received += bytes }
            if let peer { try handle(frames, from: peer) }
            // A finished step returns at once (the next one starts sooner); later messages wait.
            if stepDone && started { break }
        }
        let now = clock()
        if now &- lastTick > 20_000_000 {
            lastTick = now
            for line in transport.takeRefusals() { drop(line) }
            for line in transport.takeGuardDrops() {
                guardDrops += 1
                if guardDrops <= 5 || guardDrops % 100 == 0 { logLine("\(workload.logName): \(line) (\(guardDrops) so far)") }
            }
            try watchChildren()
            try perform(machine.handle(.tick, now: now))
        }
    }

    func handle(_ frames: [Frame], from peer: PeerID) throws {
        let decoded: (runID: UInt64, message: Message)
        do { decoded = try WireCodec.decode(frames: frames) } catch {
            if case let .payloadChecksumMismatch(kind, step, shard, span, _, _) = error, kind == .gradient,
               let worker = workersByPeer[peer], let shard {
                workload.corruptPayloadArrived(byteCount: frames.dropFirst().reduce(0) { $0 + $1.count })
                let shards = Int(shard)..<(Int(shard) + Int(span))
                try corrupt(worker, step: workload.machineStep(ofWire: step), shards: shards,
                            "corrupted gradient payload for step \(step) \(span > 1 ? "shards \(shards)" : "shard \(shard)") (checksum mismatch)")
            } else {
                drop("malformed message from \(peer): \(error)")
            }
            return
        }
        let (messageRunID, message) = decoded
        if case .join(let join) = message { return try handleJoin(join, runID: messageRunID, peer: peer) }
        guard messageRunID == options.runID else {
            drop("message from another run (run id \(messageRunID), this run is \(options.runID)) from \(peer)")
            if messageRunID != 0 {
                try? send(.reject(Reject(code: .wrongRun, message: "this coordinator runs run \(options.runID); your run \(messageRunID) is over")), to: peer)
            }
            return
        }
        if case .leave(let leave) = message, let id = pending.removeValue(forKey: peer) {
            return logLine("\(workload.logName): worker \(id) did not join: \(leave.reason)")
        }
        guard let worker = workersByPeer[peer], let member = members[worker] else {
            if pending[peer] == nil {
                // One of this run's workers this coordinator does not know: it was restarted from
                // a checkpoint (same run id), so the worker is asked to join again.
                try? send(.reject(Reject(code: .rejoin, message: "this coordinator does not know you (it restarted); join again")), to: peer)
            }
            return drop("\(message.kind) from unknown peer \(peer)")
        }
        let now = clock()
        switch message {
        case .gradient(let gradient) where gradient.span > 1 && !workload.acceptsNodeSums:
            drop("node sum (shards \(gradient.shards)) from worker \(worker): this run does not use node sums")
            try perform(machine.handle(.corruptResult(worker, step: workload.machineStep(ofWire: gradient.step), shard: Int(gradient.shard)), now: now))
        case .gradient(let gradient):
            let step = workload.machineStep(ofWire: gradient.step)
            switch workload.accept(gradient, from: member) {
            case .accepted(let result):
                let token = nextToken
                nextToken += 1
                results[token] = result
                try perform(machine.handle(.shardResult(worker, step: step, shard: Int(gradient.shard), token: token,
                                                        span: Int(gradient.span)), now: now))
            case .corrupt(let reason):
                try corrupt(worker, step: step, shards: gradient.shards, reason)
            case .invalid(let reason):
                drop(reason)
                try perform(machine.handle(.corruptResult(worker, step: step, shard: Int(gradient.shard), span: Int(gradient.span)), now: now))
            }
        case .chunk, .chunkControl:
            if !workload.receive(other: message, from: member) { drop("unexpected \(message.kind) from worker \(worker)") }
        case .heartbeat: try perform(machine.handle(.heartbeat(worker), now: now))
        case .leave(let leave):
            logLine("\(workload.logName): worker \(worker) left: \(leave.reason)")
            forget(worker)
            try perform(machine.handle(.workerLeft(worker), now: now))
        default: drop("unexpected \(message.kind) from worker \(worker)")
        }
    }

    func corrupt(_ worker: WorkerID, step: Int, shards: Range<Int>, _ reason: String) throws {
        corruptPayloads += 1
        if corruptPayloads <= 3 { logLine("\(workload.logName): worker \(worker): \(reason); recomputing") }
        try perform(machine.handle(.corruptResult(worker, step: step, shard: shards.lowerBound, span: shards.count), now: clock()))
    }

    package func drop(_ reason: String) {
        dropped += 1
        let key = String(reason.prefix(40))
        droppedReasons[key, default: 0] += 1
        if droppedReasons[key]! <= 3 { logLine("\(workload.logName): dropped \(reason)") }
    }

    // MARK: Actions

    func send(_ message: Message, to peer: PeerID) throws {
        let frames = WireCodec.encode(message, runID: options.runID)
        try transport.send(frames, to: peer)
        let bytes = frames.reduce(0) { $0 + $1.count }
        wireBytesSent += bytes
        peerBytes[peer, default: (0, 0)].sent += bytes
    }

    /// Wire bytes by worker host, for report.json (a peer that never joined: under its address, if known).
    package var traffic: [String: HostTraffic] {
        var hosts: [String: HostTraffic] = [:]
        for (peer, bytes) in peerBytes {
            let host = hostOfPeer[peer] ?? transport.address(of: peer) ?? HostTraffic.unjoined
            hosts[host, default: HostTraffic()].bytesSent += bytes.sent
            hosts[host, default: HostTraffic()].bytesReceived += bytes.received
        }
        for (host, workers) in workersOfHost {
            hosts[host, default: HostTraffic()].workers = workers
            for worker in workers {
                guard let peer = agentPeerBytes[worker] else { continue }
                hosts[host]!.peerBytesSent += peer.sent; hosts[host]!.peerBytesReceived += peer.received
            }
        }
        return hosts
    }

    package func send(_ message: Message, to worker: WorkerID) {
        if let member = members[worker] { try? send(message, to: member.peer) }
    }

    /// What worker `worker`'s agent reports it exchanged with other agents so far (chunk owners).
    package func recordPeerTraffic(of worker: WorkerID, sent: Int, received: Int) {
        agentPeerBytes[worker] = (sent, received)
    }
    var agentPeerBytes: [WorkerID: (sent: Int, received: Int)] = [:]

    /// Carries out the state machine's actions in order.
    func perform(_ actions: [CoordinatorAction]) throws {
        for action in actions {
            switch action {
            case .welcome: break
            case .startTraining: started = true
            case let .reject(worker, reason): send(.reject(Reject(code: .other, message: reason)), to: worker)
            case .sendWork(let assignment): try sendWork(assignment)
            case .heartbeat(let targets):
                let beat = Message.heartbeat(Heartbeat(sequence: workload.heartbeatSequence, sentAtNanos: clock()))
                for worker in targets { send(beat, to: worker) }
            case .aggregate(let aggregation):
                let held = aggregation.retainForAudit ? results[aggregation.token] : results.removeValue(forKey: aggregation.token)
                if let held { workload.aggregate(held, aggregation) }
            case .discard(let discard): results[discard.token] = nil
            case .auditPair(let pair): try audit(pair)
            case let .auditAbandoned(_, _, token): if let token { results[token] = nil }
            case .stepComplete: stepDone = true
            case let .evict(worker, reason):
                evictionsByWorker[worker, default: 0] += 1
                logLine("\(workload.logName): evicted worker \(worker): \(reason)")
                send(.leave(Leave(reason: "evicted: \(reason)")), to: worker)
                forget(worker)
            case .shutdown(let targets):
                for worker in targets { send(.leave(Leave(reason: workload.finishedReason)), to: worker) }
            case .fail(let error):
                failure = RuntimeError.cluster("\(workload.logName): \(error)")
            }
        }
    }

    func audit(_ pair: AuditPair) throws {
        defer { results[pair.tokenA] = nil; results[pair.tokenB] = nil }
        guard let a = results[pair.tokenA], let b = results[pair.tokenB], workload.auditDiffers(a, b, pair) else { return }
        auditMismatches += 1
        try perform(machine.handle(.auditMismatch(step: pair.step, shard: pair.shard, workerA: pair.workerA, workerB: pair.workerB), now: clock()))
    }

    func sendWork(_ assignment: WorkAssignment) throws {
        guard let member = members[assignment.worker] else { return }
        let work = workload.work(for: assignment, member: member)
        do {
            try send(.work(work), to: member.peer)
        } catch {
            logLine("\(workload.logName): worker \(assignment.worker) unreachable (\(error)); evicting")
            forget(assignment.worker)
            try perform(machine.handle(.workerLeft(assignment.worker), now: clock()))
            return
        }
        if assignment.includeParameters {
            workload.delivered(work, to: member)
            try perform(machine.handle(.parametersDelivered(assignment.worker, version: assignment.parameterVersion), now: clock()))
        }
        try injectKill(assignment, member: member)
    }

    /// `kill` faults: a real SIGKILL once the process in the fault's slot holds work for the
    /// step (once per step and slot), reaped and replaced at once so every kill is followed by
    /// a restart, the last step's too.
    func injectKill(_ assignment: WorkAssignment, member: Member) throws {
        guard let slot = member.slot, let children else { return }
        for fault in options.faults where fault.kind == .kill && fault.worker == slot {
            let due = fault.step == assignment.step || (fault.every.map { assignment.step > 0 && assignment.step % $0 == 0 } ?? false)
            guard due, !kills.contains(where: { $0.step == assignment.step && $0.slot == slot }) else { continue }
            kills.append((assignment.step, slot))
            logLine("\(workload.logName): fault: SIGKILL worker \(slot) (pid \(member.pid)) at step \(assignment.step)")
            kill(member.pid, SIGKILL)
            faultKilled.insert(member.pid)
            if let (child, status) = children.reap(pid: member.pid) { try childExited(child, status: status) }
        }
    }

    /// Ends the run: the state machine finishes, every worker gets a `leave`, local processes
    /// get a second to exit on their own before SIGTERM/SIGKILL, the socket closes and an ipc
    /// socket file is removed.
    package func shutdown() {
        guard !stopping else { return }
        stopping = true
        if machine.phase == .running || machine.phase == .waitingForWorkers { try? perform(machine.finish(now: clock())) }
        for member in members.values { try? send(.leave(Leave(reason: workload.finishedReason)), to: member.peer) }
        if let children {
            let deadline = monotonicNanos() + 1_000_000_000
            while !children.children.isEmpty && monotonicNanos() < deadline {
                _ = children.reapExited()
                usleep(10_000)
            }
            children.stopAll(grace: 1)
        }
        results.removeAll()
        transport.close()
        if endpoint.hasPrefix("ipc://") { unlink(String(endpoint.dropFirst(6))) }
    }
}
