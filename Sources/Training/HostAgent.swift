#if canImport(Glibc)
import Glibc
#endif
import Cluster
import CollapseMonitor
import Config
import Coordination
import Data
import Foundation
import NeuralNet
import Optimizers
import TensorCore
import Transport
import WireProtocol

/// `chorus worker --local-workers N`: one connection to the coordinator for a whole host, with
/// N worker processes behind it.
///
/// Upstream it is an ordinary worker (a ``WorkerHost``: the handshake, heartbeats, work ↔
/// gradients, the coordinator's silence and restarts). Each work message it gets — the shards
/// of one global step the coordinator gave this host — becomes one step of its own
/// ``CoordinatorHost`` over its local workers: the parameters go once into a shared-memory
/// segment they all read, the shards are planned over them in contiguous blocks, each worker
/// writes its shard gradients into the shared gradient pool, and the agent sums them along the
/// run's shard tree (``ContributionSum``) — the same sums, in the same order, the coordinator or
/// a plain worker holding those shards would make — sending up each node of the tree it holds
/// whole as one gradient, the moment its last shard is in.
///
/// A local worker that dies is the agent's business (its coordinator host respawns it, and its
/// shards go to the others at once); the coordinator sees only the host. The agent's own death
/// looks like the host's: its workers see their parent gone and exit. Per-replica checks at the
/// coordinator (audits, probes, the monitor's replica signals) are per host agent; a host's
/// workers share one CPU type and one kernel.
public final class HostAgent: WorkerWorkload, CoordinatorWorkload {
    package struct Result { let values: TensorStorage; let outcome: ShardOutcome; let statistics: [UInt8] }

    let options: WorkerOptions
    var upstream: WorkerHost<HostAgent>!
    var local: CoordinatorHost<HostAgent>?
    var welcome: Welcome?
    var shardCount = 1
    var parameterCount = 0
    var contributionCount = 0
    var fingerprint: UInt64 = 0
    var parameters: SharedParameters?
    var gradientPool: SharedGradients?
    var parameterVersion: UInt64 = .max
    var faults: ResultFaults
    var workerID: UInt32 = 0

    // The work message being carried out.
    var work: Work?
    var runID: UInt64 = 0
    var localStep = 0
    var nodes: [Range<Int>] = []
    var nodeIndex = 0
    var nodeStarted: UInt64 = 0
    var nodeStatistics: [[UInt8]] = []
    var nodeSums: [Range<Int>: ContributionSum] = [:]
    var sendUp: (([Frame]) throws -> Void)?
    var sendError: Error?

    // Chunk owners (docs/coordination.md "Chunk owners"): the peer mesh, the coordinator's table,
    // the pieces of this agent's chunks, and the parameters being assembled from updated chunks.
    var mesh: PeerMesh?
    var table: ChunkOwnership?
    var contributionChunks: ParameterChunks?
    /// Chunks covering the parameters (the rest cover the batch-norm statistics).
    var parameterChunkCount = 0
    var reducer: ChunkReducer?
    var reducedSent = true
    /// Pieces of a step this agent has not begun yet.
    var early: [ChunkData] = []
    var assembly: [Float] = []
    var assemblyVersion: UInt64 = .max
    var assemblyHave = Set<Int>()
    var chunkRefusals = 0
    /// Work waiting for its parameters' updated chunks, in arrival order.
    var deferred: [Work] = []

    package let logName = "chorus agent"

    public init(options: WorkerOptions) throws {
        self.options = options
        faults = ResultFaults(options.agentFaults)
        let (context, transport) = try ClusterSocket.connectWorker(name: "chorus agent", endpoint: options.connect, identityPrefix: "a",
                                                                   heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs,
                                                                   curveServerKey: options.curveServerKey)
        var identity = WorkerIdentity(requestedWorkerID: options.workerID)
        if let build = options.pretendBuild { identity.buildVersion = build }
        if let peerBind = options.peerBind {
            let mesh = try PeerMesh(id: 0, runID: 0, bind: peerBind, heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs)
            guard !mesh.endpoint.contains("0.0.0.0") && !mesh.endpoint.contains("[::]") else {
                throw RuntimeError.invalidSetting("--peer-bind \(peerBind): give this host's address the other agents reach it at, not a wildcard")
            }
            identity.peerEndpoint = mesh.endpoint
            self.mesh = mesh
        }
        upstream = WorkerHost(workload: self, transport: transport, owner: context, heartbeatMs: options.heartbeatMs,
                              timeoutMs: options.timeoutMs, reconnectTimeoutMs: options.coordinatorTimeoutMs, parentPID: options.parentPID,
                              identity: identity)
        upstream.quiet = options.quiet
    }

