#if canImport(Glibc)
import Glibc
#endif
import Config
import Coordination
import Foundation
import NeuralNet
import TensorCore
import Transport
import WireProtocol

/// The coordinator's side of distributed training: owns the ROUTER socket and the
/// coordination state machine, turns wire messages into events and actions into wire
/// messages, and adds shard contributions to the session in shard order.
///
/// One thread owns the socket (libzmq sockets are not thread-safe). Steps of the lifecycle
/// are in docs/protocol.md.
public final class DistributedExecutor: StepExecutor {
    struct Result { let contribution: TensorStorage; let outcome: ShardOutcome; let signals: [UInt8]; let worker: WorkerID }

    let session: TrainingSession
    let settings: ClusterSettings
    let runID: UInt64
    let context: ZMQContext
    let transport: ZMQMessageTransport
    var machine: CoordinatorStateMachine
    let children: ChildProcesses?
    let faults: [FaultSpec]
    let dataFingerprint: UInt64
    let configJSON: [UInt8]
    let configHash: UInt64

    var peers: [WorkerID: PeerID] = [:]
    var workersByPeer: [PeerID: WorkerID] = [:]
    var pending: [PeerID: WorkerID] = [:]
    var pids: [WorkerID: Int32] = [:]
    var nextWorkerID: WorkerID
    /// Every id ever handed out: ids are never reused, so a stale message can't be mistaken.
    var assignedIDs = Set<WorkerID>()
    var results: [ResultToken: Result] = [:]
    var nextToken: ResultToken = 1
    var stepDone = false
    var started = false
    var failure: Error?
    var parameterPayload: PayloadBuffer?
    /// The same-host fast path: parameters for local workers (nil with --no-shm or no children).
    var sharedParameters: SharedParameters?
    /// The pool local workers write gradients into (nil with --no-shm or no children, or when it did not fit).
    var gradientPool: SharedGradients?
    var sharedGradientBytes = 0
    var sharedVersion: UInt64 = .max
    var sharedBytes = 0
    var parameterPayloadVersion: UInt64 = .max
    var lastTick: UInt64 = 0
    var restarts = 0

    // Counters for report.json.
    var bytesSent = 0, bytesReceived = 0, dropped = 0, corruptPayloads = 0, killed = 0, auditMismatchCount = 0
    var droppedReasons: [String: Int] = [:]
    /// Where the coordinator's time goes, in nanoseconds summed over the run.
    var timing = (steps: 0, stepNanos: UInt64(0), parameterCopyNanos: UInt64(0), decodeNanos: UInt64(0),
                  aggregateNanos: UInt64(0), workerComputeNanos: UInt64(0), shards: 0)
    public private(set) var auditMismatches: [(step: Int, shard: Int, a: WorkerID, b: WorkerID)] = []
    /// Computes audited shards at the coordinator when two workers disagree (made on first use).
    var refereeComputer: ShardComputer?

    /// Called for every aggregated shard: worker, shard, monitor statistics blob, the
    /// contribution as received and its example count.
    public var shardSignals: ((WorkerID, Int, [UInt8], UnsafePointer<Float>, Int) -> Void)?
    /// Called for every audit mismatch.
    /// Called on an audit mismatch with (step, shard, worker A, worker B, the worker the
    /// coordinator's own computation of the shard disagrees with, when it agrees with the other).
    public var auditMismatch: ((Int, Int, WorkerID, WorkerID, WorkerID?) -> Void)?
    /// Called with (worker, step, statistics) for every intact gradient of the current probe step,
    /// aggregated or not (a straggler copy or an audit copy still carries its worker's probe).
    public var gradientStatistics: ((WorkerID, Int, [UInt8]) -> Void)?

    public var workerCount: Int { machine.liveWorkers.count }

