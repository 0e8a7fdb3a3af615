#if canImport(Glibc)
import Glibc
#endif
import Cluster
import Config
import Coordination
import Foundation
import CollapseMonitor
import NeuralNet
import Optimizers
import Signals
import TensorCore
import Transport
import WireProtocol

/// A result as the coordinator received it, handed to the monitor when it is aggregated: one
/// shard's, or a node sum's (its shards' statistics, one contribution for all of them).
public struct ReceivedShard {
    /// The worker that computed it.
    public let worker: WorkerID
    public let shards: Range<Int>
    /// The monitor's statistics blob the worker sent with each shard, in shard order.
    public let signals: [[UInt8]]
    /// The contribution as received (gradient, then batch-norm statistics); nil with chunk owners
    /// (its values went to the chunks' owners, `receivedNorm` is the sender's measurement).
    public let contribution: UnsafePointer<Float>?
    /// Examples in the shards.
    public let count: Int
    /// `GradientClipping.globalNorm` of the whole contribution as received, when the transit
    /// check already measured it (nil otherwise).
    public var receivedNorm: Double? = nil
}

/// The coordinator's side of distributed training: the training workload of a
/// ``CoordinatorHost`` (which owns the socket, the handshake, membership and the worker
/// processes). It sends each step's parameters (shared memory for local workers, the socket for
/// the others), reads gradients into tensors, adds them to the session in the order the state
/// machine releases them (shard order), and settles audits by computing the shard itself.
public final class DistributedExecutor: StepExecutor, CoordinatorWorkload {
    package struct Result {
        let contribution: TensorStorage; let outcome: ShardOutcome; let signals: [[UInt8]]
        /// The contribution's global norm as received, when the transit check measured it.
        var receivedNorm: Double? = nil
    }

    let session: TrainingSession
    let settings: ClusterSettings
    var host: CoordinatorHost<DistributedExecutor>!
    let dataFingerprint: UInt64
    let configJSON: [UInt8]
    let configHash: UInt64
    var parameterPayload: PayloadBuffer?
    var parameterPayloadVersion: UInt64 = .max
    /// The same-host fast path: parameters for local workers (nil with --no-shm or no children).
    let sharedParameters: SharedParameters?
    /// The pool local workers write gradients into (nil with --no-shm or no children, or when it did not fit).
    let gradientPool: SharedGradients?
    var sharedVersion: UInt64 = .max

    // Counters for report.json (the host counts the rest).
    var bytesSent = 0, bytesReceived = 0, sharedBytes = 0, sharedGradientBytes = 0
    /// Where the coordinator's time goes, in nanoseconds summed over the run.
    var timing = CoordinatorTiming()
    /// Computes audited shards at the coordinator when two workers disagree (made on first use).
    var refereeComputer: ShardComputer?

    // Quarantine and rewind (docs/coordination.md): how far back each worker is vouched for by
    // clean audits, the states kept for going back, and what happened.
    var ledger = AuditLedger()
    var snapshots: [Int: TrainingSession.State] = [:]
    /// Set when a refereed audit proved a worker wrong during the step: the trainer goes back.
    var pendingRewind: Rewind?
    var timeline: Timeline?
    var timelineStepStart: UInt64 = 0
    /// When each worker's last result of the step arrived (its wait starts there).
    var lastArrival: [WorkerID: UInt64] = [:]
    struct WorkerStats { var shards = 0; var computeNanos: UInt64 = 0; var waitNanos: UInt64 = 0 }
    /// Per worker over the run (report.json's `cluster.workers`).
    var workerStats: [WorkerID: WorkerStats] = [:]
    package private(set) var quarantines: [Quarantine] = []
    /// Global steps computed again after rewinds, in all.
    package private(set) var recomputedSteps = 0
    /// The state machine numbers its steps upward; after a rewind global step g runs as g + offset.
    var machineOffset = 0
    /// Rewinds so far: part of every parameter version, so no version names two parameter sets.
    var rewinds: UInt64 = 0
    /// `--chunk-owners` (nil: the coordinator sums the contributions itself).
    var chunkOwners: ChunkOwnerState?