    func log(_ text: String) { if !options.quiet { logLine("chorus agent \(workerID): \(text)") } }

    /// Runs until the coordinator ends the run; returns the process exit status. Between steps
    /// it keeps its local workers' heartbeats and deaths in hand.
    public func run() -> Int32 {
        defer { local?.shutdown() }
        if let status = upstream.start() { return status }
        while true {
            // With chunk owners the peers' pieces and chunks wait for this loop too: it wakes for
            // either socket (a short poll where the coordinator's is not a plain ZeroMQ one).
            var wait = local == nil ? 100 : 10
            if let mesh, local != nil {
                if let coordinator = upstream.transport as? ZMQMessageTransport {
                    _ = try? ZMQ.poll([coordinator.socket, mesh.inboxSocket], timeoutMs: 10)
                    wait = 0
                } else {
                    wait = 1
                }
            }
            if let status = upstream.poll(timeoutMs: wait) { return status }
            if let local {
                do {
                    try local.pump(timeoutMs: 0)
                    try pumpPeers(timeoutMs: 0)
                    if let first = deferred.first, first.parameterVersion == parameterVersion {
                        let ready = deferred
                        deferred.removeAll()
                        for work in ready { try computeHeld(work, runID: runID) { frames in try upstream.transport.send(frames, to: nil) } }
                    }
                } catch {
                    logLine("chorus agent: \(error)")
                    return 1
                }
            }
        }
    }

    // MARK: Upstream (WorkerWorkload)

    package func prepare(_ welcome: Welcome) throws -> UInt64 {
        workerID = welcome.workerID
        if !welcome.kernel.isEmpty {
            // Before any local worker starts: they inherit the kernel with the environment.
            do { try BLASEnvironment.adopt(kernel: welcome.kernel) } catch {
                throw WorkerExit(status: 2, message: "refusing to join: \(error)")
            }
        }
        if let previous = self.welcome, local != nil {
            guard previous.configHash == welcome.configHash else {
                throw WorkerExit(status: 2, message: "the coordinator now runs another config; a host agent serves one run (start it again)")
            }
            log("welcomed again; same config")
            self.welcome = welcome
            return fingerprint
        }
        var config = try RunConfig.parse(jsonData: Data(welcome.configJSON), source: "coordinator's config")
        if let override = options.dataOverride { config.data.source = override }
        let (split, _) = try loadData(config.data)
        fingerprint = split.fingerprint()
        let model = try Model(config: config.model, seed: config.training.seed)
        parameterCount = model.parameters.count
        contributionCount = model.contributionCount
        contributionChunks = ParameterChunks.ofContribution(model)
        parameterChunkCount = contributionChunks!.parameterChunkCount(model)
        assembly = [Float](repeating: 0, count: parameterCount)
        shardCount = config.training.shards ?? 1
        self.welcome = welcome
        let tag = "/chorus-agent-\(getpid())"
        SharedGradients.removeOrphanedSegments()
        parameters = try SharedParameters.create(name: tag, count: parameterCount)
        gradientPool = try SharedGradients.create(name: "\(tag)-g", gradientBytes: contributionCount * 4,
                                                  slots: SharedGradients.slots(shards: shardCount, workers: options.localWorkers))
        var configuration = CoordinatorConfiguration(shardCount: shardCount, expectedWorkers: options.localWorkers)
        configuration.heartbeatInterval = .milliseconds(options.heartbeatMs)
        configuration.workerTimeout = .milliseconds(options.timeoutMs)
        configuration.noWorkerTimeout = .milliseconds(max(options.timeoutMs * 4, 60_000))
        configuration.startTimeout = .milliseconds(max(options.timeoutMs * 4, 120_000))
        let (context, transport) = try ClusterSocket.bindCoordinator(endpoint: "ipc:///tmp/chorus-agent-\(getpid()).sock",
                                                                     heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs)
        var hostOptions = HostOptions(runID: UInt64.random(in: 1...UInt64.max), heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs)
        hostOptions.faults = options.faults
        hostOptions.logsJoins = !options.quiet  // its local workers are its own children
        let host = try CoordinatorHost(workload: self, transport: transport, owner: context, configuration: configuration,
                                       options: hostOptions, children: ChildProcesses(), gradientPool: gradientPool)
        local = host
        try host.spawnChildren(options.localWorkers)
        try host.waitForStart()
        log("welcomed; \(options.localWorkers) local workers, \(parameterCount) parameters, \(split.train.count) examples")
        return fingerprint
    }