    init(session: TrainingSession, settings: ClusterSettings, runID: UInt64, endpoint: String, expect: Int,
         children: ChildProcesses?, faults: [FaultSpec]) throws {
        self.session = session
        self.settings = settings
        self.runID = runID
        self.children = children
        self.faults = faults
        nextWorkerID = WorkerID(max(expect, 0))
        context = try ZMQContext(ioThreads: 1)
        do {
            transport = try ClusterSocket.router(context: context, endpoint: endpoint, heartbeatMs: settings.heartbeatMs,
                                                 timeoutMs: settings.timeoutMs, curve: settings.curve)
        } catch {
            throw RuntimeError.cluster("cannot bind \(endpoint): \(error)")
        }
        var configuration = CoordinatorConfiguration(shardCount: session.shards, expectedWorkers: max(expect, 1))
        configuration.heartbeatInterval = .milliseconds(settings.heartbeatMs)
        configuration.workerTimeout = .milliseconds(settings.timeoutMs)
        configuration.noWorkerTimeout = .milliseconds(settings.noWorkerTimeoutMs)
        configuration.startTimeout = .milliseconds(settings.startTimeoutMs)
        configuration.auditEvery = settings.auditEvery
        if let straggler = settings.stragglerMs { configuration.stragglerDeadline = .milliseconds(straggler) }
        machine = try CoordinatorStateMachine(configuration: configuration, now: monotonicNanos())
        if children != nil && settings.sharedMemory {
            SharedGradients.removeOrphanedSegments()
            sharedParameters = try? SharedParameters.create(name: "/chorus-\(getpid())-\(runID % 1_000_000)",
                                                            count: session.model.parameters.count)
            do {
                gradientPool = try SharedGradients.create(
                    name: "/chorus-\(getpid())-\(runID % 1_000_000)-g", gradientBytes: session.model.contributionCount * 4,
                    slots: SharedGradients.slots(shards: session.shards, workers: max(expect, 1)))
            } catch {
                logLine("chorus coordinator: local workers send gradients over the socket: \(error)")
            }
        }
        dataFingerprint = session.data.fingerprint()
        configJSON = Array(session.config.jsonData())
        configHash = session.config.canonicalHash()
    }

    /// The endpoint workers connect to.
    public var endpoint: String { transport.endpoint }

    /// `chorus train --workers N`: binds a local endpoint, starts N worker processes and
    /// waits until they have joined.
    public static func launchLocal(session: TrainingSession, workers: Int, faults: [FaultSpec], runID: UInt64,
                                   settings: ClusterSettings) throws -> DistributedExecutor {
        let endpoint = settings.endpoint ?? (settings.localTCP ? "tcp://127.0.0.1:*" : "ipc:///tmp/chorus-\(getpid())-\(runID % 1_000_000).sock")
        let children = ChildProcesses()
        let executor = try DistributedExecutor(session: session, settings: settings, runID: runID, endpoint: endpoint,
                                               expect: workers, children: children, faults: faults)
        for index in 0..<workers { try executor.spawnWorker(index: index, requestID: index) }
        try executor.waitForStart()
        return executor
    }

    /// `chorus coordinator --bind … --expect N`.
    public static func bind(session: TrainingSession, endpoint: String, expect: Int, runID: UInt64,
                            settings: ClusterSettings) throws -> DistributedExecutor {
        let executor = try DistributedExecutor(session: session, settings: settings, runID: runID, endpoint: endpoint,
                                               expect: expect, children: nil, faults: [])
        logLine("chorus coordinator: listening on \(executor.endpoint), waiting for \(expect) worker(s)")
        try executor.waitForStart()
        return executor
    }

    func spawnWorker(index: Int, requestID: Int) throws {
        guard let children else { return }
        var arguments = ["worker", "--connect", endpoint, "--parent-pid", String(getpid()), "--quiet",
                         "--heartbeat-ms", String(settings.heartbeatMs), "--timeout-ms", String(settings.timeoutMs)]
        if requestID >= 0 { arguments += ["--worker-id", String(requestID)] }
        // "=": a Z85 key may start with "-", which would read as an option.
        if let curve = settings.curve { arguments += ["--curve-server-key=\(curve.publicKey)"] }
        if let shared = sharedParameters { arguments += ["--shared-parameters", shared.name] }
        if let pool = gradientPool { arguments += ["--shared-gradients", pool.name] }
        for fault in faults where fault.worker == requestID && fault.kind != .kill { arguments += ["--fault", fault.description] }
        try children.spawn(arguments: arguments, index: index)
    }

    func waitForStart() throws {
        while !started {
            try pump(timeoutMs: 50)
            if let failure { throw failure }
            if interruptSignal != 0 { throw RuntimeError.cluster("interrupted while waiting for workers") }
        }
    }