    /// A worker a refereed audit proved wrong.
    package struct Quarantine {
        let worker: WorkerID, step: Int, shard: Int
        /// The step the run went back to.
        let rewoundTo: Int
    }

    /// Called for every aggregated shard.
    public var shardSignals: ((ReceivedShard) -> Void)?
    /// Called on an audit mismatch with the pair and the worker the coordinator's own
    /// computation of the shard disagrees with, when it agrees with the other.
    public var auditMismatch: ((AuditPair, WorkerID?) -> Void)?
    /// Called with (worker, step, shards, reported norm, received norm) for a contribution whose
    /// values changed after its sender computed them; the contribution is recomputed, never summed.
    public var transitMismatch: ((WorkerID, Int, Range<Int>, Double, Double) -> Void)?
    /// Called with (worker, statistics) for every intact gradient of the current probe step,
    /// aggregated or not (a straggler copy or an audit copy still carries its worker's probe).
    public var gradientStatistics: ((WorkerID, [UInt8]) -> Void)?

    public var workerCount: Int { host.liveWorkers.count }

    package init(session: TrainingSession, settings: ClusterSettings, runID: UInt64, transport: MessageTransport, owner: AnyObject?,
                 expect: Int, children: ChildProcesses?, faults: [FaultSpec], clock: @escaping () -> UInt64 = monotonicNanos) throws {
        self.session = session
        self.settings = settings
        var configuration = CoordinatorConfiguration(shardCount: session.shards, expectedWorkers: max(expect, 1))
        configuration.heartbeatInterval = .milliseconds(settings.heartbeatMs)
        configuration.workerTimeout = .milliseconds(settings.timeoutMs)
        configuration.noWorkerTimeout = .milliseconds(settings.noWorkerTimeoutMs)
        configuration.startTimeout = .milliseconds(settings.startTimeoutMs)
        // With chunk owners no contribution reaches the coordinator to compare: no audits.
        configuration.auditEvery = settings.chunkOwners ? nil : settings.auditEvery
        if let straggler = settings.stragglerMs { configuration.stragglerDeadline = .milliseconds(straggler) }
        var parameters: SharedParameters?, pool: SharedGradients?
        if children != nil && settings.sharedMemory {
            SharedGradients.removeOrphanedSegments()
            parameters = try? SharedParameters.create(name: "/chorus-\(getpid())-\(runID % 1_000_000)",
                                                      count: session.model.parameters.count)
            do {
                pool = try SharedGradients.create(
                    name: "/chorus-\(getpid())-\(runID % 1_000_000)-g", gradientBytes: session.model.contributionCount * 4,
                    slots: SharedGradients.slots(shards: session.shards, workers: max(expect, 1)))
            } catch {
                logLine("chorus coordinator: local workers send gradients over the socket: \(error)")
            }
        }
        sharedParameters = parameters
        gradientPool = pool
        dataFingerprint = session.data.fingerprint()
        configJSON = Array(session.config.jsonData())
        configHash = session.config.canonicalHash()
        var options = HostOptions(runID: runID, heartbeatMs: settings.heartbeatMs, timeoutMs: settings.timeoutMs)
        options.respawn = settings.respawn
        options.faults = faults
        host = try CoordinatorHost(workload: self, transport: transport, owner: owner, configuration: configuration, options: options,
                                   children: children, gradientPool: pool, clock: clock)
        if settings.chunkOwners { chunkOwners = ChunkOwnerState(session: session) }
    }

    /// Binds `endpoint` over ZeroMQ.
    convenience init(session: TrainingSession, settings: ClusterSettings, runID: UInt64, endpoint: String, expect: Int,
                     children: ChildProcesses?, faults: [FaultSpec]) throws {
        let limits = ClusterSocket.GuardLimits(resultBytes: session.model.contributionCount * 4, shards: session.shards)
        let (context, transport) = try ClusterSocket.bindCoordinator(endpoint: endpoint, heartbeatMs: settings.heartbeatMs,
                                                                     timeoutMs: settings.timeoutMs, curve: settings.curve,
                                                                     curveBulk: settings.curveBulk, guardLimits: limits)
        try self.init(session: session, settings: settings, runID: runID, transport: transport, owner: context,
                      expect: expect, children: children, faults: faults)
    }

