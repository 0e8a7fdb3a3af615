#if canImport(Glibc)
import Glibc
#endif
import Coordination
import Foundation
import Transport
import WireProtocol

/// The coordinator of `chorus stress`: the same ROUTER socket, join/welcome handshake,
/// coordination state machine, canonical-order aggregation and fault handling as training
/// (DistributedExecutor), with the model replaced by ``StressGradients`` so every aggregate
/// can be checked exactly by a ``StressAggregator``.
///
/// One thread owns the socket. Steps: spawn N `chorus stress-worker` processes → each says
/// hello (run id 0), gets a welcome carrying `{"stress": {"params", "seed"}}`, builds the
/// generator and joins with its fingerprint → for each step, `beginStep`, send the window's
/// work, add results in shard order as the state machine releases them, check the aggregate
/// when `stepComplete` comes → `finish`, workers leave.
public final class StressCoordinator {
    struct Held { let payload: PayloadBuffer; let worker: WorkerID }

    let settings: StressSettings
    let runID: UInt64
    let context: ZMQContext
    let transport: ZMQMessageTransport
    var machine: CoordinatorStateMachine
    let children = ChildProcesses()
    let aggregator: StressAggregator
    let welcomeJSON: [UInt8]
    let fingerprint: UInt64
    /// The bound endpoint.
    public let endpoint: String

    var peers: [WorkerID: PeerID] = [:]
    var workersByPeer: [PeerID: WorkerID] = [:]
    var pending: [PeerID: WorkerID] = [:]
    var pids: [WorkerID: Int32] = [:]
    var slots: [WorkerID: Int] = [:]
    var assignedIDs = Set<WorkerID>()
    var nextWorkerID: WorkerID
    var results: [ResultToken: Held] = [:]
    var nextToken: ResultToken = 1
    var started = false, stepDone = false, stopping = false
    var failure: Error?
    var lastTick: UInt64 = 0
    var parameterPayload = PayloadBuffer(byteCount: 16)
    var killed = Set<[Int]>()
    /// The shared-memory pool local workers write gradients into (nil: socket only).
    var gradientPool: SharedGradients?
    let coordinatorPID = UInt32(bitPattern: getpid())
    var report: StressReport
    /// Called about four times a second while steps run, with the report so far and the current step.
    public var progress: ((StressReport, Int) -> Void)?

    /// Binds the endpoint; throws a clear error when it is in use or cannot be bound.
    public init(settings: StressSettings, runID: UInt64 = Launch.newRunID()) throws {
        try settings.validate()
        // One malloc arena that keeps freed memory (no trimming): received frames reuse pages
        // instead of faulting in fresh ones for every gradient (measured: 0.47 → 0.83 GB/s at
        // 10M params); the reorder window keeps the peak within 8 × P × 4 bytes + 64 MiB.
        ProcessTuning.tuneMalloc()
        self.settings = settings
        self.runID = runID
        report = StressReport(settings: settings)
        let requested = settings.endpoint ?? "ipc:///tmp/chorus-stress-\(getpid())-\(runID % 1_000_000).sock"
        if requested.hasPrefix("ipc://"), StressCoordinator.ipcSocketIsLive(String(requested.dropFirst(6))) {
            throw RuntimeError.invalidSetting("--endpoint \(requested): in use (another process is listening on that socket); choose another --endpoint")
        }
        context = try ZMQContext(ioThreads: 1)
        do {
            transport = try ClusterSocket.router(context: context, endpoint: requested, heartbeatMs: settings.heartbeatMs,
                                                 timeoutMs: settings.timeoutMs)
        } catch {
            throw RuntimeError.invalidSetting("--endpoint \(requested): cannot bind (\(error)); is another process using it? choose another --endpoint")
        }
        endpoint = transport.endpoint
        var configuration = CoordinatorConfiguration(shardCount: settings.shardCount, expectedWorkers: settings.workers,
                                                     reorderWindow: settings.window)
        configuration.heartbeatInterval = .milliseconds(settings.heartbeatMs)
        configuration.workerTimeout = .milliseconds(settings.timeoutMs)
        configuration.stragglerMinimum = .milliseconds(settings.stragglerMinimumMs)
        configuration.startTimeout = .seconds(120)
        machine = try CoordinatorStateMachine(configuration: configuration, now: monotonicNanos())
        nextWorkerID = WorkerID(settings.workers)
        let gradients = StressGradients(seed: settings.seed, count: settings.parameters)
        aggregator = StressAggregator(gradients: gradients, dtype: settings.wireDType)
        fingerprint = gradients.fingerprint
        welcomeJSON = Array(jsonString(["stress": ["params": settings.parameters, "seed": settings.seed]]).utf8)
        if settings.sharedMemory {
            SharedGradients.removeOrphanedSegments()
            do {
                gradientPool = try SharedGradients.create(name: "/chorus-\(getpid())-\(runID % 1_000_000)-g",
                                                          gradientBytes: settings.payloadBytes, slots: settings.sharedSlots)
            } catch {
                logLine("chorus stress: gradients go over the socket: \(error)")
            }
            report.sharedPool = gradientPool != nil
        }
    }

