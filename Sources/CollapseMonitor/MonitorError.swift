/// Why the collapse monitor rejected its settings or a signals payload.
public enum MonitorError: Error, Equatable, CustomStringConvertible {
    /// A `monitor.thresholds` key that names no threshold; `known` lists the valid names.
    case unknownThreshold(name: String, known: [String])
    /// A threshold value outside its valid range.
    case invalidThreshold(name: String, value: Double, requirement: String)
    /// A `ShardSignals` payload that cannot be decoded (truncated, wrong magic or version, bad text).
    case malformedSignals(reason: String)

    /// One line naming the key or the defect.
    public var description: String {
        switch self {
        case let .unknownThreshold(name, known):
            return "monitor.thresholds: unknown threshold \"\(name)\" (expected one of \(known.joined(separator: ", ")))"
        case let .invalidThreshold(name, value, requirement):
            return "monitor.thresholds.\(name): \(value) \(requirement)"
        case let .malformedSignals(reason):
            return "shard signals: malformed payload: \(reason)"
        }
    }
}
