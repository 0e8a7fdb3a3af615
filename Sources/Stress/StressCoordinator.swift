#if canImport(Glibc)
import Glibc
#endif
import Cluster
import Coordination
import Foundation
import Transport
import WireProtocol

/// The coordinator of `chorus stress`: a ``CoordinatorHost`` (the same socket, handshake,
/// state machine, canonical-order aggregation and fault handling as training) with the model
/// replaced by ``StressGradients``, so every aggregate can be checked exactly by a
/// ``StressAggregator``.
///
/// Steps: spawn N `chorus stress-worker` processes → each says hello (run id 0), gets a welcome
/// carrying `{"stress": {"params", "seed"}}`, builds the generator and joins with its
/// fingerprint → for each step, the host runs the window's work and hands results over in
/// shard order (``aggregate(_:_:)``), and the aggregate is checked when the step completes →
/// workers leave.
public final class StressCoordinator: CoordinatorWorkload {
    package struct Held { let payload: PayloadBuffer; let worker: WorkerID; let slot: Int }

    let settings: StressSettings
    var host: CoordinatorHost<StressCoordinator>!
    let aggregator: StressAggregator
    let description: StressDescription
    let fingerprint: UInt64
    var parameterPayload = PayloadBuffer(byteCount: 16)
    /// The shared-memory pool local workers write gradients into (nil: socket only).
    let gradientPool: SharedGradients?
    let coordinatorPID = UInt32(bitPattern: getpid())
    var report: StressReport
    /// Called about four times a second while steps run, with the report so far and the current step.
    public var progress: ((StressReport, Int) -> Void)?
    /// The bound endpoint.
    public var endpoint: String { host.endpoint }

    /// Binds the endpoint; throws a clear error when it is in use or cannot be bound.
    public convenience init(settings: StressSettings, runID: UInt64 = RunID.fresh()) throws {
        try settings.validate()
        let requested = settings.endpoint ?? "ipc:///tmp/chorus-stress-\(getpid())-\(runID % 1_000_000).sock"
        let (context, transport) = try ClusterSocket.bindCoordinator(
            endpoint: requested, heartbeatMs: settings.heartbeatMs, timeoutMs: settings.timeoutMs,
            guardLimits: ClusterSocket.GuardLimits(resultBytes: settings.parameters * 4, shards: settings.shardCount))
        try self.init(settings: settings, runID: runID, transport: transport, owner: context, children: ChildProcesses())
    }

    /// A stress coordinator over any transport (in-memory in tests, with no child processes and a manual clock).
    package init(settings: StressSettings, runID: UInt64, transport: MessageTransport, owner: AnyObject? = nil,
                 children: ChildProcesses?, clock: @escaping () -> UInt64 = monotonicNanos) throws {
        // One malloc arena that keeps freed memory (no trimming): received frames reuse pages
        // instead of faulting in fresh ones for every gradient (measured: 0.47 → 0.83 GB/s at
        // 10M params); the reorder window keeps the peak within 8 × P × 4 bytes + 64 MiB.
        ProcessTuning.tuneMalloc()
        self.settings = settings
        report = StressReport(settings: settings)
        let gradients = StressGradients(seed: settings.seed, count: settings.parameters)
        aggregator = StressAggregator(gradients: gradients, dtype: settings.wireDType)
        fingerprint = gradients.fingerprint
        description = StressDescription(params: settings.parameters, seed: settings.seed, shards: settings.shardCount)
        var pool: SharedGradients?
        if settings.usesSharedPool && children != nil {
            SharedGradients.removeOrphanedSegments()
            do {
                pool = try SharedGradients.create(name: "/chorus-\(getpid())-\(runID % 1_000_000)-g",
                                                  gradientBytes: settings.payloadBytes, slots: settings.sharedSlots)
            } catch {
                logLine("chorus stress: gradients go over the socket: \(error)")
            }
            report.sharedPool = pool != nil
        }
        gradientPool = pool
        var configuration = CoordinatorConfiguration(shardCount: settings.shardCount, expectedWorkers: settings.workers,
                                                     reorderWindow: settings.window)
        configuration.heartbeatInterval = .milliseconds(settings.heartbeatMs)
        configuration.workerTimeout = .milliseconds(settings.timeoutMs)
        configuration.stragglerMinimum = .milliseconds(settings.stragglerMinimumMs)
        configuration.startTimeout = .seconds(120)
        var options = HostOptions(runID: runID, heartbeatMs: settings.heartbeatMs, timeoutMs: settings.timeoutMs)
        options.faults = settings.faults
        options.logsJoins = false
        host = try CoordinatorHost(workload: self, transport: transport, owner: owner, configuration: configuration, options: options,
                                   children: children, gradientPool: pool, clock: clock)
    }

