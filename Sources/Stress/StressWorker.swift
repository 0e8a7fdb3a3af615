#if canImport(Glibc)
import Glibc
#endif
import Cluster
import Foundation
import Transport
import WireProtocol

/// Options of the hidden `chorus stress-worker` subcommand (started by `chorus stress`).
public struct StressWorkerOptions {
    /// The coordinator's endpoint.
    public var connect: String
    /// The worker id to ask for (−1: any).
    public var workerID = -1
    /// Exit when this process is no longer the parent.
    public var parentPID: Int32?
    /// Heartbeat interval, milliseconds.
    public var heartbeatMs = 250
    /// Exit when the coordinator is silent this long, milliseconds.
    public var timeoutMs = 5_000
    /// Largest payload frame, bytes.
    public var frameBytes = 64 << 20
    /// Faults this worker injects (slow, corrupt, bitflip, drop, delay).
    public var faults: [FaultSpec] = []
    /// The coordinator's shared-memory gradient pool (`/chorus-…-g`), when it made one.
    public var sharedGradients: String?

    /// Options with defaults for `connect`.
    public init(connect: String) { self.connect = connect }
}

/// One stress worker: the real worker's protocol (hello-join, welcome, ready-join, work ↔
/// gradients, heartbeats, leave) with the gradient computation replaced by
/// ``StressGradients``, and the same fault injection as `chorus worker`.
public final class StressWorker: WorkerWorkload {
    let options: StressWorkerOptions
    var host: WorkerHost<StressWorker>!
    var gradients: StressGradients?
    var faults: ResultFaults
    var scratch: UnsafeMutableBufferPointer<Float>?
    /// Payload buffers for gradients sent over the socket, reused.
    var payloads: [PayloadBuffer] = []
    var gradientPool: SharedGradients?
    let pid = UInt32(bitPattern: getpid())
    package let logName = "chorus stress-worker"

    /// Connects the DEALER socket.
    public convenience init(options: StressWorkerOptions) throws {
        let (context, transport) = try ClusterSocket.connectWorker(name: "chorus stress-worker", endpoint: options.connect, identityPrefix: "s",
                                                                   heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs)
        self.init(options: options, transport: transport, owner: context)
    }

    /// A stress worker over any transport (in-memory in tests), reading time from `clock`.
    package init(options: StressWorkerOptions, transport: MessageTransport, owner: AnyObject? = nil, clock: @escaping () -> UInt64 = monotonicNanos) {
        self.options = options
        faults = ResultFaults(options.faults)
        host = WorkerHost(workload: self, transport: transport, owner: owner, heartbeatMs: options.heartbeatMs, timeoutMs: options.timeoutMs,
                          parentPID: options.parentPID, identity: WorkerIdentity(requestedWorkerID: options.workerID), clock: clock)
        host.quiet = true
    }

    deinit { scratch?.deallocate() }

    /// A payload buffer libzmq no longer holds (sends are zero-copy), so pages are reused
    /// instead of faulted in afresh for every gradient; at most three are kept.
    func reusablePayload(byteCount: Int) -> PayloadBuffer {
        payloads.removeAll { $0.byteCount != byteCount }
        for index in payloads.indices where isKnownUniquelyReferenced(&payloads[index]) { return payloads[index] }
        let fresh = PayloadBuffer(byteCount: byteCount)
        if payloads.count < 3 { payloads.append(fresh) }
        return fresh
    }

    /// Runs until the coordinator ends the run; returns the exit status.
    public func run() -> Int32 { host.run() }

    package func prepare(_ welcome: Welcome) throws -> UInt64 {
        let description: StressDescription
        do { description = try StressDescription(json: welcome.configJSON) } catch {
            throw WorkerExit(status: 2, message: "the coordinator's welcome is not a stress run we can serve (\(error)); exiting")
        }
        let generator = StressGradients(seed: description.seed, count: description.params)
        gradients = generator
        if let name = options.sharedGradients, gradientPool == nil {
            gradientPool = try SharedGradients.open(name: name, gradientBytes: description.params * 2)
        }
        return generator.fingerprint
    }

    package func compute(_ work: Work, runID: UInt64, send: ([Frame]) throws -> Void) throws {
        guard let gradients else { return }
        for shard in work.shards { try compute(work: work, shard: Int(shard), gradients: gradients, runID: runID, send: send) }
    }

