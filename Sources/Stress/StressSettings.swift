#if canImport(Glibc)
import Glibc
#endif
import Cluster
import Foundation
import Transport
import WireProtocol

/// What `chorus stress` runs: cluster shape, gradient size, faults and wire format.
public struct StressSettings: Sendable {
    /// Local worker processes (N), 1…256.
    public var workers = 4
    /// Elements per gradient (P).
    public var parameters = 1_000_000
    /// Steps to aggregate (K).
    public var steps = 100
    /// Shards per step (S); default N.
    public var shards: Int?
    /// Gradient wire format.
    public var wireDType: WireDType = .fp32
    /// Faults to inject; `worker=` is the worker slot 0…N−1 (a restarted worker keeps its slot;
    /// with host agents, the agent's slot).
    public var faults: [FaultSpec] = []
    /// Local workers behind each of the N workers, which are then host agents (0: plain workers).
    public var localWorkers = 0
    /// Faults of every agent's local workers; `worker=` is the local slot 0…localWorkers−1.
    public var localFaults: [FaultSpec] = []
    /// Endpoint to bind; default an ipc socket in /tmp.
    public var endpoint: String?
    /// Shards in flight beyond the next one to aggregate; default min(S, 4), which keeps the
    /// coordinator's memory within 8 × P × 4 bytes + 64 MiB.
    public var reorderWindow: Int?
    /// Seed of the synthetic gradients.
    public var seed: UInt64 = 1
    /// Heartbeat interval both ways, in milliseconds.
    public var heartbeatMs = 250
    /// A worker silent this long is evicted, in milliseconds.
    public var timeoutMs = 5_000
    /// Floor of the adaptive straggler deadline, in milliseconds (a dropped result is recomputed after it).
    public var stragglerMinimumMs = 300
    /// Largest payload frame in bytes; default 64 MiB, so gradients up to 16 M fp32 values travel
    /// as one frame and are summed in place (training's default, 4 MiB, costs a reassembly copy).
    public var frameBytes = 64 << 20
    /// Whether local workers write gradients into a shared-memory pool (false: every gradient
    /// over the socket, `--no-shm`). The pool is the same-host path training uses.
    public var sharedMemory = true
    /// Slots of that pool, 1…16; its size, not the number of workers, bounds its memory.
    public var sharedSlots = StressSettings.defaultSharedSlots
    /// Default pool size: four gradients. Results are summed in place from their slots, so a
    /// slot is held only until its result is added (longer when it arrived out of order).
    public static let defaultSharedSlots = 4
    /// Measure raw libzmq PUSH/PULL with the same message size before the run, for the ratio.
    public var compareRaw = false

    public init() {}

    /// The shard count in effect.
    public var shardCount: Int { shards ?? workers }
    /// The reorder window in effect.
    public var window: Int { min(reorderWindow ?? 4, shardCount) }
    /// Bytes of one contribution on the wire.
    public var payloadBytes: Int { parameters * wireDType.byteWidth }
    /// ⌈log₂ S⌉: the shard tree's depth, the partial sums the coordinator may hold beyond one.
    public var treeDepth: Int { var depth = 0; while (1 << depth) < shardCount { depth += 1 }; return depth }
    /// The coordinator's memory bound: the 8 × P × 4 bytes + 64 MiB, plus one P-float
    /// partial sum per level of the shard tree.
    public var memoryBound: Int { (8 + treeDepth) * parameters * 4 + (64 << 20) }
    /// Whether the coordinator makes a shared-memory pool (host agents stand for other hosts: socket only).
    public var usesSharedPool: Bool { sharedMemory && localWorkers == 0 }

    /// Bytes the coordinator may hold at once: the sum, the window's results (plus one
    /// reassembly copy), the scratch blocks and a fixed allowance for the runtime.
    public var coordinatorEstimate: Int {
        (1 + treeDepth) * parameters * 4 + (window + 2 + (usesSharedPool ? sharedSlots : 0)) * payloadBytes + (40 << 20)
    }