    /// Whether a unix socket at `path` accepts connections (someone is listening).
    static func ipcSocketIsLive(_ path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (index, byte) in bytes.enumerated() { raw[index] = byte } }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }

    /// Starts the workers, runs every step and returns the report (also when the run failed).
    public func run() -> StressReport {
        let cpuBefore = StressMeasurements.cpuSeconds()
        defer { shutdown() }
        do {
            for slot in 0..<settings.workers { try spawn(slot: slot, requestID: slot) }
            while !started {
                try pump(timeoutMs: 50)
                if let failure { throw failure }
                if interruptSignal != 0 { throw RuntimeError.cluster("interrupted while waiting for workers") }
            }
            let runStart = monotonicNanos()
            var lastProgress: UInt64 = 0
            for step in 1...settings.steps {
                let stepStart = monotonicNanos()
                aggregator.beginStep()
                stepDone = false
                parameterPayload = PayloadBuffer(floats: [Float(bitPattern: UInt32(truncatingIfNeeded: settings.seed)), Float(bitPattern: UInt32(truncatingIfNeeded: step)), 0, 0])
                do { try perform(machine.beginStep(step, parameterVersion: UInt64(step), now: stepStart)) } catch {
                    throw RuntimeError.cluster("coordinator: \(error)")
                }
                while !stepDone {
                    if let failure { throw failure }
                    if interruptSignal != 0 { throw RuntimeError.cluster("interrupted by signal \(interruptSignal) at step \(step)") }
                    try pump(timeoutMs: 10)
                    let now = monotonicNanos()
                    if let progress, now - lastProgress > 250_000_000 {
                        lastProgress = now
                        report.seconds = Double(now - runStart) / 1e9
                        progress(report, step)
                    }
                }
                if let failure { throw failure }
                let finished = monotonicNanos()
                report.latencies.record(nanoseconds: finished - stepStart)
                let (wrong, index) = aggregator.check(shards: settings.shardCount)
                report.stepsCompleted += 1
                if wrong > 0 {
                    report.wrongAggregates += 1
                    report.wrongElements += wrong
                    if report.firstWrong == nil, let index { report.firstWrong = (step, index) }
                    if report.wrongAggregates <= 5 { logLine("chorus stress: step \(step): aggregate WRONG: \(wrong) element(s) of its contributions differed from the expected ones (P = \(settings.parameters))") }
                }
                report.aggregationSeconds += Double(monotonicNanos() - finished) / 1e9
                report.seconds = Double(monotonicNanos() - runStart) / 1e9
            }
        } catch {
            report.failure = "\(error)"
        }
        let cpuAfter = StressMeasurements.cpuSeconds()
        report.cpu = (cpuAfter.user - cpuBefore.user, cpuAfter.system - cpuBefore.system)
        report.peakResidentBytes = StressMeasurements.peakResidentBytes()
        collectStatistics()
        return report
    }

    func collectStatistics() {
        let s = machine.statistics
        report.coordination = [
            "stale": s.stale, "duplicates": s.duplicates, "unknown_worker": s.unknownWorker, "not_assigned": s.notAssigned,
            "reassignments": s.reassignments, "straggler_copies": s.stragglerDuplicates, "evictions": s.evictions,
            "leaves": s.leaves, "corrupt": s.corrupt,
        ]
    }

    func spawn(slot: Int, requestID: Int) throws {
        var arguments = ["stress-worker", "--connect", endpoint, "--parent-pid", String(getpid()), "--worker-id=\(requestID)",
                         "--heartbeat-ms", String(settings.heartbeatMs), "--timeout-ms", String(settings.timeoutMs),
                         "--frame-bytes", String(settings.frameBytes)]
        if let gradientPool { arguments += ["--shared-gradients", gradientPool.name] }
        for fault in settings.faults where fault.worker == slot && fault.kind != .kill { arguments += ["--fault", fault.description] }
        try children.spawn(arguments: arguments, index: slot)
    }

    // MARK: Receiving

    func pump(timeoutMs: Int) throws {
        var waited = false
        while !stepDone {
            let received: (peer: PeerID?, frames: [Frame])?
            do { received = try transport.receive(timeoutMs: waited ? 0 : timeoutMs) } catch {
                throw RuntimeError.cluster("coordinator socket: \(error)")
            }
            waited = true
            guard let (peer, frames) = received, let peer else { break }
            report.bytesReceived += frames.reduce(0) { $0 + $1.count }
            try handle(frames, from: peer)
        }
        let now = monotonicNanos()
        if now - lastTick > 20_000_000 {
            lastTick = now
            try watchChildren()
            try perform(machine.handle(.tick, now: now))
        }
    }

    func handle(_ frames: [Frame], from peer: PeerID) throws {
        let now = monotonicNanos()
        let decoded: (runID: UInt64, message: Message)
        do { decoded = try WireCodec.decode(frames: frames) } catch {
            if case let .payloadChecksumMismatch(kind, step, shard, _, _) = error, kind == .gradient, let worker = workersByPeer[peer], let shard {
                report.corruptDetected += 1
                report.gradientBytesReceived += frames.dropFirst().reduce(0) { $0 + $1.count }
                if report.corruptDetected <= 3 { logLine("chorus stress: worker \(worker): corrupted payload for step \(step) shard \(shard) caught by its checksum; recomputing") }
                try perform(machine.handle(.corruptResult(worker, step: Int(step), shard: Int(shard)), now: now))
            } else {
                drop("malformed message from \(peer): \(error)")
            }
            return
        }
        let message = decoded.message
        if case .join(let join) = message { try handleJoin(join, runID: decoded.runID, peer: peer); return }
        guard decoded.runID == runID, let worker = workersByPeer[peer] else { drop("\(message.kind) from an unknown peer or run"); return }
        switch message {
        case .gradient(var gradient):
            if gradient.sharedSlot != Gradient.inline {
                // Same host: take the slot over and check it in place; then as if it had come over the socket.
                guard let gradientPool, gradient.dtype == settings.wireDType,
                      let copy = readSlot(Int(gradient.sharedSlot), from: gradientPool, worker: worker) else {
                    if let pid = pids[worker] { gradientPool?.release(slot: Int(gradient.sharedSlot), owner: UInt32(bitPattern: pid)) }
                    drop("shared-memory gradient (slot \(gradient.sharedSlot), \(gradient.dtype)) from worker \(worker) that names no slot of this run's pool")
                    try perform(machine.handle(.corruptResult(worker, step: Int(gradient.step), shard: Int(gradient.shard)), now: now))
                    return
                }
                report.gradientBytesReceived += copy.payload.byteCount
                report.sharedGradientBytes += copy.payload.byteCount
                guard copy.crc == gradient.sharedCRC else {
                    report.corruptDetected += 1
                    if report.corruptDetected <= 3 { logLine("chorus stress: worker \(worker): corrupted shared-memory gradient for step \(gradient.step) shard \(gradient.shard) caught by its checksum; recomputing") }
                    try perform(machine.handle(.corruptResult(worker, step: Int(gradient.step), shard: Int(gradient.shard)), now: now))
                    return
                }
                gradient.payload = copy.payload
            } else {
                report.gradientBytesReceived += gradient.payload.byteCount
            }
            guard gradient.dtype == settings.wireDType, gradient.payload.elementCount(as: gradient.dtype) == settings.parameters else {
                drop("gradient from worker \(worker) with \(gradient.payload.byteCount) bytes of \(gradient.dtype), expected \(settings.payloadBytes) of \(settings.wireDType)")
                try perform(machine.handle(.corruptResult(worker, step: Int(gradient.step), shard: Int(gradient.shard)), now: now))
                return
            }
            let token = nextToken
            nextToken += 1
            results[token] = Held(payload: gradient.payload, worker: worker)
            try perform(machine.handle(.shardResult(worker, step: Int(gradient.step), shard: Int(gradient.shard), token: token), now: now))
        case .heartbeat: try perform(machine.handle(.heartbeat(worker), now: now))
        case .leave:
            forget(worker)
            try perform(machine.handle(.workerLeft(worker), now: now))
        default: drop("unexpected \(message.kind) from worker \(worker)")
        }
    }

    /// Takes slot `index` over from `worker` and returns it as a payload read in place, with the
    /// CRC32C of its bytes; the slot is freed when the payload is (after it was added, or when
    /// it is discarded). Nil when the worker does not hold that slot.
    ///
    /// Zero-copy, unlike training (whose gradients are small and decoded into tensors anyway):
    /// once the coordinator owns the slot no worker claims it, and a worker that dies does not
    /// free it, so the bytes cannot change between the checksum and the sum; and should they,
    /// the exact check of every contribution would still report it.
    func readSlot(_ index: Int, from pool: SharedGradients, worker: WorkerID) -> (payload: PayloadBuffer, crc: UInt32)? {
        guard let pid = pids[worker], let bytes = pool.bytes(slot: index, byteCount: settings.payloadBytes),
              pool.transfer(slot: index, from: UInt32(bitPattern: pid), to: coordinatorPID) else { return nil }
        let owner = coordinatorPID
        let payload = PayloadBuffer(adopting: UnsafeMutableRawPointer(mutating: bytes.baseAddress!), byteCount: bytes.count) { _ in
            pool.release(slot: index, owner: owner)
        }
        return (payload, WireChecksum.crc32c(bytes))
    }

    func drop(_ reason: String) {
        report.droppedMessages += 1
        if report.droppedMessages <= 3 { logLine("chorus stress: dropped \(reason)") }
    }

    func handleJoin(_ join: Join, runID messageRunID: UInt64, peer: PeerID) throws {
        func reject(_ text: String) {
            logLine("chorus stress: refused worker pid \(join.pid): \(text)")
            try? send(.reject(Reject(code: .other, message: text)), to: peer)
            pending[peer] = nil
        }
        guard join.protocolVersion == WireProtocol.protocolVersion, join.buildVersion == BuildInfo.version else {
            return reject("worker speaks protocol \(join.protocolVersion) build \(join.buildVersion); coordinator \(WireProtocol.protocolVersion) \(BuildInfo.version)")
        }
        if messageRunID == 0 {
            var id = nextWorkerID
            let requested = WorkerID(max(join.requestedWorkerID, 0))
            if join.requestedWorkerID >= 0, !assignedIDs.contains(requested) { id = requested } else {
                while assignedIDs.contains(id) { id += 1 }
                nextWorkerID = id + 1
            }
            assignedIDs.insert(id)
            pending[peer] = id
            try? send(.welcome(Welcome(workerID: id, configJSON: welcomeJSON, configHash: fingerprint, heartbeatIntervalMs: UInt32(settings.heartbeatMs),
                                       timeoutMs: UInt32(settings.timeoutMs), parameterVersion: 0)), to: peer)
            return
        }
        guard messageRunID == runID, let id = pending.removeValue(forKey: peer) else { return reject("join without a welcome, or for another run") }
        guard join.dataFingerprint == fingerprint else {
            return reject(String(format: "worker's gradient fingerprint %016llx differs from the coordinator's %016llx", join.dataFingerprint, fingerprint))
        }
        peers[id] = peer
        workersByPeer[peer] = id
        pids[id] = join.pid
        slots[id] = children.children.first(where: { $0.pid == join.pid })?.index ?? -1
        try perform(machine.handle(.workerJoined(id), now: monotonicNanos()))
    }

    func send(_ message: Message, to peer: PeerID) throws {
        let frames = WireCodec.encode(message, runID: runID)
        try transport.send(frames, to: peer)
        report.bytesSent += frames.reduce(0) { $0 + $1.count }
    }

    func forget(_ worker: WorkerID) {
        if let peer = peers.removeValue(forKey: worker) { workersByPeer[peer] = nil }
        pids[worker] = nil
    }

    /// Notices worker processes that died, tells the state machine, starts a replacement in the same slot.
    func watchChildren() throws {
        for (child, status) in children.reapExited() { try childExited(child, status: status) }
    }

    /// A worker process is gone: its shards go to the others and its slot gets a new process.
    func childExited(_ child: ChildProcesses.Child, status: String) throws {
        // Reaped, so nothing can still write the slots it held.
        gradientPool?.releaseAll(owner: UInt32(bitPattern: child.pid))
        let worker = pids.first(where: { $0.value == child.pid })?.key
        if let worker {
            forget(worker)
            try perform(machine.handle(.workerLeft(worker), now: monotonicNanos()))
        }
        guard !stopping, interruptSignal == 0 else { return }
        if report.restarts >= 16 + 4 * settings.steps {
            throw RuntimeError.cluster("worker processes keep dying (last: pid \(child.pid) \(status)); giving up after \(report.restarts) restarts")
        }
        report.restarts += 1
        try spawn(slot: child.index, requestID: -1)
    }
}

extension StressCoordinator {
    /// `chorus stress`: binds, runs the workers through every step, then (with `compareRaw`)
    /// measures raw libzmq PUSH/PULL with the same message size on the same kind of endpoint,
    /// and probes tc netem. Throws only for impossible settings or an endpoint in use.
    public static func run(settings: StressSettings, progress: ((StressReport, Int) -> Void)? = nil) throws -> StressReport {
        var report: StressReport
        do {
            let coordinator = try StressCoordinator(settings: settings)
            coordinator.progress = progress
            report = coordinator.run()
        }
        if settings.compareRaw {
            let tcp = (settings.endpoint ?? "ipc://").hasPrefix("tcp://")
            let endpoint = tcp ? "tcp://127.0.0.1:*" : "ipc:///tmp/chorus-stress-raw-\(getpid()).sock"
            let bytes = settings.payloadBytes
            let count = max(8, min(2_000, (2 << 30) / max(bytes, 1)))
            report.rawGBps = try? measurePushPull(endpoint: endpoint, messageBytes: bytes, count: count)
            if !tcp { unlink(String(endpoint.dropFirst(6))) }
        }
        report.netem = StressMeasurements.netemStatus()
        return report
    }
}
