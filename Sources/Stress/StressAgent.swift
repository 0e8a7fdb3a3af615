#if canImport(Glibc)
import Glibc
#endif
import Cluster
import Coordination
import Foundation
import Transport
import WireProtocol

/// Options of the hidden `chorus stress-agent` subcommand (started by `chorus stress --local-workers N`).
public struct StressAgentOptions {
    /// The stress coordinator's endpoint.
    public var connect: String
    /// Local stress workers behind this agent.
    public var localWorkers = 2
    /// The worker id to ask for (−1: any).
    public var workerID = -1
    /// Exit when this process is no longer the parent.
    public var parentPID: Int32?
    public var heartbeatMs = 250
    public var timeoutMs = 5_000
    /// Largest payload frame sent up, bytes.
    public var frameBytes = 64 << 20
    /// Faults on the node sums the agent sends up (corrupt, bitflip, drop, delay, slow).
    public var faults: [FaultSpec] = []
    /// Faults of the agent's local workers: `kill` is carried out by the agent, the others by the worker in that local slot.
    public var localFaults: [FaultSpec] = []

    public init(connect: String) { self.connect = connect }
}

/// A gradient-sized fp32 buffer (freed with its last reference).
final class StressBuffer {
    let values: UnsafeMutableBufferPointer<Float>
    init(count: Int) { values = .allocate(capacity: max(count, 1)) }
    deinit { values.deallocate() }
}

/// The host agent of `chorus stress`: what `chorus worker --local-workers N` is to training
/// (docs/coordination.md "Host agents"), with the gradients generated instead of computed.
///
/// Upstream it is one stress worker (a ``WorkerHost``: handshake with the generator's
/// fingerprint, heartbeats, work ↔ gradients). Each work message — the shards of one global
/// step the coordinator gave this host — becomes one step of its own ``CoordinatorHost`` over
/// N local `chorus stress-worker` processes on an ipc socket, which write single fp32 shards
/// into the agent's shared-memory pool. Released in shard order, the shards are summed along
/// the run's ``ShardTree`` node by node, and each finished node goes up as one gradient
/// (`span` = its shards) in the run's wire format — the value the coordinator's exact check
/// expects for that node. A local worker that dies is the agent's business (respawned, its
/// shards given to the others at once); the agent's own death looks like the host's.
///
/// The agent's local counters (workers killed and restarted, corrupt payloads caught) ride in
/// each node sum's statistics bytes, so the coordinator's report can show them.
public final class StressAgent: WorkerWorkload, CoordinatorWorkload {
    package struct Held { let buffer: StressBuffer }

    let options: StressAgentOptions
    var upstream: WorkerHost<StressAgent>!
    var local: CoordinatorHost<StressAgent>?
    var welcome: Welcome?
    var fingerprint: UInt64 = 0
    var count = 0
    var shardCount = 1
    var gradientPool: SharedGradients?
    var faults: ResultFaults
    var spare: [StressBuffer] = []
    /// The 16-byte stand-in for the parameters, as the coordinator sent it last.
    var parameterPayload: PayloadBuffer?
    var parameterVersion: UInt64 = .max

    // The work message being carried out.
    var work: Work?
    var runID: UInt64 = 0
    var localStep = 0
    var nodes: [Range<Int>] = []
    var nodeIndex = 0
    var nodeFold: TreeFold<StressBuffer>?
    var sendUp: (([Frame]) throws -> Void)?
    var sendError: Error?
    var scratchHalf: PayloadBuffer?

    package let logName = "chorus stress-agent"

    public init(options: StressAgentOptions) throws {
        self.options = options
        faults = ResultFaults(options.faults)
        let (context, transport) = try ClusterSocket.connectWorker(name: "chorus stress-agent", endpoint: options.connect, identityPrefix: "sa",
                                                                   heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs)
        upstream = WorkerHost(workload: self, transport: transport, owner: context, heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs,
                              parentPID: options.parentPID, identity: WorkerIdentity(requestedWorkerID: options.workerID))
        upstream.quiet = true
    }

    /// Runs until the coordinator ends the run; returns the exit status.
    public func run() -> Int32 {
        defer { local?.shutdown() }
        if let status = upstream.start() { return status }
        while true {
            if let status = upstream.poll(timeoutMs: local == nil ? 100 : 10) { return status }
            if let local {
                do { try local.pump(timeoutMs: 0) } catch {
                    logLine("chorus stress-agent: \(error)")
                    return 1
                }
            }
        }
    }

    func buffer() -> StressBuffer { spare.popLast() ?? StressBuffer(count: count) }

    // MARK: Upstream (WorkerWorkload)

