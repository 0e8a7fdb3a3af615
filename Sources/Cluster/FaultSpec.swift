/// A fault to inject, from `--fault KIND:key=value,…` (CONTRACT.md).
public struct FaultSpec: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// SIGKILL the worker when it receives work for `step`.
        case kill
        /// The worker sleeps `ms` before sending each result.
        case slow
        /// Garble a share `rate` of the worker's gradient payloads after checksumming.
        case corrupt
        /// The worker computes wrong gradients (bits flipped as they are computed) and checksums
        /// them as correct, like a host with bad memory: only cross-replica checks can tell.
        case bitflip
        /// Bits flip in the gradient after the worker computed (and measured) it and before it is
        /// checksummed: bad memory between the computation and the send. The coordinator (or host
        /// agent) sees the norm change and has the shard recomputed.
        case memflip
        /// Drop a share `rate` of the worker's result messages (never sent).
        case drop
        /// Delay a share `rate` of results by `ms`.
        case delay
    }
    public var kind: Kind
    public var worker: Int
    public var step: Int?
    public var milliseconds: Int?
    public var rate: Double?
    /// Repeat a kill every `every` steps (stress tests: one worker killed every 20 steps).
    public var every: Int?

    public var description: String {
        var parts = ["worker=\(worker)"]
        if let step { parts.append("step=\(step)") }
        if let milliseconds { parts.append("ms=\(milliseconds)") }
        if let rate { parts.append("rate=\(rate)") }
        if let every { parts.append("every=\(every)") }
        return "\(kind.rawValue):" + parts.joined(separator: ",")
    }

    /// Parses `kill:worker=1,step=50` and friends; errors name the bad part.
    public static func parse(_ text: String) throws -> FaultSpec {
        let pieces = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let kind = Kind(rawValue: pieces.first ?? "") else {
            throw RuntimeError.invalidSetting("--fault \(text): unknown kind \"\(pieces.first ?? "")\" (expected \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var values: [String: String] = [:]
        for pair in (pieces.count > 1 ? pieces[1] : "").split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, ["worker", "step", "ms", "rate", "every"].contains(kv[0]) else {
                throw RuntimeError.invalidSetting("--fault \(text): bad part \"\(pair)\" (expected worker=N, step=N, ms=N, rate=X or every=N)")
            }
            values[kv[0]] = kv[1]
        }
        func int(_ key: String) throws -> Int? {
            guard let raw = values[key] else { return nil }
            guard let value = Int(raw), value >= 0 else { throw RuntimeError.invalidSetting("--fault \(text): \(key)=\(raw) is not a non-negative integer") }
            return value
        }
        guard let worker = try int("worker") else { throw RuntimeError.invalidSetting("--fault \(text): worker=N is required") }
        var spec = FaultSpec(kind: kind, worker: worker, step: try int("step"), milliseconds: try int("ms"), rate: nil, every: try int("every"))
        if let raw = values["rate"] {
            guard let rate = Double(raw), rate >= 0, rate <= 1 else { throw RuntimeError.invalidSetting("--fault \(text): rate=\(raw) must be between 0 and 1") }
            spec.rate = rate
        }
        switch kind {
        case .kill where spec.step == nil && spec.every == nil: throw RuntimeError.invalidSetting("--fault \(text): kill needs step=N (or every=N)")
        case .slow where spec.milliseconds == nil: throw RuntimeError.invalidSetting("--fault \(text): slow needs ms=N")
        case .corrupt, .bitflip, .memflip, .drop: if spec.rate == nil { throw RuntimeError.invalidSetting("--fault \(text): \(kind.rawValue) needs rate=X") }
        case .delay: if spec.rate == nil || spec.milliseconds == nil { throw RuntimeError.invalidSetting("--fault \(text): delay needs rate=X and ms=N") }
        default: break
        }
        return spec
    }
}