    /// Bytes one worker holds: a payload being sent, one being built, the runtime.
    public var workerEstimate: Int { 2 * payloadBytes + parameters * 4 + (24 << 20) }

    /// Throws ``RuntimeError/invalidSetting(_:)`` naming the first impossible setting.
    public func validate(availableMemory: Int? = StressSettings.availableMemory()) throws {
        func fail(_ text: String) throws -> Never { throw RuntimeError.invalidSetting(text) }
        if workers < 1 || workers > 256 { try fail("--workers \(workers): must be between 1 and 256") }
        if localWorkers < 0 || localWorkers > 64 { try fail("--local-workers \(localWorkers): must be between 0 and 64 (0: plain workers)") }
        if localWorkers == 0, let fault = localFaults.first { try fail("--local-fault \(fault): needs --local-workers (host agents)") }
        for fault in localFaults where fault.worker >= localWorkers {
            try fail("--local-fault \(fault): worker=\(fault.worker) but each agent has only \(localWorkers) local workers (slots 0…\(localWorkers - 1))")
        }
        if parameters < 1 { try fail("--params \(parameters): must be at least 1") }
        if steps < 1 { try fail("--steps \(steps): must be at least 1") }
        if shardCount < 1 { try fail("--shards \(shardCount): must be at least 1") }
        if let reorderWindow, reorderWindow < 1 { try fail("--window \(reorderWindow): must be at least 1") }
        if sharedSlots < 1 || sharedSlots > SharedGradients.maximumSlots {
            try fail("--shm-slots \(sharedSlots): must be between 1 and \(SharedGradients.maximumSlots) (--no-shm turns the pool off)")
        }
        if payloadBytes > WireCodec.Limits.payloadBytes {
            try fail("--params \(parameters): a \(dtypeName) gradient of \(payloadBytes) bytes exceeds the wire limit of \(WireCodec.Limits.payloadBytes) bytes")
        }
        if frameBytes < 4096 || Int64(frameBytes) > ZMQMessageTransport.defaultMaxMessageSize {
            try fail("--frame-bytes \(frameBytes): must be between 4096 and \(ZMQMessageTransport.defaultMaxMessageSize)")
        }
        if heartbeatMs < 10 || timeoutMs <= heartbeatMs { try fail("--heartbeat-ms must be ≥ 10 and below --timeout-ms (got \(heartbeatMs) and \(timeoutMs))") }
        for fault in faults where fault.worker >= workers {
            try fail("--fault \(fault): worker=\(fault.worker) but there are only \(workers) workers (slots 0…\(workers - 1))")
        }
        if let available = availableMemory {
            let need = coordinatorEstimate + workers * workerEstimate * (localWorkers > 0 ? localWorkers + 2 : 1)
            if need > available {
                try fail("--params \(parameters) with --workers \(workers): needs about \(gib(need)) (coordinator \(gib(coordinatorEstimate)), "
                         + "each worker \(gib(workerEstimate))) but only \(gib(available)) of memory is available; lower --params or --workers")
            }
        }
        let descriptors = StressSettings.raiseDescriptorLimit()
        if descriptors < 64 + 4 * workers * max(localWorkers, 1) {
            try fail("--workers \(workers): needs about \(64 + 4 * workers * max(localWorkers, 1)) file descriptors, the limit (ulimit -n) is \(descriptors)")
        }
    }

    var dtypeName: String { wireDType.description }

    func gib(_ bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }

    /// MemAvailable from /proc/meminfo, in bytes (nil where unreadable).
    public static func availableMemory() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kib = Int(fields[1]) { return kib * 1024 }
        }
        return nil
    }

    /// Raises the soft open-file limit to the hard limit; returns the soft limit now in force.
    @discardableResult
    public static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur == rlim_t.max ? Int.max : Int(clamping: limit.rlim_cur)
    }
}
