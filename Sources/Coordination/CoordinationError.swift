/// Everything that can go wrong in the coordination layer, each case carrying what the user needs to fix it.
public enum CoordinationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A configuration field holds a value the state machines cannot work with.
    case invalidConfiguration(field: String, value: String, expected: String)
    /// Fewer than `expected` workers joined within `startTimeout` of the coordinator starting.
    case startTimeout(joined: Int, expected: Int, waitedNanoseconds: UInt64)
    /// No worker was alive for `noWorkerTimeout` while training was running.
    case noWorkers(forNanoseconds: UInt64, step: Int?)
    /// `beginStep` was called before `expect` workers had joined.
    case notStarted(joined: Int, expected: Int)
    /// `beginStep` was called while another step was still being aggregated.
    case stepInProgress(current: Int, requested: Int)
    /// `beginStep` was called with a step number not after the previous one.
    case stepNotIncreasing(previous: Int, requested: Int)
    /// `beginStep` was called after the run finished or failed.
    case runOver(phase: String)

    /// One human line naming the field, value or condition at fault.
    public var description: String {
        switch self {
        case let .invalidConfiguration(field, value, expected):
            return "coordination setting '\(field)' is \(value); expected \(expected)"
        case let .startTimeout(joined, expected, waited):
            return "only \(joined) of \(expected) expected workers joined within \(formatSeconds(waited)); "
                + "start more workers or lower --expect"
        case let .noWorkers(duration, step):
            let at = step.map { " during step \($0)" } ?? ""
            return "no live workers for \(formatSeconds(duration))\(at); every worker died or left"
        case let .notStarted(joined, expected):
            return "step begun with \(joined) of \(expected) expected workers joined; wait for startTraining"
        case let .stepInProgress(current, requested):
            return "step \(requested) begun while step \(current) is still being aggregated"
        case let .stepNotIncreasing(previous, requested):
            return "step \(requested) begun after step \(previous); step numbers must increase"
        case let .runOver(phase):
            return "step begun after the run \(phase)"
        }
    }
}

/// Formats nanoseconds as seconds for messages: "5 s", "2.5 s", "0.25 s".
func formatSeconds(_ nanoseconds: UInt64) -> String {
    let hundredths = (nanoseconds + 5_000_000) / 10_000_000
    let whole = hundredths / 100
    let fraction = hundredths % 100
    if fraction == 0 { return "\(whole) s" }
    if fraction % 10 == 0 { return "\(whole).\(fraction / 10) s" }
    return "\(whole).\(fraction < 10 ? "0" : "")\(fraction) s"
}

extension Duration {
    /// The duration in whole nanoseconds, clamped at zero (state machines keep time as `UInt64` nanoseconds).
    var clampedNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }
}