    // MARK: Steps

    public func execute(session: TrainingSession) throws {
        let stepStarted = monotonicNanos()
        defer { timing.steps += 1; timing.stepNanos += monotonicNanos() - stepStarted }
        let version = UInt64(session.globalStep)
        if let shared = sharedParameters, sharedVersion != version {
            let copyStarted = monotonicNanos()
            shared.write(version: version, from: session.model.parameters.values.pointer)
            sharedVersion = version
            timing.parameterCopyNanos += monotonicNanos() - copyStarted
        }
        if needsSocketParameters { makeParameterPayload(version: version) }
        stepDone = false
        let actions: [CoordinatorAction]
        do { actions = try machine.beginStep(session.globalStep, parameterVersion: version, now: monotonicNanos()) } catch {
            throw RuntimeError.cluster("coordinator: \(error)")
        }
        try perform(actions)
        while !stepDone {
            if let failure { throw failure }
            if interruptSignal != 0 { throw RuntimeError.cluster("interrupted by signal \(interruptSignal)") }
            try pump(timeoutMs: 10)
        }
        if let failure { throw failure }
    }

    /// Receives and handles messages for up to `timeoutMs`, then runs timers.
    func pump(timeoutMs: Int) throws {
        var waited = false
        while true {
            let incoming: IncomingMessage?
            do { incoming = try transport.receiveMessage(timeoutMs: waited ? 0 : timeoutMs) } catch {
                throw RuntimeError.cluster("coordinator socket: \(error)")
            }
            waited = true
            guard let incoming else { break }
            try handle(incoming)
            if stepDone { break }
        }
        let now = monotonicNanos()
        if now - lastTick > 20_000_000 {
            lastTick = now
            try watchChildren()
            try perform(machine.handle(.tick, now: now))
        }
    }

    func handle(_ incoming: IncomingMessage) throws {
        guard let peer = incoming.peer else { return }
        let now = monotonicNanos()
        switch incoming.decoded {
        case .failure(let error):
            if case let .payloadChecksumMismatch(kind, step, shard, _, _) = error, kind == .gradient, let worker = workersByPeer[peer], let shard {
                corruptPayloads += 1
                logLine("chorus coordinator: worker \(worker): corrupted gradient payload for step \(step) shard \(shard) (checksum mismatch); recomputing")
                try perform(machine.handle(.corruptResult(worker, step: Int(step), shard: Int(shard)), now: now))
            } else {
                drop("malformed message from \(peer): \(error)")
            }
        case .success(let (messageRunID, message)):
            if case .join(let join) = message { try handleJoin(join, runID: messageRunID, peer: peer); return }
            guard messageRunID == runID else {
                drop("message from another run (run id \(messageRunID), this run is \(runID)) from \(peer)")
                if messageRunID != 0 {
                    try? transport.send(.reject(Reject(code: .wrongRun, message: "this coordinator runs run \(runID); your run \(messageRunID) is over")), runID: runID, to: peer)
                }
                return
            }
            guard let worker = workersByPeer[peer] else { drop("\(message.kind) from unknown peer \(peer)"); return }
            switch message {
            case .gradient(let gradient): try handleGradient(gradient, from: worker, now: now)
            case .heartbeat: try perform(machine.handle(.heartbeat(worker), now: now))
            case .leave(let leave):
                logLine("chorus coordinator: worker \(worker) left: \(leave.reason)")
                forget(worker)
                try perform(machine.handle(.workerLeft(worker), now: now))
            default: drop("unexpected \(message.kind) from worker \(worker)")
            }
        }
    }

    func drop(_ reason: String) {
        dropped += 1
        let key = String(reason.prefix(40))
        droppedReasons[key, default: 0] += 1
        if droppedReasons[key]! <= 3 { logLine("chorus coordinator: dropped \(reason)") }
    }

