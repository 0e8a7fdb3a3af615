/// The monitor's named thresholds, each overridable through `monitor.thresholds` in the
/// config. Defaults and their sources are documented in docs/collapse-monitor.md.
public struct MonitorSettings: Equatable, Sendable {
    /// Consecutive checks a run-time finding must hold before it is a collapse (default 5;
    /// TheDeepChecker waits 5 checks for its collapsed-output test).
    public var persistence = 5
    /// Steps before "the loss is not learning" counts as evidence (default 10).
    public var warmupSteps = 10
    /// A ReLU layer is dead when at least this share of its units is never positive over a shard (default 0.9;
    /// DeepDiagnosis uses 0.7 on outputs ≤ 0 per example, our "never positive over the shard" is stricter per unit).
    public var deadReluFraction = 0.9
    /// Pre-activation magnitude beyond which sigmoid/tanh count as saturated (default 5, DeepDiagnosis).
    public var saturationThreshold = 5.0
    /// A layer is saturated when at least this share of its pre-activations is beyond the threshold (default 0.5, DeepDiagnosis).
    public var saturationFraction = 0.5
    /// Gradients vanish when ‖∇W_first‖/‖∇W_last‖ falls below this (default 1e-3, AutoTrainer).
    public var vanishingRatio = 1e-3
    /// A global gradient norm at or above this is exploding (default 1e3).
    public var explodingNorm = 1e3
    /// Growth of the gradient norm over its first checks that counts as exploding (default 1e3).
    public var explodingGrowth = 1e3
    /// The loss diverges when it reaches this multiple of max(chance loss, first loss) (default 3).
    public var divergenceFactor = 3.0
    /// The loss is "not learning" at or above this share of the chance-level loss (default 0.9).
    public var stuckFraction = 0.9
    /// A bottleneck is confirmed while the loss stays at or above this share of chance (default 0.5).
    public var bottleneckLossFraction = 0.5
    /// An update-to-weight ratio at or above this means steps too large (default 0.1, TheDeepChecker's upper bound).
    public var updateRatioHigh = 0.1
    /// A layer is symmetric when at least this share of its rows are identical (default 0.5).
    public var symmetricFraction = 0.5
    /// Inputs are unnormalized when max(|mean|, std) of the features exceeds this (default 10; UMLAUT flags outside [−1, 1]).
    public var inputScaleLimit = 10.0
    /// One feature whose range is at least this multiple of the median feature's is on another
    /// scale (a column in other units), whatever the data's overall scale (default 100).
    public var featureRangeRatio = 100.0
    /// Input magnitudes at or above this overflow Float32 in a forward pass (default 1e15).
    public var overflowMagnitude = 1e15
    /// A replica is an outlier when its shard gradient norm is this multiple of the others' median (default 100).
    public var replicaOutlierRatio = 100.0
    /// Outlier events of one replica, within `replicaWindow` checks, that make a replica fault (default 3).
    public var replicaOutlierEvents = 3
    /// Checks over which replica outlier events are counted (default 20).
    public var replicaWindow = 20
    /// Losses in the oscillation window (default 20).
    public var oscillationWindow = 20
    /// max/min of the loss over the window that counts as oscillating (default 3).
    public var oscillationRatio = 3.0
    /// Permuted-label loss gap, as a fraction of the chance loss, within which (mean and twice its
    /// standard error) labels count as carrying no signal (default 0.05; docs/collapse-monitor.md).
    public var labelGapFraction = 0.05
    /// Checks before the label-signal rule may fire (a model must have had time to learn), and
    /// the window its mean is taken over (default 30).
    public var labelGapChecks = 30

    /// The defaults.
    public init() {}

    /// The threshold names accepted in `monitor.thresholds`, in documentation order.
    public static let names: [String] = keyPaths.map(\.name)

    private static let keyPaths: [(name: String, path: WritableKeyPath<MonitorSettings, Double>?, intPath: WritableKeyPath<MonitorSettings, Int>?, minimum: Double)] = [
        ("persistence", nil, \.persistence, 1), ("warmup_steps", nil, \.warmupSteps, 0),
        ("dead_relu_fraction", \.deadReluFraction, nil, 0), ("saturation_threshold", \.saturationThreshold, nil, 0),
        ("saturation_fraction", \.saturationFraction, nil, 0), ("vanishing_ratio", \.vanishingRatio, nil, 0),
        ("exploding_norm", \.explodingNorm, nil, 0), ("exploding_growth", \.explodingGrowth, nil, 1),
        ("divergence_factor", \.divergenceFactor, nil, 1), ("stuck_fraction", \.stuckFraction, nil, 0),
        ("bottleneck_loss_fraction", \.bottleneckLossFraction, nil, 0), ("update_ratio_high", \.updateRatioHigh, nil, 0),
        ("symmetric_fraction", \.symmetricFraction, nil, 0), ("input_scale_limit", \.inputScaleLimit, nil, 0),
        ("feature_range_ratio", \.featureRangeRatio, nil, 2),
        ("overflow_magnitude", \.overflowMagnitude, nil, 0), ("replica_outlier_ratio", \.replicaOutlierRatio, nil, 1),
        ("replica_outlier_events", nil, \.replicaOutlierEvents, 1), ("replica_window", nil, \.replicaWindow, 1),
        ("oscillation_window", nil, \.oscillationWindow, 4), ("oscillation_ratio", \.oscillationRatio, nil, 1),
        ("label_gap_fraction", \.labelGapFraction, nil, 0), ("label_gap_checks", nil, \.labelGapChecks, 1),
    ]

    /// The defaults with `overrides` applied (the config's `monitor.thresholds`); an unknown
    /// name or a value below its minimum throws an error naming the key.
    public init(overrides: [String: Double]) throws {
        self.init()
        for (name, value) in overrides.sorted(by: { $0.key < $1.key }) {
            guard let entry = Self.keyPaths.first(where: { $0.name == name }) else {
                throw MonitorError.unknownThreshold(name: name, known: Self.names)
            }
            guard value.isFinite, value >= entry.minimum else {
                throw MonitorError.invalidThreshold(name: name, value: value, requirement: "must be a finite number >= \(entry.minimum)")
            }
            if let path = entry.path { self[keyPath: path] = value }
            if let path = entry.intPath {
                guard value == value.rounded() else {
                    throw MonitorError.invalidThreshold(name: name, value: value, requirement: "must be a whole number")
                }
                self[keyPath: path] = Int(value)
            }
        }
    }

    /// Every threshold by name, for reports.
    public var all: [String: Double] {
        var result: [String: Double] = [:]
        for entry in Self.keyPaths {
            if let path = entry.path { result[entry.name] = self[keyPath: path] }
            if let path = entry.intPath { result[entry.name] = Double(self[keyPath: path]) }
        }
        return result
    }
}