    func compute(work: Work, shard: Int, gradients: StressGradients, runID: UInt64, send: ([Frame]) throws -> Void) throws {
        let started = monotonicNanos()
        let count = gradients.count
        let dtype = work.gradientDType
        let byteCount = count * dtype.byteWidth
        // Same host: write straight into a claimed slot of the coordinator's pool; when none is
        // free (or there is no pool), into a payload that travels over the socket.
        let claimed = byteCount <= (gradientPool?.slotBytes ?? -1) ? gradientPool?.claim(owner: pid) : nil
        let payload = claimed == nil ? reusablePayload(byteCount: byteCount) : nil
        let destination = claimed?.bytes.baseAddress ?? payload!.baseAddress
        if dtype == .fp32 {
            gradients.fill(step: Int(work.step), shard: shard, into: UnsafeMutableBufferPointer(start: destination.assumingMemoryBound(to: Float.self), count: count))
        } else {
            if scratch == nil { scratch = .allocate(capacity: max(count, 1)) }
            gradients.fill(step: Int(work.step), shard: shard, into: scratch!)
            let half = UnsafeMutableBufferPointer(start: destination.assumingMemoryBound(to: UInt16.self), count: count)
            if dtype == .fp16 { HalfPrecision.floatToHalf(UnsafeBufferPointer(scratch!), into: half) } else {
                HalfPrecision.floatToBFloat16(UnsafeBufferPointer(scratch!), into: half)
            }
        }
        let width = dtype.byteWidth
        let (drop, corrupt) = faults.apply(count: count, width: width, step: Int(work.step)) { index, bit in
            // Bad memory: before the checksum is computed, so only the exact check can tell.
            (destination + index * width + bit / 8).assumingMemoryBound(to: UInt8.self).pointee ^= UInt8(1 << (bit % 8))
        }
        if drop {
            if let claimed { gradientPool?.release(slot: claimed.index, owner: pid) }
            return
        }
        var slot = Gradient.inline, crc: UInt32 = 0
        if let claimed {
            slot = UInt32(claimed.index)
            crc = WireChecksum.crc32c(UnsafeRawBufferPointer(start: destination, count: byteCount))
            if corrupt { faults.garble(UnsafeMutableRawBufferPointer(start: destination, count: byteCount)) }
        }
        let gradient = Gradient(step: work.step, shard: UInt32(shard), exampleCount: 1, parameterVersion: work.parameterVersion,
                                lossSum: 0, correct: 0, dtype: dtype, computeNanos: monotonicNanos() - started,
                                payload: payload ?? PayloadBuffer(byteCount: 0), sharedSlot: slot, sharedCRC: crc)
        var frames = WireCodec.encode(.gradient(gradient), runID: runID, maxFrameBytes: options.frameBytes)
        if corrupt && claimed == nil { faults.garble(&frames) }
        try send(frames)
    }
}

/// What a stress welcome carries: `{"stress": {"params": P, "seed": S, "shards": S}}`.
struct StressDescription: Codable, Equatable {
    var params: Int
    var seed: UInt64
    /// Shards per step (what a host agent plans its local steps over); absent from older coordinators.
    var shards: Int?

    /// The most parameters a stress gradient can have: an fp32 payload at the wire's limit.
    static let maximumParams = WireCodec.Limits.payloadBytes / 4

    init(params: Int, seed: UInt64, shards: Int? = nil) { self.params = params; self.seed = seed; self.shards = shards }

    init(json: [UInt8]) throws {
        guard let description = try JSONDecoder().decode([String: StressDescription].self, from: Data(json))["stress"] else {
            throw RuntimeError.invalidSetting("not a stress welcome")
        }
        // The count sizes every buffer and fill (unchecked arithmetic in release): the
        // coordinator's own limit (StressSettings.validate), checked again on the worker's side.
        guard description.params >= 1, description.params <= Self.maximumParams else {
            throw RuntimeError.invalidSetting("params \(description.params): a stress gradient has 1…\(Self.maximumParams) parameters")
        }
        self = description
    }

    var json: [UInt8] { Array((try? JSONEncoder().encode(["stress": self])) ?? Data()) }
}