    func handleJoin(_ join: Join, runID messageRunID: UInt64, peer: PeerID) throws {
        func reject(_ code: RejectCode, _ text: String) {
            logLine("chorus coordinator: refused worker \(join.workerName) (pid \(join.pid)): \(text)")
            try? transport.send(.reject(Reject(code: code, message: text)), runID: runID, to: peer)
            pending[peer] = nil
        }
        guard join.protocolVersion == WireProtocol.protocolVersion else {
            return reject(.versionMismatch, "worker speaks protocol version \(join.protocolVersion), coordinator \(WireProtocol.protocolVersion)")
        }
        guard join.buildVersion == BuildInfo.version else {
            return reject(.versionMismatch, "worker build \(join.buildVersion) differs from coordinator build \(BuildInfo.version)")
        }
        if messageRunID == 0 {
            // Hello: assign an id and send the config; the worker loads its data and joins again.
            var id: WorkerID
            if join.requestedWorkerID >= 0, peers[WorkerID(join.requestedWorkerID)] == nil,
               !pending.values.contains(WorkerID(join.requestedWorkerID)), !assignedIDs.contains(WorkerID(join.requestedWorkerID)) {
                id = WorkerID(join.requestedWorkerID)
            } else {
                id = nextWorkerID
                while assignedIDs.contains(id) { id += 1 }
                nextWorkerID = id + 1
            }
            pending[peer] = id
            assignedIDs.insert(id)
            let welcome = Welcome(workerID: id, configJSON: configJSON, configHash: configHash,
                                  heartbeatIntervalMs: UInt32(settings.heartbeatMs), timeoutMs: UInt32(settings.timeoutMs),
                                  parameterVersion: UInt64(session.globalStep))
            try? transport.send(.welcome(welcome), runID: runID, to: peer)
            return
        }
        guard messageRunID == runID else {
            return reject(.wrongRun, "worker belongs to run \(messageRunID); this coordinator runs \(runID)")
        }
        guard let id = pending.removeValue(forKey: peer) else {
            return reject(.other, "join without a welcome; reconnect")
        }
        guard join.dataFingerprint == dataFingerprint else {
            return reject(.dataMismatch, String(format: "worker's data fingerprint %016llx differs from the coordinator's %016llx: the worker reads other data", join.dataFingerprint, dataFingerprint))
        }
        peers[id] = peer
        workersByPeer[peer] = id
        pids[id] = join.pid
        logLine("chorus coordinator: worker \(id) joined (\(join.workerName), pid \(join.pid))")
        try perform(machine.handle(.workerJoined(id), now: monotonicNanos()))
    }

    /// Whether the workers evaluate the probe batch at global step `step`.
    func isProbeStep(_ step: Int) -> Bool { settings.probeEvery > 0 && step % settings.probeEvery == 0 }

    /// The gradient pool, for a local child worker (others send gradients over the socket).
    func gradientPool(for worker: WorkerID) -> SharedGradients? {
        isLocalChild(worker) ? gradientPool : nil
    }

    func handleGradient(_ gradient: Gradient, from worker: WorkerID, now: UInt64) throws {
        let count = session.model.contributionCount
        let decodeStarted = monotonicNanos()
        let storage = TensorStorage(count: count, zeroed: false)
        let values = UnsafeMutableBufferPointer(start: storage.pointer, count: count)
        if gradient.sharedSlot != Gradient.inline {
            let byteCount = count * gradient.dtype.byteWidth
            guard let segment = gradientPool(for: worker), let pid = pids[worker],
                  segment.bytes(slot: Int(gradient.sharedSlot), byteCount: byteCount) != nil,
                  segment.owner(ofSlot: Int(gradient.sharedSlot)) == UInt32(bitPattern: pid) else {
                drop("shared-memory gradient (slot \(gradient.sharedSlot)) from worker \(worker), which holds no such slot")
                return
            }
            // Copy first, then checksum the copy: what is aggregated is what the worker checksummed.
            // Then the slot is free for the next result, whatever becomes of this one.
            let crc: UInt32?
            if gradient.dtype == .fp32 {
                crc = segment.copy(slot: Int(gradient.sharedSlot), byteCount: byteCount, into: UnsafeMutableRawPointer(storage.pointer))
            } else {
                let copy = PayloadBuffer(byteCount: byteCount)
                crc = segment.copy(slot: Int(gradient.sharedSlot), byteCount: byteCount, into: copy.baseAddress)
                copy.decode(as: gradient.dtype, into: values)
            }
            segment.release(slot: Int(gradient.sharedSlot), owner: UInt32(bitPattern: pid))
            guard crc == gradient.sharedCRC else {
                corruptPayloads += 1
                logLine("chorus coordinator: worker \(worker): corrupted shared-memory gradient for step \(gradient.step) shard \(gradient.shard) (checksum mismatch); recomputing")
                try perform(machine.handle(.corruptResult(worker, step: Int(gradient.step), shard: Int(gradient.shard)), now: now))
                return
            }
            sharedGradientBytes += byteCount
        } else {
            guard gradient.payload.elementCount(as: gradient.dtype) == count else {
                drop("gradient from worker \(worker) with \(gradient.payload.elementCount(as: gradient.dtype)) values, expected \(count)")
                try perform(machine.handle(.corruptResult(worker, step: Int(gradient.step), shard: Int(gradient.shard)), now: now))
                return
            }
            bytesReceived += gradient.payload.byteCount
            gradient.payload.decode(as: gradient.dtype, into: values)
        }
        timing.decodeNanos += monotonicNanos() - decodeStarted
        if Int(gradient.step) == session.globalStep, isProbeStep(session.globalStep), !gradient.statistics.isEmpty {
            gradientStatistics?(worker, Int(gradient.step), gradient.statistics)
        }
        timing.workerComputeNanos += gradient.computeNanos
        timing.shards += 1
        let token = nextToken
        nextToken += 1
        results[token] = Result(contribution: storage,
                                outcome: ShardOutcome(lossSum: gradient.lossSum, correct: Int(gradient.correct), count: Int(gradient.exampleCount)),
                                signals: gradient.statistics, worker: worker)
        try perform(machine.handle(.shardResult(worker, step: Int(gradient.step), shard: Int(gradient.shard), token: token), now: now))
    }