    package func prepare(_ welcome: Welcome) throws -> UInt64 {
        if local != nil {
            guard welcome.configHash == self.welcome?.configHash else {
                throw WorkerExit(status: 2, message: "the coordinator now runs another stress run; an agent serves one (start it again)")
            }
            return fingerprint
        }
        let description: StressDescription
        do { description = try StressDescription(json: welcome.configJSON) } catch {
            throw WorkerExit(status: 2, message: "the coordinator's welcome is not a stress run we can serve (\(error)); exiting")
        }
        let generator = StressGradients(seed: description.seed, count: description.params)
        fingerprint = generator.fingerprint
        count = description.params
        self.welcome = welcome
        guard let shards = description.shards, shards >= 1, shards <= 1 << 20 else {
            throw WorkerExit(status: 2, message: "the coordinator's stress welcome names no shard count (an older chorus?); an agent needs it")
        }
        shardCount = shards
        let tag = "/chorus-stress-agent-\(getpid())"
        SharedGradients.removeOrphanedSegments()
        gradientPool = try? SharedGradients.create(name: "\(tag)-g", gradientBytes: count * 4,
                                                  slots: SharedGradients.slots(shards: shardCount, workers: options.localWorkers))
        var configuration = CoordinatorConfiguration(shardCount: shardCount, expectedWorkers: options.localWorkers)
        configuration.heartbeatInterval = .milliseconds(options.heartbeatMs)
        configuration.workerTimeout = .milliseconds(options.timeoutMs)
        configuration.startTimeout = .seconds(120)
        let (context, transport) = try ClusterSocket.bindCoordinator(endpoint: "ipc:///tmp/chorus-stress-agent-\(getpid()).sock",
                                                                     heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs)
        var hostOptions = HostOptions(runID: UInt64.random(in: 1...UInt64.max), heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs)
        hostOptions.faults = options.localFaults
        hostOptions.logsJoins = false
        let host = try CoordinatorHost(workload: self, transport: transport, owner: context, configuration: configuration,
                                       options: hostOptions, children: ChildProcesses(), gradientPool: gradientPool)
        local = host
        try host.spawnChildren(options.localWorkers)
        try host.waitForStart()
        return fingerprint
    }

    package func compute(_ work: Work, runID: UInt64, send: ([Frame]) throws -> Void) throws {
        guard let local else { return }
        if let payload = work.parameters {
            parameterPayload = payload
            parameterVersion = work.parameterVersion
        } else if parameterVersion != work.parameterVersion {
            throw RuntimeError.cluster("work for step \(work.step) names parameter version \(work.parameterVersion) without carrying it; this agent holds \(parameterVersion)")
        }
        let shards = work.shards.map(Int.init)
        guard Int(work.shardCount) == shardCount, !shards.isEmpty, shards.allSatisfy({ $0 < shardCount }) else {
            throw RuntimeError.cluster("work for step \(work.step) names shards \(shards) of \(work.shardCount); this run has \(shardCount)")
        }
        let tree = ShardTree(count: shardCount)
        self.work = work
        self.runID = runID
        nodes = work.flags.contains(.sumNodes) ? tree.cover(shards: shards) : shards.sorted().map { $0..<($0 + 1) }
        nodeIndex = 0
        nodeFold = TreeFold(tree: tree, node: nodes[0])
        localStep += 1
        sendError = nil
        defer { self.work = nil; nodeFold = nil }
        try withoutActuallyEscaping(send) { send in
            sendUp = send
            defer { sendUp = nil }
            try local.runStep(localStep, parameterVersion: work.parameterVersion, subset: shards)
        }
        if let sendError { throw sendError }
    }

    /// Sends node `node`'s finished sum up in the run's wire format, with the agent's faults applied.
    func sendNode(_ node: Range<Int>, values: StressBuffer) {
        guard let work, let sendUp, let local else { return }
        let dtype = work.gradientDType
        let width = dtype.byteWidth
        let payload = PayloadBuffer.encoding(UnsafeBufferPointer(values.values), as: dtype)
        let (drop, corrupt) = faults.apply(count: count, width: width, step: Int(work.step)) { index, bit in
            // Bad memory: before the checksum, so only the coordinator's exact check can tell.
            (payload.mutableBytes.baseAddress! + index * width + bit / 8).assumingMemoryBound(to: UInt8.self).pointee ^= UInt8(1 << (bit % 8))
        }
        if drop { return }
        var counters = [UInt8]()
        for value in [UInt32(local.kills.count), UInt32(local.restarts), UInt32(local.corruptPayloads)] {
            withUnsafeBytes(of: value.littleEndian) { counters += $0 }
        }
        let gradient = Gradient(step: work.step, shard: UInt32(node.lowerBound), exampleCount: UInt32(node.count), parameterVersion: work.parameterVersion,
                                lossSum: 0, correct: 0, dtype: dtype, computeNanos: 0, statistics: counters,
                                payload: payload, sharedSlot: Gradient.inline, sharedCRC: 0, span: UInt32(node.count))
        var frames = WireCodec.encode(.gradient(gradient), runID: runID, maxFrameBytes: options.frameBytes)
        if corrupt { faults.garble(&frames) }
        do { try sendUp(frames) } catch { sendError = error }
    }

