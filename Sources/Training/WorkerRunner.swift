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
import Signals
import TensorCore
import Transport
import WireProtocol

/// Options of `chorus worker`.
public struct WorkerOptions {
    public var connect: String
    public var workerID: Int = -1
    public var parentPID: Int32?
    public var heartbeatMs = 500
    public var timeoutMs = 5_000
    /// How long a worker waits for a coordinator that is not there yet, or looks for one that
    /// went silent (it may come back from a checkpoint) before exiting; nil: exit at `timeoutMs`.
    public var coordinatorTimeoutMs: Int? = 60_000
    public var faults: [FaultSpec] = []
    public var quiet = false
    /// For tests: claim another protocol version or build in the join message.
    public var pretendProtocolVersion: UInt16?
    public var pretendBuild: String?
    /// The coordinator's CURVE public key: the connection is encrypted and the coordinator
    /// authenticated (the worker uses a fresh key pair of its own).
    public var curveServerKey: String?
    /// The coordinator's shared-memory parameter segment (local workers of `train --workers N`).
    public var sharedParameters: String?
    /// The coordinator's shared-memory gradient pool (local workers).
    public var sharedGradients: String?
    /// For tests: read this data instead of what the coordinator's config names (and the
    /// `--data` text that named it, for a host agent's local workers).
    public var dataOverride: DataConfig.Source?
    public var dataArgument: String?
    /// `--local-workers N` (N ≥ 1): run as a host agent with N local worker processes
    /// (``HostAgent``); `faults` then name local worker slots.
    public var localWorkers = 0
    /// A host agent's faults on the node sums it sends up (`--agent-fault`).
    public var agentFaults: [FaultSpec] = []
    /// A host agent's peer endpoint for chunk owners (`--peer-bind tcp://IP:PORT`): bound before it
    /// joins; with it the agent can own chunks when the coordinator runs `--chunk-owners`.
    public var peerBind: String?
    public init(connect: String) { self.connect = connect }
}

/// One worker process: joins the coordinator, loads its own copy of the data, and computes
/// the shards it is given with the parameters it is sent, until told to leave.
///
/// Lifecycle (docs/protocol.md), carried out by a ``WorkerHost``: hello-join (run id 0) →
/// welcome with the config → load data, build the model (``prepare(_:)``) → ready-join (run id,
/// data fingerprint) → work ↔ gradients (``compute(_:runID:send:)``), with heartbeats both
/// ways → leave.
public final class WorkerRunner: WorkerWorkload {
    let options: WorkerOptions
    var host: WorkerHost<WorkerRunner>!
    var workerID: UInt32 = 0
    var computer: ShardComputer?
    /// Sums by node (a single shard is a node too), each with its own buffers: a worker holds
    /// the same nodes step after step.
    var nodeSums: [Range<Int>: ContributionSum] = [:]
    var parameterVersion: UInt64 = .max
    var faults: ResultFaults
    var collector: SignalCollector?
    var probe: ProbeBatch?
    var shared: SharedParameters?
    var gradientPool: SharedGradients?
    var lossKind: LossKind = .crossEntropy
    /// The config hash and data fingerprint this worker loaded.
    var prepared: (configHash: UInt64, fingerprint: UInt64)?
    package let logName = "chorus worker"

    /// Connects to `options.connect` over ZeroMQ.
    public convenience init(options: WorkerOptions) throws {
        let (context, transport) = try ClusterSocket.connectWorker(name: "chorus worker", endpoint: options.connect, identityPrefix: "w",
                                                                   heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs, curveServerKey: options.curveServerKey)
        self.init(options: options, transport: transport, owner: context)
    }

    /// A worker over any transport (in-memory in tests), reading time from `clock`.
    package init(options: WorkerOptions, transport: MessageTransport, owner: AnyObject? = nil, clock: @escaping () -> UInt64 = monotonicNanos) {
        self.options = options
        faults = ResultFaults(options.faults)
        var identity = WorkerIdentity(requestedWorkerID: options.workerID)
        if let build = options.pretendBuild { identity.buildVersion = build }
        if let version = options.pretendProtocolVersion { identity.protocolVersion = version }
        host = WorkerHost(workload: self, transport: transport, owner: owner, heartbeatMs: options.heartbeatMs,
                          timeoutMs: options.timeoutMs, reconnectTimeoutMs: options.coordinatorTimeoutMs, parentPID: options.parentPID,
                          identity: identity, clock: clock)
        host.quiet = options.quiet
    }