    // MARK: CoordinatorActionHost (the shared action handling is in CoordinatorActionHost.swift)

    var logName: String { "chorus coordinator" }
    var finishedReason: String { "run finished" }
    var heartbeatSequence: UInt64 { UInt64(session.globalStep) }

    func sendMessage(_ message: Message, to peer: PeerID) throws {
        try transport.send(message, runID: runID, to: peer)
    }

    /// Adds a released result to the step's gradient (and hands its signals to the monitor).
    func aggregate(_ aggregation: Aggregation) {
        guard let result = results[aggregation.token] else { return }
        let addStarted = monotonicNanos()
        session.add(shard: aggregation.shard, contribution: result.contribution.pointer, outcome: result.outcome)
        timing.aggregateNanos += monotonicNanos() - addStarted
        shardSignals?(aggregation.worker, aggregation.shard, result.signals, result.contribution.pointer, result.outcome.count)
        if !aggregation.retainForAudit { results[aggregation.token] = nil }
    }

    /// Compares an audit's two results bit for bit; on a mismatch, referees and tells the monitor.
    func audit(_ pair: AuditPair) {
        if let a = results[pair.tokenA], let b = results[pair.tokenB] {
            let count = session.model.contributionCount
            if memcmp(a.contribution.pointer, b.contribution.pointer, count * 4) != 0 {
                auditMismatchCount += 1
                auditMismatches.append((pair.step, pair.shard, pair.workerA, pair.workerB))
                let suspect = referee(step: pair.step, shard: pair.shard, a: (pair.workerA, a.contribution), b: (pair.workerB, b.contribution))
                logLine("chorus coordinator: audit mismatch at step \(pair.step) shard \(pair.shard): workers \(pair.workerA) and \(pair.workerB) computed different gradients"
                        + (suspect.map { "; the coordinator's own computation agrees with the other, so worker \($0) is at fault" } ?? "; the coordinator's own computation agrees with neither"))
                auditMismatch?(pair.step, pair.shard, pair.workerA, pair.workerB, suspect)
                _ = machine.handle(.auditMismatch(step: pair.step, shard: pair.shard, workerA: pair.workerA, workerB: pair.workerB), now: monotonicNanos())
            }
        }
        results[pair.tokenA] = nil
        results[pair.tokenB] = nil
    }

    func freeResult(_ token: ResultToken) { results[token] = nil }

    /// Copies the current parameters into the socket payload for `version`, once per version.
    func makeParameterPayload(version: UInt64) {
        guard parameterPayloadVersion != version else { return }
        let copyStarted = monotonicNanos()
        defer { timing.parameterCopyNanos += monotonicNanos() - copyStarted }
        parameterPayload = PayloadBuffer(copying: UnsafeRawBufferPointer(start: session.model.parameters.values.pointer,
                                                                        count: session.model.parameters.count * 4))
        parameterPayloadVersion = version
    }