    /// Starts the workers, runs every step and returns the report (also when the run failed).
    public func run() -> StressReport {
        let cpuBefore = StressMeasurements.cpuSeconds()
        do {
            try host.spawnChildren(settings.workers)
            try host.waitForStart()
            let runStart = monotonicNanos()
            var lastProgress: UInt64 = 0
            for step in 1...settings.steps {
                try runStep(step) {
                    let now = monotonicNanos()
                    guard let progress = self.progress, now - lastProgress > 250_000_000 else { return }
                    lastProgress = now
                    self.report.seconds = Double(now - runStart) / 1e9
                    self.collectStatistics()
                    progress(self.report, step)
                }
                report.seconds = Double(monotonicNanos() - runStart) / 1e9
            }
        } catch {
            report.failure = "\(error)"
        }
        host.shutdown()
        let cpuAfter = StressMeasurements.cpuSeconds()
        report.cpu = (cpuAfter.user - cpuBefore.user, cpuAfter.system - cpuBefore.system)
        report.peakResidentBytes = StressMeasurements.peakResidentBytes()
        collectStatistics()
        return report
    }

    /// Runs one step and checks its aggregate exactly.
    package func runStep(_ step: Int, whileWaiting: (() -> Void)? = nil) throws {
        let stepStart = monotonicNanos()
        prepare(step: step)
        try host.runStep(step, parameterVersion: UInt64(step), whileWaiting: whileWaiting)
        finishStep(step, started: stepStart)
    }

    /// Starts `step` without waiting for it (tests drive the host and the workers themselves).
    package func beginStep(_ step: Int) throws {
        prepare(step: step)
        try host.beginStep(step, parameterVersion: UInt64(step))
    }

    func prepare(step: Int) {
        aggregator.beginStep(shards: settings.shardCount)
        parameterPayload = PayloadBuffer(floats: [Float(bitPattern: UInt32(truncatingIfNeeded: settings.seed)), Float(bitPattern: UInt32(truncatingIfNeeded: step)), 0, 0])
    }

    /// Records a completed step's latency (from `started`) and checks its aggregate.
    package func finishStep(_ step: Int, started stepStart: UInt64 = monotonicNanos()) {
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
    }

    /// Copies the host's counters into the report.
    func collectStatistics() {
        let s = host.machine.statistics
        report.coordination = [
            "stale": s.stale, "duplicates": s.duplicates, "unknown_worker": s.unknownWorker, "not_assigned": s.notAssigned,
            "reassignments": s.reassignments, "straggler_copies": s.stragglerDuplicates, "evictions": s.evictions,
            "leaves": s.leaves, "corrupt": s.corrupt,
        ]
        report.bytesSent = host.wireBytesSent
        report.bytesReceived = host.wireBytesReceived
        report.corruptDetected = host.corruptPayloads
        report.droppedMessages = host.dropped
        report.kills = host.kills
        report.restarts = host.restarts
    }

    // MARK: CoordinatorWorkload

    package let logName = "chorus stress"
    package let finishedReason = "stress run finished"
    package let heartbeatSequence: UInt64 = 0
    package var welcomePayload: WelcomePayload { WelcomePayload(configJSON: description.json, configHash: fingerprint, parameterVersion: 0) }

    package func refusal(ofReady join: Join) -> (code: RejectCode, message: String)? {
        guard join.dataFingerprint != fingerprint else { return nil }
        return (.dataMismatch, String(format: "worker's gradient fingerprint %016llx differs from the coordinator's %016llx", join.dataFingerprint, fingerprint))
    }

    package var childCommand: String { settings.localWorkers > 0 ? "stress-agent" : "stress-worker" }

    package var childArguments: [String] {
        if settings.localWorkers > 0 {
            return ["--frame-bytes", String(settings.frameBytes), "--local-workers", String(settings.localWorkers)]
                + settings.localFaults.flatMap { ["--local-fault", $0.description] }
        }
        return ["--frame-bytes", String(settings.frameBytes)] + (gradientPool.map { ["--shared-gradients", $0.name] } ?? [])
    }

    /// Host agents answer with node sums.
    package var acceptsNodeSums: Bool { settings.localWorkers > 0 }

    package func work(for assignment: WorkAssignment, member: Member) -> Work {
        Work(step: UInt64(assignment.step), epoch: 0, stepInEpoch: UInt32(truncatingIfNeeded: assignment.step),
             parameterVersion: assignment.parameterVersion, shards: assignment.shards.map(UInt32.init),
             shardCount: UInt32(settings.shardCount), flags: settings.localWorkers > 0 && assignment.sumNodes ? [.sumNodes] : [],
             gradientDType: settings.wireDType,
             parameters: assignment.includeParameters ? parameterPayload : nil)
    }

