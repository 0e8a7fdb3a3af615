#if canImport(Glibc)
import Glibc
#endif
import CollapseMonitor
import Config
import Data
import Foundation
import NeuralNet
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
    /// For tests: read this data instead of what the coordinator's config names.
    public var dataOverride: DataConfig.Source?
    public init(connect: String) { self.connect = connect }
}

/// One worker process: joins the coordinator, loads its own copy of the data, and computes
/// the shards it is given with the parameters it is sent, until told to leave.
///
/// Lifecycle (docs/protocol.md): hello-join (run id 0) → welcome with the config → load
/// data, build the model → ready-join (run id, data fingerprint) → work ↔ gradients, with
/// heartbeats both ways → leave. Exits with a clear message when the coordinator is silent
/// past the timeout or refuses it.
public final class WorkerRunner {
    let options: WorkerOptions
    let connection: WorkerConnection
    var runID: UInt64 { connection.runID }
    var workerID: UInt32 = 0
    var computer: ShardComputer?
    var contribution: TensorStorage?
    var parameterVersion: UInt64 = .max
    var faults: ResultFaults
    var collector: SignalCollector?
    var probe: ProbeBatch?
    var shared: SharedParameters?
    var gradientPool: SharedGradients?
    var lossKind: LossKind = .crossEntropy

    public init(options: WorkerOptions) throws {
        self.options = options
        faults = ResultFaults(options.faults)
        connection = try WorkerConnection(name: "chorus worker", connect: options.connect, identityPrefix: "w", heartbeatMs: options.heartbeatMs,
                                          timeoutMs: options.timeoutMs, parentPID: options.parentPID, curveServerKey: options.curveServerKey)
    }

    func log(_ text: String) { if !options.quiet { logLine("chorus worker \(workerID): \(text)") } }

    func join(fingerprint: UInt64) throws {
        let join = Join(workerName: ProcessInfo.processInfo.hostName, buildVersion: options.pretendBuild ?? BuildInfo.version,
                        protocolVersion: options.pretendProtocolVersion ?? WireProtocol.protocolVersion,
                        dataFingerprint: fingerprint, pid: getpid(), requestedWorkerID: Int32(options.workerID))
        try connection.send(.join(join))
    }

    /// Runs until the coordinator ends the run; returns the process exit status.
    public func run() -> Int32 {
        connection.run(start: { try join(fingerprint: 0) }, handle: handle)
    }

    func handle(_ message: Message, runID messageRunID: UInt64) throws -> Int32? {
        switch message {
        case .welcome(let welcome):
            connection.runID = messageRunID
            workerID = welcome.workerID
            if welcome.timeoutMs > 0 { connection.silenceLimitMs = Int(welcome.timeoutMs) }
            var config = try RunConfig.parse(jsonData: Data(welcome.configJSON), source: "coordinator's config")
            if let override = options.dataOverride { config.data.source = override }
            let (split, _) = try loadData(config.data)
            let model = try Model(config: config.model, seed: config.training.seed)
            let plan = BatchPlan(exampleCount: split.train.count, batchSize: config.training.batchSize, seed: config.training.seed)
            computer = ShardComputer(model: model, train: split.train, plan: plan, loss: config.loss, seed: config.training.seed)
            contribution = TensorStorage(count: model.contributionCount)
            if let name = options.sharedParameters { shared = try SharedParameters.open(name: name, count: model.parameters.count) }
            if let name = options.sharedGradients { gradientPool = try SharedGradients.open(name: name, gradientBytes: model.contributionCount * 4) }
            let saturation = config.monitor.thresholds["saturation_threshold"] ?? 5
            collector = SignalCollector(saturationThreshold: Float(saturation), lossKind: config.loss)
            probe = ProbeBatch(train: split.train, seed: config.training.seed)
            lossKind = config.loss
            log("welcomed into run \(runID); \(model.parameters.count) parameters, \(split.train.count) examples")
            try join(fingerprint: split.fingerprint())
            connection.lastHeard = monotonicNanos()  // loading may take a while; the silence clock starts now
        case .reject(let reject):
            logLine("chorus worker: refused by the coordinator: \(reject.message)")
            return 2
        case .leave(let leave):
            log("coordinator says: \(leave.reason)")
            return 0
        case .heartbeat:
            break
        case .work(let work):
            guard messageRunID == runID, let computer, let contribution else { return nil }
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
            guard parameterVersion == work.parameterVersion else {
                log("work for parameter version \(work.parameterVersion) but holding \(parameterVersion); ignoring")
                return nil
            }
            // The probe result rides with every shard's statistics: the coordinator keeps one per
            // worker and step, whichever shard it aggregates (an audit copy is not aggregated).
            let probeResult = work.flags.contains(.probe) ? probe?.evaluate(computer.model, loss: lossKind) : nil
            for shard in work.shards {
                try compute(work: work, shard: Int(shard), computer: computer, contribution: contribution, probe: probeResult)
            }
        default:
            break
        }
        return nil
    }

    func compute(work: Work, shard: Int, computer: ShardComputer, contribution: TensorStorage, probe: ProbeSignals?) throws {
        let started = monotonicNanos()
        var (outcome, signals) = computer.compute(globalStep: Int(work.step), shard: shard, shards: Int(work.shardCount),
                                                  into: contribution.pointer, collector: collector)
        signals?.probe = probe
        let count = computer.model.contributionCount
        let (drop, corrupt) = faults.apply(count: count) { index, bit in
            // Bad memory: before checksumming, so only cross-replica checks notice.
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
        let gradient = Gradient(step: work.step, shard: UInt32(shard), exampleCount: UInt32(outcome.count),
                                parameterVersion: work.parameterVersion, lossSum: outcome.lossSum, correct: UInt32(outcome.correct),
                                dtype: work.gradientDType, computeNanos: monotonicNanos() - started,
                                statistics: signals?.encode() ?? [], payload: payload, sharedSlot: slot, sharedCRC: crc)
        var frames = WireCodec.encode(.gradient(gradient), runID: runID)
        if corrupt && slot == Gradient.inline { faults.garble(&frames) }
        try connection.send(frames)
    }
}