    /// Whether some live worker reads its parameters from the socket (not shared memory).
    var needsSocketParameters: Bool {
        sharedParameters == nil || peers.keys.contains { !usesSharedMemory($0) }
    }

    /// Local children (their pid is one this coordinator spawned) read parameters from shared memory.
    func usesSharedMemory(_ worker: WorkerID) -> Bool { sharedParameters != nil && isLocalChild(worker) }

    /// Whether `worker` is a process this coordinator spawned (on this host).
    func isLocalChild(_ worker: WorkerID) -> Bool {
        guard let pid = pids[worker], let children else { return false }
        return children.children.contains { $0.pid == pid }
    }

    /// Settles an audit mismatch between two workers: the coordinator computes the shard itself
    /// (same parameters, data and kernel, so the same bits a healthy worker sends, rounded to the
    /// wire format) and names the worker whose result differs from it, when the other matches.
    /// Runs only on a mismatch, which a healthy cluster never has.
    func referee(step: Int, shard: Int, a: (WorkerID, TensorStorage), b: (WorkerID, TensorStorage)) -> WorkerID? {
        let count = session.model.contributionCount
        if refereeComputer == nil {
            refereeComputer = ShardComputer(model: session.model, train: session.data.train, plan: session.plan,
                                            loss: session.config.loss, seed: session.config.training.seed)
        }
        let own = TensorStorage(count: count)
        _ = refereeComputer!.compute(globalStep: step, shard: shard, shards: session.shards, into: own.pointer)
        if settings.wireDType != .fp32 {
            let payload = PayloadBuffer.encoding(UnsafeBufferPointer(start: own.pointer, count: count), as: settings.wireDType)
            payload.decode(as: settings.wireDType, into: UnsafeMutableBufferPointer(start: own.pointer, count: count))
        }
        let matchesA = memcmp(own.pointer, a.1.pointer, count * 4) == 0
        let matchesB = memcmp(own.pointer, b.1.pointer, count * 4) == 0
        if matchesA && !matchesB { return b.0 }
        if matchesB && !matchesA { return a.0 }
        return nil
    }

    func sendWork(_ assignment: WorkAssignment) throws {
        guard let peer = peers[assignment.worker] else { return }
        let (epoch, stepInEpoch) = session.plan.position(globalStep: assignment.step)
        let shared = usesSharedMemory(assignment.worker) && assignment.parameterVersion == sharedVersion
        var flags: WorkFlags = isProbeStep(assignment.step) ? [.probe] : []
        if shared { flags.insert(.sharedParameters) }
        // A worker that joined this step without shared memory may need the payload only now.
        if !shared && assignment.includeParameters { makeParameterPayload(version: assignment.parameterVersion) }
        let work = Work(step: UInt64(assignment.step), epoch: UInt32(epoch), stepInEpoch: UInt32(stepInEpoch),
                        parameterVersion: assignment.parameterVersion, shards: assignment.shards.map(UInt32.init),
                        shardCount: UInt32(session.shards), flags: flags, gradientDType: settings.wireDType,
                        parameters: assignment.includeParameters && !shared ? parameterPayload : nil)
        do {
            try transport.send(.work(work), runID: runID, to: peer)
            if assignment.includeParameters {
                if shared { sharedBytes += session.model.parameters.count * 4 } else { bytesSent += parameterPayload?.byteCount ?? 0 }
                try perform(machine.handle(.parametersDelivered(assignment.worker, version: assignment.parameterVersion), now: monotonicNanos()))
            }
        } catch {
            logLine("chorus coordinator: worker \(assignment.worker) unreachable (\(error)); evicting")
            forget(assignment.worker)
            try perform(machine.handle(.workerLeft(assignment.worker), now: monotonicNanos()))
            return
        }
        // Fault injection: a real SIGKILL once the worker holds work for the step.
        for fault in faults where fault.kind == .kill && Int(assignment.worker) == fault.worker {
            let due = fault.step.map { $0 == assignment.step } ?? false
            let periodic = fault.every.map { assignment.step > 0 && assignment.step % $0 == 0 } ?? false
            if (due || periodic), let pid = pids[assignment.worker] {
                logLine("chorus coordinator: fault: SIGKILL worker \(assignment.worker) (pid \(pid)) at step \(assignment.step)")
                kill(pid, SIGKILL)
                killed += 1
            }
        }
    }