    // MARK: Local workers (CoordinatorWorkload)

    package let finishedReason = "stress run finished"
    package var heartbeatSequence: UInt64 { UInt64(localStep) }
    package var welcomePayload: WelcomePayload {
        WelcomePayload(configJSON: welcome?.configJSON ?? [], configHash: welcome?.configHash ?? 0, parameterVersion: 0)
    }

    package func refusal(ofReady join: Join) -> (code: RejectCode, message: String)? {
        guard join.dataFingerprint != fingerprint else { return nil }
        return (.dataMismatch, String(format: "local worker's gradient fingerprint %016llx differs from the agent's %016llx", join.dataFingerprint, fingerprint))
    }

    package let childCommand = "stress-worker"
    package var childArguments: [String] {
        ["--frame-bytes", String(64 << 20)] + (gradientPool.map { ["--shared-gradients", $0.name] } ?? [])
    }

    /// Local work names the global step and shards, always fp32 single shards (the agent sums).
    package func work(for assignment: WorkAssignment, member: Member) -> Work {
        let work = self.work!
        return Work(step: work.step, epoch: 0, stepInEpoch: work.stepInEpoch, parameterVersion: work.parameterVersion,
                    shards: assignment.shards.map(UInt32.init), shardCount: work.shardCount, gradientDType: .fp32,
                    parameters: assignment.includeParameters ? parameterPayload : nil)
    }

    package func delivered(_ work: Work, to member: Member) {}

    package func machineStep(ofWire step: UInt64) -> Int {
        guard let work, work.step == step else { return -1 }
        return localStep
    }

    package func accept(_ gradient: Gradient, from member: Member) -> GradientIntake<Held> {
        guard gradient.span == 1, gradient.dtype == .fp32 else {
            return .invalid("local worker \(member.id) sent \(gradient.span) shards as \(gradient.dtype); the agent asks for single fp32 shards")
        }
        let target = buffer()
        let byteCount = count * 4
        if gradient.sharedSlot != Gradient.inline {
            let slot = Int(gradient.sharedSlot), owner = UInt32(bitPattern: member.pid)
            guard let pool = gradientPool, pool.bytes(slot: slot, byteCount: byteCount) != nil, pool.owner(ofSlot: slot) == owner else {
                return .invalid("shared-memory gradient (slot \(gradient.sharedSlot)) from local worker \(member.id), which holds no such slot")
            }
            let crc = pool.copy(slot: slot, byteCount: byteCount, into: UnsafeMutableRawPointer(target.values.baseAddress!))
            _ = pool.release(slot: slot, owner: owner)
            guard crc == gradient.sharedCRC else {
                return .corrupt("corrupted shared-memory gradient for step \(gradient.step) shard \(gradient.shard) (checksum mismatch)")
            }
        } else {
            guard gradient.payload.elementCount(as: .fp32) == count else {
                return .invalid("gradient from local worker \(member.id) with \(gradient.payload.elementCount(as: .fp32)) values, expected \(count)")
            }
            gradient.payload.decode(as: .fp32, into: target.values)
        }
        return .accepted(Held(buffer: target))
    }

    /// Released in shard order: each shard goes into its node's sum; a finished node goes up.
    package func aggregate(_ held: Held, _ aggregation: Aggregation) {
        guard nodeIndex < nodes.count, var fold = nodeFold, fold.covered == aggregation.shard else {
            sendError = RuntimeError.cluster("stress agent: shard \(aggregation.shard) released out of its node")
            return
        }
        let n = count
        fold.push(aggregation.shards, held.buffer) { left, right in
            let l = left.values.baseAddress!, r = right.values.baseAddress!
            for j in 0..<n { l[j] += r[j] }
            spare.append(right)
        }
        nodeFold = fold
        guard let sum = fold.result else { return }
        sendNode(nodes[nodeIndex], values: sum)
        spare.append(sum)
        nodeIndex += 1
        if nodeIndex < nodes.count { nodeFold = TreeFold(tree: fold.tree, node: nodes[nodeIndex]) }
    }

    package func auditDiffers(_ a: Held, _ b: Held, _ pair: AuditPair) -> Bool { false }
}