    /// The endpoint workers connect to.
    public var endpoint: String { host.endpoint }

    /// `chorus train --workers N`: binds a local endpoint, starts N worker processes and
    /// waits until they have joined.
    public static func launchLocal(session: TrainingSession, workers: Int, faults: [FaultSpec], runID: UInt64,
                                   settings: ClusterSettings) throws -> DistributedExecutor {
        let endpoint = settings.endpoint ?? (settings.localTCP ? "tcp://127.0.0.1:*" : "ipc:///tmp/chorus-\(getpid())-\(runID % 1_000_000).sock")
        let executor = try DistributedExecutor(session: session, settings: settings, runID: runID, endpoint: endpoint,
                                               expect: workers, children: ChildProcesses(), faults: faults)
        try executor.host.spawnChildren(workers)
        try executor.host.waitForStart()
        return executor
    }

    /// `chorus coordinator --bind … --expect N`.
    public static func bind(session: TrainingSession, endpoint: String, expect: Int, runID: UInt64,
                            settings: ClusterSettings) throws -> DistributedExecutor {
        let executor = try DistributedExecutor(session: session, settings: settings, runID: runID, endpoint: endpoint,
                                               expect: expect, children: nil, faults: [])
        logLine("chorus coordinator: listening on \(executor.endpoint), waiting for \(expect) worker(s)")
        try executor.host.waitForStart()
        return executor
    }

    // MARK: Steps

    public func execute(session: TrainingSession) throws {
        let stepStarted = monotonicNanos()
        timelineStepStart = stepStarted
        lastArrival.removeAll(keepingCapacity: true)
        let before = (host.machine.statistics.evictions, host.machine.statistics.reassignments, host.restarts)
        defer {
            timing.steps += 1
            let end = monotonicNanos()
            timing.stepNanos += end - stepStarted
            for (worker, arrived) in lastArrival { workerStats[worker, default: WorkerStats()].waitNanos += end &- arrived }
            if let timeline { recordStepEnd(timeline, before: before) }
        }
        let step = session.globalStep
        let live = Set(host.liveWorkers)
        for worker in ledger.vouchedFrom.keys where !live.contains(worker) { ledger.forget(worker) }
        if ledger.wantsSnapshot(at: step) {
            snapshots[step] = session.captureState()
            ledger.snapshotTaken(at: step)
        }
        for released in ledger.releasable() { snapshots[released] = nil }
        let version = parameterVersion
        if let shared = sharedParameters, sharedVersion != version {
            let copyStarted = monotonicNanos()
            shared.write(version: version, from: session.model.parameters.values.pointer)
            sharedVersion = version
            timing.parameterCopyNanos += monotonicNanos() - copyStarted
        }
        if needsSocketParameters { makeParameterPayload(version: version) }
        if let chunkOwners {
            try executeWithChunkOwners(chunkOwners, session: session, version: version)
            return
        }
        try host.runStep(step + machineOffset, parameterVersion: version)
    }

    /// OUT/timeline.json's spans (set by the trainer).
    public func attach(timeline: Timeline) { self.timeline = timeline }

    /// After a step: each worker waited from its last result to the step's end; evictions,
    /// reassignments and restarts in the step are instants.
    func recordStepEnd(_ timeline: Timeline, before: (Int, Int, Int)) {
        let end = monotonicNanos(), step = session.globalStep + 1
        for (worker, arrived) in lastArrival { timeline.span(.worker(Int(worker)), "wait", from: arrived, to: end, step: step) }
        let after = (host.machine.statistics.evictions, host.machine.statistics.reassignments, host.restarts)
        for (name, grown) in [("eviction", after.0 - before.0), ("reassignment", after.1 - before.1), ("restart", after.2 - before.2)] where grown > 0 {
            timeline.instant(.coordinator, name, at: end, step: step, args: ["count": .integer(grown)])
        }
    }