    package func compute(_ work: Work, runID: UInt64, send: ([Frame]) throws -> Void) throws {
        guard local != nil, let parameters else { return }
        if let payload = work.parameters {
            guard payload.byteCount == parameterCount * 4 else {
                throw RuntimeError.cluster("work carries \(payload.byteCount / 4) parameters, model has \(parameterCount)")
            }
            parameters.write(version: work.parameterVersion, from: payload.asFloats.baseAddress!)
            parameterVersion = work.parameterVersion
            if work.flags.contains(.chunkOwners) {
                assembly = Array(payload.asFloats)
                deferred.removeAll { $0.parameterVersion != work.parameterVersion }
            }
        } else if work.flags.contains(.chunkOwners) {
            if parameterVersion != work.parameterVersion {
                // Computed by the run loop once the owners' updated chunks of that version are in
                // (the agent goes on answering the coordinator meanwhile). Every work of that
                // version waits (the step's own, and shards reassigned to this agent later); work
                // of a newer version drops the older.
                self.runID = runID
                deferred.removeAll { $0.parameterVersion != work.parameterVersion }
                deferred.append(work)
                return
            }
        } else if work.flags.contains(.sharedParameters) || parameterVersion != work.parameterVersion {
            throw RuntimeError.cluster("work for step \(work.step) names parameter version \(work.parameterVersion) without carrying it; this agent holds \(parameterVersion)")
        }
        try computeHeld(work, runID: runID, send: send)
    }

    /// Computes `work`, whose parameters are in shared memory.
    func computeHeld(_ work: Work, runID: UInt64, send: ([Frame]) throws -> Void) throws {
        guard let local else { return }
        let shards = work.shards.map(Int.init)
        guard Int(work.shardCount) == shardCount, !shards.isEmpty, shards.allSatisfy({ $0 < shardCount }) else {
            throw RuntimeError.cluster("work for step \(work.step) names shards \(shards) of \(work.shardCount); this run has \(shardCount)")
        }
        let tree = ShardTree(count: shardCount)
        self.work = work
        self.runID = runID
        nodes = work.flags.contains(.sumNodes) ? tree.cover(shards: shards) : shards.sorted().map { $0..<($0 + 1) }
        nodeIndex = 0
        nodeStatistics = []
        nodeStarted = monotonicNanos()
        for node in nodes where nodeSums[node] == nil {
            nodeSums[node] = ContributionSum(count: contributionCount, tree: tree, node: node)
        }
        for node in nodes { nodeSums[node]!.reset() }
        localStep += 1
        sendError = nil
        if work.flags.contains(.chunkOwners) { try beginChunkStep(work) }
        defer { self.work = nil }
        try withoutActuallyEscaping(send) { send in
            sendUp = send
            defer { sendUp = nil }  // before the block ends: the closure must not outlive it
            try local.runStep(localStep, parameterVersion: work.parameterVersion, subset: shards)
        }
        if let sendError { throw sendError }
    }