    package func delivered(_ work: Work, to member: Member) {}

    package func accept(_ gradient: Gradient, from member: Member) -> GradientIntake<Held> {
        var payload = gradient.payload
        if gradient.sharedSlot != Gradient.inline {
            // Same host: take the slot over and check it in place; then as if it had come over the socket.
            guard let gradientPool, gradient.dtype == settings.wireDType,
                  let copy = readSlot(Int(gradient.sharedSlot), from: gradientPool, member: member) else {
                gradientPool?.release(slot: Int(gradient.sharedSlot), owner: UInt32(bitPattern: member.pid))
                return .invalid("shared-memory gradient (slot \(gradient.sharedSlot), \(gradient.dtype)) from worker \(member.id) that names no slot of this run's pool")
            }
            report.gradientBytesReceived += copy.payload.byteCount
            report.sharedGradientBytes += copy.payload.byteCount
            guard copy.crc == gradient.sharedCRC else {
                return .corrupt("corrupted shared-memory gradient for step \(gradient.step) shard \(gradient.shard) caught by its checksum")
            }
            payload = copy.payload
        } else {
            report.gradientBytesReceived += payload.byteCount
        }
        if settings.localWorkers > 0, gradient.statistics.count == 12 {
            // A host agent's counters so far (little-endian UInt32: kills, restarts, corrupt).
            let c = gradient.statistics.withUnsafeBytes { raw in (0..<3).map { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) } }
            report.agentCounters[member.id] = (c[0], c[1], c[2])
        }
        guard gradient.dtype == settings.wireDType, payload.elementCount(as: gradient.dtype) == settings.parameters else {
            return .invalid("gradient from worker \(member.id) with \(payload.byteCount) bytes of \(gradient.dtype), expected \(settings.payloadBytes) of \(settings.wireDType)")
        }
        return .accepted(Held(payload: payload, worker: member.id, slot: member.slot ?? -1))
    }

    package func corruptPayloadArrived(byteCount: Int) { report.gradientBytesReceived += byteCount }

    /// Takes slot `index` over from `member` and returns it as a payload read in place, with the
    /// CRC32C of its bytes; the slot is freed when the payload is (after it was added, or when
    /// it is discarded). Nil when the worker does not hold that slot.
    ///
    /// Zero-copy, unlike training (whose gradients are small and decoded into tensors anyway):
    /// once the coordinator owns the slot no worker claims it, and a worker that dies does not
    /// free it, so the bytes cannot change between the checksum and the sum; and should they,
    /// the exact check of every contribution would still report it.
    func readSlot(_ index: Int, from pool: SharedGradients, member: Member) -> (payload: PayloadBuffer, crc: UInt32)? {
        guard let bytes = pool.bytes(slot: index, byteCount: settings.payloadBytes),
              pool.transfer(slot: index, from: UInt32(bitPattern: member.pid), to: coordinatorPID) else { return nil }
        let owner = coordinatorPID
        let payload = PayloadBuffer(adopting: UnsafeMutableRawPointer(mutating: bytes.baseAddress!), byteCount: bytes.count) { _ in
            pool.release(slot: index, owner: owner)
        }
        return (payload, WireChecksum.crc32c(bytes))
    }

    /// Adds one released result to the sums (the aggregator checks it on the way).
    package func aggregate(_ held: Held, _ aggregation: Aggregation) {
        let started = monotonicNanos()
        if aggregation.shard != aggregator.added { report.outOfOrderReleases += 1 }
        let wrong = aggregator.add(held.payload, step: aggregation.step, shards: aggregation.shards)
        report.aggregationSeconds += Double(monotonicNanos() - started) / 1e9
        report.contributionsAggregated += aggregation.span
        report.nodeSums += aggregation.span > 1 ? 1 : 0
        report.aggregatedBytes += held.payload.byteCount
        if wrong > 0 {
            report.wrongContributions += 1
            report.wrongContributionsBySlot[held.slot, default: 0] += 1
            if report.wrongContributions <= 5 {
                let what = aggregation.span > 1 ? "shards \(aggregation.shards)" : "shard \(aggregation.shard)"
                logLine("chorus stress: step \(aggregation.step) \(what) from \(settings.localWorkers > 0 ? "agent" : "worker") \(held.slot): \(wrong) wrong values that passed the checksum")
            }
        }
    }

    /// Stress plans no audits (its configuration leaves `auditEvery` unset).
    package func auditDiffers(_ a: Held, _ b: Held, _ pair: AuditPair) -> Bool { false }
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