    /// Stops sending work to `worker` (the monitor's rollback for a faulty replica).
    public func evict(worker: WorkerID, reason: String) {
        if let peer = peers[worker] { try? transport.send(.leave(Leave(reason: "evicted: \(reason)")), runID: runID, to: peer) }
        if let pid = pids[worker], let children { children.signal(pid, SIGTERM) }
        forget(worker)
        try? perform(machine.handle(.workerLeft(worker), now: monotonicNanos()))
    }

    func forget(_ worker: WorkerID) {
        if let peer = peers.removeValue(forKey: worker) { workersByPeer[peer] = nil }
        pids[worker] = nil
    }

    /// Notices local workers that died, tells the state machine at once, and starts replacements.
    func watchChildren() throws {
        guard let children else { return }
        for (child, status) in children.reapExited() {
            let worker = pids.first(where: { $0.value == child.pid })?.key
            logLine("chorus coordinator: worker process \(child.pid)\(worker.map { " (worker \($0))" } ?? "") \(status)")
            // It is gone for good (reaped), so nothing can still write the slots it held.
            gradientPool?.releaseAll(owner: UInt32(bitPattern: child.pid))
            if let worker {
                forget(worker)
                try perform(machine.handle(.workerLeft(worker), now: monotonicNanos()))
            }
            if settings.respawn && restarts < 64 && interruptSignal == 0 {
                restarts += 1
                try spawnWorker(index: child.index, requestID: -1)
            }
        }
    }

    public func reportFields() -> [String: Any] {
        let s = machine.statistics
        return [
            "cluster": [
                "evictions": s.evictions, "reassignments": s.reassignments, "straggler_duplicates": s.stragglerDuplicates,
                "duplicates": s.duplicates, "stale": s.stale, "corrupt_payloads": corruptPayloads,
                "dropped_messages": dropped, "audits": s.auditsCompared, "audit_mismatches": auditMismatchCount,
                "workers_killed": killed, "workers_restarted": restarts,
                "bytes_sent": bytesSent, "bytes_received": bytesReceived,
                "wire_dtype": settings.wireDType.description,
                "shared_memory_parameters": sharedParameters != nil, "shared_memory_bytes": sharedBytes,
                "shared_memory_gradients": gradientPool != nil, "shared_memory_gradient_bytes": sharedGradientBytes,
            ] as [String: Any],
            "timing_ms": timingReport(),
        ]
    }

    /// Mean milliseconds per step (per shard for worker compute) of each part of a step, as the
    /// coordinator saw it; `other` is waiting on workers and the wire beyond their compute.
    func timingReport() -> [String: Any] {
        let steps = Double(max(timing.steps, 1)), shards = Double(max(timing.shards, 1))
        func ms(_ nanos: UInt64, per count: Double) -> Double { (Double(nanos) / 1e6 / count * 1000).rounded() / 1000 }
        let step = ms(timing.stepNanos, per: steps)
        let copy = ms(timing.parameterCopyNanos, per: steps), decode = ms(timing.decodeNanos, per: steps)
        let aggregate = ms(timing.aggregateNanos, per: steps)
        let compute = ms(timing.workerComputeNanos, per: shards)
        return [
            "step_exchange": step, "parameter_copy": copy, "gradient_decode": decode, "aggregation": aggregate,
            "worker_compute_per_shard": compute,
            "waiting_on_workers_and_wire": max(0, ((step - copy - decode - aggregate) * 1000).rounded() / 1000),
            "steps": timing.steps,
        ]
    }

    public func shutdown() {
        let targets = Array(peers.keys)
        for worker in targets {
            if let peer = peers[worker] { try? transport.send(.leave(Leave(reason: "run finished")), runID: runID, to: peer) }
        }
        children?.stopAll()
        transport.close()
        if endpoint.hasPrefix("ipc://") { unlink(String(endpoint.dropFirst(6))) }
    }
}

extension DistributedExecutor: CoordinatorActionHost {}