    func log(_ text: String) { if !options.quiet { logLine("chorus worker \(workerID): \(text)") } }

    /// Runs until the coordinator ends the run; returns the process exit status.
    public func run() -> Int32 { host.run() }

    package func prepare(_ welcome: Welcome) throws -> UInt64 {
        workerID = welcome.workerID
        if !welcome.kernel.isEmpty {
            // The run's kernel, whatever this host's environment says (re-executes when it differs).
            do { try BLASEnvironment.adopt(kernel: welcome.kernel) } catch {
                throw WorkerExit(status: 2, message: "refusing to join: \(error)")
            }
        }
        if let prepared, prepared.configHash == welcome.configHash, computer != nil {
            // The same run's coordinator again (restarted from a checkpoint): data and model are loaded.
            log("welcomed again; same config")
            return prepared.fingerprint
        }
        var config = try RunConfig.parse(jsonData: Data(welcome.configJSON), source: "coordinator's config")
        if let override = options.dataOverride { config.data.source = override }
        let (split, _) = try loadData(config.data)
        let model = try Model(config: config.model, seed: config.training.seed)
        // The coordinator validated its own data; this host's may differ (--data), and the labels
        // index the model's outputs (an unchecked write in release builds if they do not fit).
        try validate(model: model, loss: config.loss, data: split.train, split: "train")
        let plan = BatchPlan(exampleCount: split.train.count, batchSize: config.training.batchSize, seed: config.training.seed)
        computer = ShardComputer(model: model, train: split.train, plan: plan, loss: config.loss, seed: config.training.seed)
        nodeSums = [:]
        if let name = options.sharedParameters { shared = try SharedParameters.open(name: name, count: model.parameters.count) }
        if let name = options.sharedGradients { gradientPool = try SharedGradients.open(name: name, gradientBytes: model.contributionCount * 4) }
        let saturation = config.monitor.thresholds["saturation_threshold"] ?? 5
        collector = SignalCollector(saturationThreshold: Float(saturation), lossKind: config.loss)
        probe = ProbeBatch(train: split.train, seed: config.training.seed)
        lossKind = config.loss
        log("welcomed; \(model.parameters.count) parameters, \(split.train.count) examples")
        let fingerprint = split.fingerprint()
        prepared = (welcome.configHash, fingerprint)
        parameterVersion = .max
        return fingerprint
    }

    package func compute(_ work: Work, runID: UInt64, send: ([Frame]) throws -> Void) throws {
        guard let computer else { return }
        if work.flags.contains(.sharedParameters) {
            guard let shared else { throw RuntimeError.cluster("work names shared-memory parameters, but this worker has none") }
            if parameterVersion != work.parameterVersion {
                shared.read(version: work.parameterVersion, into: computer.model.parameters.values.pointer)
                parameterVersion = work.parameterVersion
            }
        } else if let parameters = work.parameters {
            let count = computer.model.parameters.count
            guard parameters.byteCount == count * 4 else {
                throw RuntimeError.cluster("work carries \(parameters.byteCount / 4) parameters, model has \(count)")
            }
            computer.model.parameters.load(parameters.asFloats.baseAddress!)
            parameterVersion = work.parameterVersion
        }
        // The probe result rides with every shard's statistics: the coordinator keeps one per
        // worker and step, whichever shard it aggregates (an audit copy is not aggregated).
        let probeResult = work.flags.contains(.probe) ? probe?.evaluate(computer.model, loss: lossKind) : nil
        let shards = work.shards.map(Int.init)
        guard work.shardCount >= 1, shards.allSatisfy({ $0 < Int(work.shardCount) }) else {
            throw RuntimeError.cluster("work for step \(work.step) names shards \(shards) of \(work.shardCount)")
        }
        let tree = ShardTree(count: Int(work.shardCount))
        let nodes = work.flags.contains(.sumNodes) ? tree.cover(shards: shards) : shards.map { $0..<($0 + 1) }
        for node in nodes {
            // A shard, or a node of the shard tree held whole: its sum, in the tree's order, as one gradient.
            let started = monotonicNanos()
            let sum = nodeSums[node] ?? ContributionSum(count: computer.model.contributionCount, tree: tree, node: node)
            nodeSums[node] = sum
            var shardSignals: [ShardSignals?] = []
            for shard in node {
                let buffer = sum.buffer()
                let (outcome, signals) = computeShard(shard, work: work, computer: computer, into: buffer, probe: probeResult)
                shardSignals.append(signals)
                sum.add(shards: shard..<(shard + 1), values: buffer, outcome: outcome)
            }
            let (values, outcome) = sum.result!
            // `bitflip`: the worker computes wrong values (bad memory while computing), so its
            // own measurements agree with them and only cross-replica checks can tell.
            faults.flip(.bitflip, count: values.count, step: Int(work.step)) { index, bit in
                values.pointer[index] = Float(bitPattern: values.pointer[index].bitPattern ^ (1 << UInt32(bit)))
            }
            // The norm of what is about to be sent, measured before anything else can change it:
            // the coordinator compares it with the norm of what arrives (bad memory between the
            // computation and the checksum, `memflip`, shows there).
            let sentNorm = GradientClipping.globalNorm(values.pointer, count: values.count)
            let statistics = shardSignals.map { signals -> [UInt8] in
                guard var signals else { return [] }
                signals.gradientNorm = sentNorm
                return signals.encode()
            }
            try sendContribution(values, shards: node, outcome: outcome,
                                 statistics: node.count == 1 ? statistics[0] : NodeStatistics.pack(statistics), started: started,
                                 work: work, runID: runID, send: send)
            sum.reset(recycling: values)
        }
    }