    /// The current parameters' version: the global step, and the rewinds so far above bit 40.
    var parameterVersion: UInt64 { UInt64(session.globalStep) | rewinds << 40 }

    /// The global step of a state-machine step.
    func globalStep(ofMachine step: Int) -> Int { step - machineOffset }

    package func machineStep(ofWire step: UInt64) -> Int { Int(clamping: step) &+ machineOffset }

    /// After the step a refereed audit proved a worker wrong in: the state to go back to (the
    /// trainer restores it and runs on from its step), once.
    public func takeRewind() -> Rewind? {
        guard let rewind = pendingRewind else { return nil }
        pendingRewind = nil
        // The state machine's steps keep counting up; the global steps start over at the target.
        machineOffset += session.globalStep + 1 - rewind.state.globalStep
        recomputedSteps += session.globalStep + 1 - rewind.state.globalStep
        rewinds += 1
        sharedVersion = .max
        parameterPayloadVersion = .max
        return rewind
    }

    /// Stops sending work to `worker` (the monitor's rollback for a faulty replica).
    public func evict(worker: WorkerID, reason: String) { host.evict(worker: worker, reason: reason) }

    public func shutdown() { host.shutdown() }

    /// Whether the workers evaluate the probe batch at global step `step`.
    func isProbeStep(_ step: Int) -> Bool { settings.probeEvery > 0 && step % settings.probeEvery == 0 }

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
        sharedParameters == nil || host.members.values.contains { !usesSharedMemory($0) }
    }

    /// Local children (processes this coordinator spawned) read parameters from shared memory.
    func usesSharedMemory(_ member: Member) -> Bool { sharedParameters != nil && member.isLocalChild }

    // MARK: CoordinatorWorkload

    package let logName = "chorus coordinator"
    package let finishedReason = "run finished"
    package var heartbeatSequence: UInt64 { UInt64(session.globalStep) }
    package var welcomePayload: WelcomePayload {
        WelcomePayload(configJSON: configJSON, configHash: configHash, parameterVersion: parameterVersion, kernel: settings.kernel)
    }

    package func refusal(ofReady join: Join) -> (code: RejectCode, message: String)? {
        guard join.dataFingerprint != dataFingerprint else { return nil }
        return (.dataMismatch, String(format: "worker's data fingerprint %016llx differs from the coordinator's %016llx: the worker reads other data", join.dataFingerprint, dataFingerprint))
    }

    package let childCommand = "worker"
    package var acceptsNodeSums: Bool { true }

    package var childArguments: [String] {
        var arguments = ["--quiet", "--coordinator-timeout-ms", String(settings.timeoutMs)]
        // "=": a Z85 key may start with "-", which would read as an option.
        if let curve = settings.curve { arguments += ["--curve-server-key=\(curve.publicKey)"] }
        if let shared = sharedParameters { arguments += ["--shared-parameters", shared.name] }
        if let pool = gradientPool { arguments += ["--shared-gradients", pool.name] }
        return arguments
    }

    package func work(for assignment: WorkAssignment, member: Member) -> Work {
        let step = globalStep(ofMachine: assignment.step)
        let (epoch, stepInEpoch) = session.plan.position(globalStep: step)
        let shared = usesSharedMemory(member) && assignment.parameterVersion == sharedVersion
        var flags: WorkFlags = isProbeStep(step) ? [.probe] : []
        if let chunkOwners {
            // The parameters whole only to an agent that does not hold them (new table, newcomer).
            flags.insert(.chunkOwners)
            admitToTable(chunkOwners, member)
            let whole = !chunkOwners.seeded.contains(member.id)
            if whole { makeParameterPayload(version: assignment.parameterVersion) }
            return Work(step: UInt64(step), epoch: UInt32(epoch), stepInEpoch: UInt32(stepInEpoch),
                        parameterVersion: assignment.parameterVersion, shards: assignment.shards.map(UInt32.init),
                        shardCount: UInt32(session.shards), flags: flags.union(.sumNodes), gradientDType: .fp32,
                        parameters: whole ? parameterPayload : nil)
        }
        if shared { flags.insert(.sharedParameters) }
        // A worker that joined this step without shared memory may need the payload only now.
        if !shared && assignment.includeParameters { makeParameterPayload(version: assignment.parameterVersion) }
        return Work(step: UInt64(step), epoch: UInt32(epoch), stepInEpoch: UInt32(stepInEpoch),
                    parameterVersion: assignment.parameterVersion, shards: assignment.shards.map(UInt32.init),
                    shardCount: UInt32(session.shards), flags: assignment.sumNodes ? flags.union(.sumNodes) : flags, gradientDType: settings.wireDType,
                    parameters: assignment.includeParameters && !shared ? parameterPayload : nil)
    }

    package func delivered(_ work: Work, to member: Member) {
        if work.parameters != nil { chunkOwners?.seeded.insert(member.id) }
        if work.flags.contains(.sharedParameters) { sharedBytes += session.model.parameters.count * 4 } else { bytesSent += work.parameters?.byteCount ?? 0 }
    }

    package func accept(_ gradient: Gradient, from member: Member) -> GradientIntake<Result> {
        let count = session.model.contributionCount
        guard gradient.parameterVersion == parameterVersion else {
            return .invalid("result for step \(gradient.step) from worker \(member.id) computed with parameter version \(gradient.parameterVersion), not the current \(parameterVersion)")
        }
        let decodeStarted = monotonicNanos()
        let signals: [[UInt8]]
        if gradient.span == 1 {
            signals = [gradient.statistics]
        } else if let unpacked = NodeStatistics.unpack(gradient.statistics, count: Int(gradient.span)) {
            signals = unpacked
        } else {
            return .invalid("node sum for step \(gradient.step) shards \(gradient.shards) from worker \(member.id) without one statistics entry per shard")
        }
        if let chunkOwners {
            // Its values went to the chunks' owners; the outcome, signals and the sender's norm come here.
            guard gradient.payload.byteCount == 0, gradient.sharedSlot == Gradient.inline else {
                return .invalid("node sum with values from worker \(member.id): with --chunk-owners they go to the chunks' owners")
            }
            let reported = signals.first.flatMap { try? ShardSignals.decode($0) }?.gradientNorm
            return accepted(gradient, from: member, signals: signals, contribution: chunkOwners.placeholder,
                            receivedNorm: reported.flatMap { $0 >= 0 ? $0 : nil }, decodeStarted: decodeStarted)
        }
        let storage = session.contributionBuffer()
        let values = UnsafeMutableBufferPointer(start: storage.pointer, count: count)
        if gradient.sharedSlot != Gradient.inline {
            let byteCount = count * gradient.dtype.byteWidth
            let slot = Int(gradient.sharedSlot), owner = UInt32(bitPattern: member.pid)
            guard member.isLocalChild, let segment = gradientPool, segment.bytes(slot: slot, byteCount: byteCount) != nil,
                  segment.owner(ofSlot: slot) == owner else {
                return .invalid("shared-memory gradient (slot \(gradient.sharedSlot)) from worker \(member.id), which holds no such slot")
            }
            // Copy first, then checksum the copy: what is aggregated is what the worker checksummed.
            // Then the slot is free for the next result, whatever becomes of this one.
            let crc: UInt32?
            if gradient.dtype == .fp32 {
                crc = segment.copy(slot: slot, byteCount: byteCount, into: UnsafeMutableRawPointer(storage.pointer))
            } else {
                let copy = PayloadBuffer(byteCount: byteCount)
                crc = segment.copy(slot: slot, byteCount: byteCount, into: copy.baseAddress)
                copy.decode(as: gradient.dtype, into: values)
            }
            segment.release(slot: slot, owner: owner)
            guard crc == gradient.sharedCRC else {
                return .corrupt("corrupted shared-memory gradient for step \(gradient.step) shard \(gradient.shard) (checksum mismatch)")
            }
            sharedGradientBytes += byteCount
        } else {
            guard gradient.payload.elementCount(as: gradient.dtype) == count else {
                return .invalid("gradient from worker \(member.id) with \(gradient.payload.elementCount(as: gradient.dtype)) values, expected \(count)")
            }
            bytesReceived += gradient.payload.byteCount
            gradient.payload.decode(as: gradient.dtype, into: values)
        }
        timing.decodeNanos += monotonicNanos() - decodeStarted
        // The sender measured its contribution's norm before sending it (in each shard's
        // signals). Values that arrive with another norm changed in between, before the checksum
        // was taken: bad memory on that host. On an fp32 wire the two norms are the same
        // function of the same values; a 16-bit wire rounds, so it is not checked there.
        var receivedNorm: Double?
        if gradient.dtype == .fp32, let first = signals.first, let reported = (try? ShardSignals.decode(first))?.gradientNorm, reported >= 0 {
            let received = GradientClipping.globalNorm(storage.pointer, count: count)
            receivedNorm = received
            if MonitorHookup.changedInTransit(reported: reported, received: received) {
                transitMismatch?(member.id, Int(gradient.step) + 1, gradient.shards, reported, received)
                // Nothing of it was summed, so nothing to undo; bad memory does not heal, so the
                // worker computes nothing more (and a lone bad worker cannot loop on its shard).
                transitQuarantined.insert(member.id)
                host.quarantine(worker: member.id, reason: "its gradient for step \(gradient.step) changed after it was computed (norm \(reported) → \(received))")
                return .corrupt("worker \(member.id) computed step \(gradient.step) \(gradient.span > 1 ? "shards \(gradient.shards)" : "shard \(gradient.shard)") "
                                + "with gradient norm \(reported) but it arrived with \(received): its values changed after they were computed")
            }
        }
        return accepted(gradient, from: member, signals: signals, contribution: storage, receivedNorm: receivedNorm, decodeStarted: decodeStarted)
    }

    /// An intact result: the probe's statistics to the monitor, the counters and the timeline.
    func accepted(_ gradient: Gradient, from member: Member, signals: [[UInt8]], contribution: TensorStorage, receivedNorm: Double?,
                  decodeStarted: UInt64) -> GradientIntake<Result> {
        if Int(gradient.step) == session.globalStep, isProbeStep(session.globalStep), let first = signals.first, !first.isEmpty {
            gradientStatistics?(member.id, first)
        }
        timing.workerComputeNanos += gradient.computeNanos
        timing.shards += Int(gradient.span)
        workerStats[member.id, default: WorkerStats()].shards += Int(gradient.span)
        workerStats[member.id, default: WorkerStats()].computeNanos += gradient.computeNanos
        if let timeline {
            // On the coordinator's clock: the worker's measured compute, ending when its result arrived.
            let worker = Timeline.Track.worker(Int(member.id)), step = session.globalStep + 1
            let computeStart = decodeStarted &- min(gradient.computeNanos, decodeStarted &- timelineStepStart)
            let since = lastArrival[member.id] ?? timelineStepStart
            if computeStart > since { timeline.span(worker, "work in flight", from: since, to: computeStart, step: step) }
            timeline.span(worker, "compute", from: computeStart, to: decodeStarted, step: step,
                          args: ["shards": .string(gradient.span > 1 ? "\(gradient.shard)..<\(Int(gradient.shard) + Int(gradient.span))" : "\(gradient.shard)"),
                                 "shard_count": .integer(Int(gradient.span)), "compute_ms": .real(Double(gradient.computeNanos) / 1e6)])
            timeline.span(.coordinator, "receive/check", from: decodeStarted, to: monotonicNanos(), step: step,
                          args: ["worker": .integer(Int(member.id))])
        }
        lastArrival[member.id] = monotonicNanos()
        return .accepted(Result(contribution: contribution,
                                outcome: ShardOutcome(lossSum: gradient.lossSum, correct: Int(gradient.correct), count: Int(gradient.exampleCount)),
                                signals: signals, receivedNorm: receivedNorm))
    }

    /// Adds a released result to the step's gradient (and hands its signals to the monitor first:
    /// the sum takes the buffer over).
    package func aggregate(_ result: Result, _ aggregation: Aggregation) {
        if let chunkOwners { return aggregateChunked(chunkOwners, result, aggregation) }
        shardSignals?(ReceivedShard(worker: aggregation.worker, shards: aggregation.shards, signals: result.signals,
                                    contribution: result.contribution.pointer, count: result.outcome.count, receivedNorm: result.receivedNorm))
        let addStarted = monotonicNanos()
        var contribution = result.contribution
        if aggregation.retainForAudit {
            // The audit compares this result later: the sum gets a copy.
            contribution = session.contributionBuffer()
            contribution.pointer.update(from: result.contribution.pointer, count: contribution.count)
        }
        session.add(shards: aggregation.shards, contribution: contribution, outcome: result.outcome)
        ledger.contributed(aggregation.worker, step: session.globalStep)
        timing.aggregateNanos += monotonicNanos() - addStarted
        timeline?.span(.coordinator, "aggregate", from: addStarted, to: monotonicNanos(), step: session.globalStep + 1,
                       args: ["shards": .string("\(aggregation.shards)")])
    }

    package func receive(other message: Message, from member: Member) -> Bool {
        guard let chunkOwners else { return false }
        return receiveChunked(chunkOwners, message, from: member)
    }

    /// Compares an audit's two results bit for bit; on a mismatch, referees and tells the monitor.
    package func auditDiffers(_ a: Result, _ b: Result, _ pair: AuditPair) -> Bool {
        let step = globalStep(ofMachine: pair.step)
        guard memcmp(a.contribution.pointer, b.contribution.pointer, session.model.contributionCount * 4) != 0 else {
            ledger.cleanAudit([pair.workerA, pair.workerB], step: step)
            return false
        }
        let suspect = referee(step: step, shard: pair.shard, a: (pair.workerA, a.contribution), b: (pair.workerB, b.contribution))
        logLine("chorus coordinator: audit mismatch at step \(step) shard \(pair.shard): workers \(pair.workerA) and \(pair.workerB) computed different gradients"
                + (suspect.map { "; the coordinator's own computation agrees with the other, so worker \($0) is at fault" } ?? "; the coordinator's own computation agrees with neither"))
        var global = pair
        global.step = step
        auditMismatch?(global, suspect)
        if let suspect { quarantine(suspect, step: step, shard: pair.shard) }
        return true
    }

    /// Whether a refereed audit proved `worker` wrong.
    public func isQuarantined(_ worker: WorkerID) -> Bool { transitQuarantined.contains(worker) || quarantines.contains { $0.worker == worker } }
    /// Workers quarantined because a contribution changed after they computed it (no rewind: none was summed).
    var transitQuarantined = Set<WorkerID>()

    /// A refereed audit is certain evidence: the worker is quarantined and the run goes back to
    /// the last state clean audits vouch for and computes again from there (the trainer does,
    /// before this step is applied). When none of its earlier results was summed that state is
    /// this step's start: its results for the step in progress may already be in the aggregate.
    func quarantine(_ worker: WorkerID, step: Int, shard: Int) {
        let target = ledger.faulty(worker)
        for dropped in snapshots.keys where !ledger.held.contains(dropped) { snapshots[dropped] = nil }
        // Mid-step the session still holds the state this step started from.
        let state = target.flatMap { snapshots[$0] } ?? session.captureState()
        quarantines.append(Quarantine(worker: worker, step: step, shard: shard, rewoundTo: state.globalStep))
        timeline?.instant(.worker(Int(worker)), "quarantined", at: monotonicNanos(), step: session.globalStep + 1,
                          args: ["audit_step": .integer(step), "shard": .integer(shard)])
        let reason = "its gradient for step \(step) shard \(shard) differs from the coordinator's own computation and another worker's"
        host.quarantine(worker: worker, reason: reason)
        if pendingRewind.map({ $0.state.globalStep > state.globalStep }) ?? true {
            pendingRewind = Rewind(state: state, reason: "worker \(worker) quarantined at step \(step)")
        }
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
}