    /// Sends node `node`'s finished sum to the coordinator, with the agent's own faults applied.
    func sendNode(_ node: Range<Int>, values: TensorStorage, outcome: ShardOutcome) {
        guard let work, let sendUp else { return }
        // `bitflip` (a host computing wrong sums) before the agent measures its node sum; the
        // other faults after.
        faults.flip(.bitflip, count: values.count, step: Int(work.step)) { index, bit in
            values.pointer[index] = Float(bitPattern: values.pointer[index].bitPattern ^ (1 << UInt32(bit)))
        }
        // Each shard's signals carry the norm of what the agent sends (its node sum), measured
        // before the agent's transit faults: the coordinator checks it against what arrives.
        let sentNorm = GradientClipping.globalNorm(values.pointer, count: values.count)
        nodeStatistics = nodeStatistics.map { blob in
            guard var signals = try? ShardSignals.decode(blob) else { return blob }
            signals.gradientNorm = sentNorm
            return signals.encode()
        }
        let (drop, corrupt) = faults.apply(count: values.count, step: Int(work.step), bitflips: false) { index, bit in
            values.pointer[index] = Float(bitPattern: values.pointer[index].bitPattern ^ (1 << UInt32(bit)))
        }
        if drop { return }
        let chunked = work.flags.contains(.chunkOwners)
        if chunked {
            do { try sendPieces(of: node, values: values, step: work.step) } catch { sendError = error; return }
        }
        let payload = chunked ? PayloadBuffer(byteCount: 0)
            : PayloadBuffer.encoding(UnsafeBufferPointer(start: values.pointer, count: values.count), as: work.gradientDType)
        let gradient = Gradient(step: work.step, shard: UInt32(node.lowerBound), exampleCount: UInt32(outcome.count),
                                parameterVersion: work.parameterVersion, lossSum: outcome.lossSum, correct: UInt32(outcome.correct),
                                dtype: work.gradientDType, computeNanos: monotonicNanos() - nodeStarted,
                                statistics: node.count == 1 ? nodeStatistics[0] : NodeStatistics.pack(nodeStatistics),
                                payload: payload, sharedSlot: Gradient.inline, sharedCRC: 0, span: UInt32(node.count))
        var frames = WireCodec.encode(.gradient(gradient), runID: runID)
        if corrupt { faults.garble(&frames) }
        do { try sendUp(frames) } catch { sendError = error }
    }

    // MARK: Local workers (CoordinatorWorkload)

    package let finishedReason = "run finished"
    package var heartbeatSequence: UInt64 { UInt64(localStep) }
    package var welcomePayload: WelcomePayload {
        WelcomePayload(configJSON: welcome?.configJSON ?? [], configHash: welcome?.configHash ?? 0,
                       parameterVersion: welcome?.parameterVersion ?? 0, kernel: welcome?.kernel ?? "")
    }

    package func refusal(ofReady join: Join) -> (code: RejectCode, message: String)? {
        guard join.dataFingerprint != fingerprint else { return nil }
        return (.dataMismatch, String(format: "local worker's data fingerprint %016llx differs from the agent's %016llx", join.dataFingerprint, fingerprint))
    }

    package let childCommand = "worker"
    package var childArguments: [String] {
        var arguments = ["--quiet", "--coordinator-timeout-ms", String(options.timeoutMs)]
        if let parameters { arguments += ["--shared-parameters", parameters.name] }
        if let gradientPool { arguments += ["--shared-gradients", gradientPool.name] }
        if let data = options.dataArgument { arguments += ["--data", data] }
        return arguments
    }

    /// Local work names the global step and shards; the parameters are always in shared memory
    /// and the results single shards (the agent does the summing).
    package func work(for assignment: WorkAssignment, member: Member) -> Work {
        let work = self.work!
        let flags: WorkFlags = work.flags.contains(.probe) ? [.probe, .sharedParameters] : [.sharedParameters]
        return Work(step: work.step, epoch: work.epoch, stepInEpoch: work.stepInEpoch, parameterVersion: work.parameterVersion,
                    shards: assignment.shards.map(UInt32.init), shardCount: work.shardCount, flags: flags, gradientDType: .fp32,
                    parameters: nil)
    }

    package func delivered(_ work: Work, to member: Member) {}

    package func machineStep(ofWire step: UInt64) -> Int {
        // Only the current global step's results count; they belong to the step running now.
        guard let work, work.step == step else { return -1 }
        return localStep
    }