    func computeShard(_ shard: Int, work: Work, computer: ShardComputer, into contribution: TensorStorage,
                      probe: ProbeSignals?) -> (ShardOutcome, ShardSignals?) {
        var (outcome, signals) = computer.compute(globalStep: Int(work.step), shard: shard, shards: Int(work.shardCount),
                                                  into: contribution.pointer, collector: collector)
        signals?.probe = probe
        return (outcome, signals)
    }

    /// Sends the contribution of `shards` (one shard or a node sum), with this worker's faults applied.
    func sendContribution(_ contribution: TensorStorage, shards: Range<Int>, outcome: ShardOutcome, statistics: [UInt8], started: UInt64,
              work: Work, runID: UInt64, send: ([Frame]) throws -> Void) throws {
        let count = contribution.count
        let (drop, corrupt) = faults.apply(count: count, step: Int(work.step), bitflips: false) { index, bit in
            // `memflip`: bad memory after the values were measured, before checksumming.
            contribution.pointer[index] = Float(bitPattern: contribution.pointer[index].bitPattern ^ (1 << UInt32(bit)))
        }
        if drop { return }
        let values = UnsafeBufferPointer(start: contribution.pointer, count: count)
        var payload = PayloadBuffer(byteCount: 0)
        var slot = Gradient.inline, crc: UInt32 = 0
        if let written = gradientPool?.write(values, as: work.gradientDType, owner: UInt32(bitPattern: getpid())) {
            // Same host: the bytes go into a claimed shared-memory slot, the message names the
            // slot and checksum; the coordinator releases the slot once it has read it.
            slot = written.slot
            crc = written.crc
            if corrupt { faults.garble(written.bytes) }
        } else {
            // Another host, or every shared slot is taken: over the socket.
            payload = PayloadBuffer.encoding(values, as: work.gradientDType)
        }
        let gradient = Gradient(step: work.step, shard: UInt32(shards.lowerBound), exampleCount: UInt32(outcome.count),
                                parameterVersion: work.parameterVersion, lossSum: outcome.lossSum, correct: UInt32(outcome.correct),
                                dtype: work.gradientDType, computeNanos: monotonicNanos() - started,
                                statistics: statistics, payload: payload, sharedSlot: slot, sharedCRC: crc, span: UInt32(shards.count))
        var frames = WireCodec.encode(.gradient(gradient), runID: runID)
        if corrupt && slot == Gradient.inline { faults.garble(&frames) }
        try send(frames)
    }
}

/// The statistics of a node sum's shards in one blob: each shard's, in shard order, after its
/// byte count (u32, little-endian).
enum NodeStatistics {
    static func pack(_ blobs: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = []
        for blob in blobs {
            withUnsafeBytes(of: UInt32(blob.count).littleEndian) { bytes += $0 }
            bytes += blob
        }
        return bytes
    }

    /// The `count` blobs of `bytes`, or nil when it is not `count` well-formed entries.
    static func unpack(_ bytes: [UInt8], count: Int) -> [[UInt8]]? {
        var blobs: [[UInt8]] = [], offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 4 else { return nil }
            let length = Int(UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24)
            offset += 4
            guard length <= bytes.count - offset else { return nil }
            blobs.append(Array(bytes[offset..<(offset + length)]))
            offset += length
        }
        return blobs.count == count ? blobs : nil
    }
}
