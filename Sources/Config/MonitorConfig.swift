/// What the collapse monitor does when it detects a failure, and how often it looks.
public struct MonitorConfig: Equatable, Sendable {
    /// The action taken on a detected collapse.
    public enum Policy: String, Equatable, Sendable, CaseIterable {
        /// Record an alert and keep training (default).
        case warn
        /// Stop the run with status `stopped` (exit status 0).
        case stop
        /// Restore the last healthy checkpoint and continue.
        case rollback
    }

    /// The action on a detected collapse (default `warn`).
    public var policy: Policy
    /// Check every `interval` steps (≥ 1, default 1).
    public var interval: Int
    /// Named threshold overrides (e.g. `"dead_relu_fraction": 0.9`); names are validated by the monitor.
    public var thresholds: [String: Double]

    /// Creates a monitor config; defaults as in the config file.
    public init(policy: Policy = .warn, interval: Int = 1, thresholds: [String: Double] = [:]) {
        self.policy = policy
        self.interval = interval
        self.thresholds = thresholds
    }

    static func read(_ reader: ValueReader) throws -> MonitorConfig {
        let object = try reader.object(allowed: ["policy", "interval", "thresholds"])
        let thresholds = try object.value("thresholds", default: [:]) { r -> [String: Double] in
            guard case .object(let members) = r.value else { throw r.wrongType("an object of named numbers") }
            _ = try r.object(allowed: members.map(\.key))  // rejects duplicate names
            var result: [String: Double] = [:]
            for (key, value) in members { result[key] = try r.child(key, value).double() }
            return result
        }
        return MonitorConfig(
            policy: try object.value("policy", default: .warn) {
                try $0.name(kind: "monitor policy", Policy.allCases.map { ($0.rawValue, $0) })
            },
            interval: try object.value("interval", default: 1) { try $0.int(atLeast: 1) },
            thresholds: thresholds)
    }

    /// The canonical JSON form.
    var json: JSONValue {
        .object([
            ("policy", .string(policy.rawValue)), ("interval", .int(interval)),
            ("thresholds", .object(thresholds.map { ($0.key, JSONValue.double($0.value)) })),
        ])
    }
}