    package func accept(_ gradient: Gradient, from member: Member) -> GradientIntake<Result> {
        guard gradient.span == 1, gradient.dtype == .fp32 else {
            return .invalid("local worker \(member.id) sent \(gradient.span) shards as \(gradient.dtype); the agent asks for single fp32 shards")
        }
        guard let work, gradient.step == work.step, gradient.parameterVersion == work.parameterVersion,
              let node = nodes.first(where: { $0.contains(Int(gradient.shard)) }), let sum = nodeSums[node] else {
            return .invalid("stale or unplanned result (step \(gradient.step) shard \(gradient.shard)) from local worker \(member.id)")
        }
        let storage = sum.buffer()
        let byteCount = contributionCount * 4
        if gradient.sharedSlot != Gradient.inline {
            let slot = Int(gradient.sharedSlot), owner = UInt32(bitPattern: member.pid)
            guard let pool = gradientPool, pool.bytes(slot: slot, byteCount: byteCount) != nil, pool.owner(ofSlot: slot) == owner else {
                return .invalid("shared-memory gradient (slot \(gradient.sharedSlot)) from local worker \(member.id), which holds no such slot")
            }
            let crc = pool.copy(slot: slot, byteCount: byteCount, into: UnsafeMutableRawPointer(storage.pointer))
            _ = pool.release(slot: slot, owner: owner)
            guard crc == gradient.sharedCRC else {
                return .corrupt("corrupted shared-memory gradient for step \(gradient.step) shard \(gradient.shard) (checksum mismatch)")
            }
        } else {
            guard gradient.payload.elementCount(as: .fp32) == contributionCount else {
                return .invalid("gradient from local worker \(member.id) with \(gradient.payload.elementCount(as: .fp32)) values, expected \(contributionCount)")
            }
            gradient.payload.decode(as: .fp32, into: UnsafeMutableBufferPointer(start: storage.pointer, count: contributionCount))
        }
        // The local worker measured its gradient's norm before sending it: values that arrive
        // with another norm changed in between (bad memory on this host). Recomputed, never summed.
        if let signals = try? ShardSignals.decode(gradient.statistics), signals.gradientNorm >= 0 {
            let received = GradientClipping.globalNorm(storage.pointer, count: contributionCount)
            if MonitorHookup.changedInTransit(reported: signals.gradientNorm, received: received) {
                // Bad memory does not heal: that process computes nothing more for this host.
                local?.quarantine(worker: member.id, reason: "its gradient changed after it was computed (norm \(signals.gradientNorm) → \(received))")
                return .corrupt("local worker \(member.id) computed step \(gradient.step) shard \(gradient.shard) with gradient norm "
                                + "\(signals.gradientNorm) but it arrived with \(received): its values changed after they were computed")
            }
        }
        return .accepted(Result(values: storage,
                                outcome: ShardOutcome(lossSum: gradient.lossSum, correct: Int(gradient.correct), count: Int(gradient.exampleCount)),
                                statistics: gradient.statistics))
    }

    /// Released in shard order: each shard goes into its node's sum, and a finished node goes up.
    package func aggregate(_ result: Result, _ aggregation: Aggregation) {
        guard nodeIndex < nodes.count else { return }
        let node = nodes[nodeIndex], shard = aggregation.shard
        guard let sum = nodeSums[node], node.contains(shard), sum.covered == shard else {
            sendError = RuntimeError.cluster("agent: shard \(shard) released out of its node \(node)")
            return
        }
        sum.add(shards: shard..<(shard + 1), values: result.values, outcome: result.outcome)
        nodeStatistics.append(result.statistics)
        guard let (values, outcome) = sum.result else { return }
        sendNode(node, values: values, outcome: outcome)
        sum.reset(recycling: values)
        nodeIndex += 1
        nodeStatistics = []
        nodeStarted = monotonicNanos()
    }

    /// Never called: a host agent's steps have no audit (the coordinator audits across hosts).
    package func auditDiffers(_ a: Result, _ b: Result, _ pair: AuditPair) -> Bool { false }
}
