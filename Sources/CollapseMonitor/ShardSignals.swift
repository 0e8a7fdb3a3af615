/// Statistics of the model's output over one shard's examples.
public struct OutputSignals: Equatable, Sendable {
    /// Output units per example.
    public var units: Int
    /// Largest per-unit variance across the shard's examples (0 when every example gets the same output).
    public var maxVariance: Double
    /// Mean per-unit variance across the shard's examples.
    public var meanVariance: Double
    /// Distinct argmax predictions (for one unit: distinct rounded outputs, capped at 255).
    public var distinctPredictions: Int
    /// Distinct labels present in the shard (capped at 255).
    public var distinctLabels: Int
    /// Entropy (nats) of the histogram of argmax predictions; 0 when one class is always predicted.
    public var predictionEntropy: Double
    /// Entropy (nats) of the shard's label histogram.
    public var labelEntropy: Double
    /// Output values that are NaN or infinite.
    public var nonFiniteCount: Int
    /// How much worse the cross-entropy is with every example's label replaced by another
    /// example's of the same shard (example r takes the label of r + n/2 mod n): the mean of
    /// logit[r, y(r)] − logit[r, y(π r)] over the pairs whose labels differ (the log-sum-exp
    /// cancels; a pair with equal labels differs by 0 whatever the model knows). Near zero when the
    /// labels carry no information about the inputs (shuffled, shifted by a row), clearly
    /// positive once a model has learned anything; nil when not measured (not cross-entropy, no
    /// pair of different labels).
    public var permutedLossGap: Double?

    /// Creates output signals.
    public init(units: Int = 0, maxVariance: Double = 0, meanVariance: Double = 0, distinctPredictions: Int = 0,
                distinctLabels: Int = 0, predictionEntropy: Double = 0, labelEntropy: Double = 0, nonFiniteCount: Int = 0,
                permutedLossGap: Double? = nil) {
        self.units = units; self.maxVariance = maxVariance; self.meanVariance = meanVariance
        self.distinctPredictions = distinctPredictions; self.distinctLabels = distinctLabels
        self.predictionEntropy = predictionEntropy; self.labelEntropy = labelEntropy; self.nonFiniteCount = nonFiniteCount
        self.permutedLossGap = permutedLossGap
    }
}

/// Statistics of one observed layer (dense, conv2d or activation) over one shard.
public struct LayerSignals: Equatable, Sendable {
    /// Observation order from the input (0 = first observed layer).
    public var depth: Int
    /// Config path of the layer, e.g. `layers.2`.
    public var name: String
    /// The activation's config name (`relu`, `tanh`, ...), or `linear`.
    public var activation: String
    /// Units (dense outputs or conv channels).
    public var units: Int
    /// Share of units never positive over the shard (ReLU family; 0 for other activations).
    public var deadFraction: Double
    /// Share of pre-activations beyond ±saturation threshold (sigmoid/tanh; 0 for others).
    public var saturationFraction: Double
    /// Standard deviation of the layer's output over all its values in the shard.
    public var outputStd: Double
    /// Units whose output variance is non-negligible (> 1e-4 × the largest unit variance and > 1e-12).
    public var effectiveWidth: Int
    /// Output values that are NaN or infinite.
    public var nonFiniteCount: Int

    /// Creates layer signals.
    public init(depth: Int, name: String, activation: String, units: Int, deadFraction: Double = 0, saturationFraction: Double = 0,
                outputStd: Double = 1, effectiveWidth: Int? = nil, nonFiniteCount: Int = 0) {
        self.depth = depth; self.name = name; self.activation = activation; self.units = units
        self.deadFraction = deadFraction; self.saturationFraction = saturationFraction; self.outputStd = outputStd
        self.effectiveWidth = effectiveWidth ?? units; self.nonFiniteCount = nonFiniteCount
    }
}

/// Statistics of one shard's input features.
public struct InputSignals: Equatable, Sendable {
    /// Smallest finite feature value.
    public var min: Double
    /// Largest finite feature value.
    public var max: Double
    /// Mean absolute finite feature value.
    public var meanAbs: Double
    /// Feature columns with one value over the whole shard.
    public var constantFeatures: Int
    /// Feature values that are NaN or infinite.
    public var nonFiniteCount: Int

    /// Creates input signals.
    public init(min: Double = 0, max: Double = 0, meanAbs: Double = 0, constantFeatures: Int = 0, nonFiniteCount: Int = 0) {
        self.min = min; self.max = max; self.meanAbs = meanAbs; self.constantFeatures = constantFeatures; self.nonFiniteCount = nonFiniteCount
    }
}

/// Statistics of one shard's labels.
public struct LabelSignals: Equatable, Sendable {
    /// Smallest finite label.
    public var min: Double
    /// Largest finite label.
    public var max: Double
    /// Distinct label values (capped at 255).
    public var distinct: Int
    /// Labels that are NaN or infinite.
    public var nonFiniteCount: Int

    /// Creates label signals.
    public init(min: Double = 0, max: Double = 0, distinct: Int = 0, nonFiniteCount: Int = 0) {
        self.min = min; self.max = max; self.distinct = distinct; self.nonFiniteCount = nonFiniteCount
    }
}

/// What one worker measured while computing one shard: a few hundred bytes that travel with
/// the shard's gradient (`encode()`/`decode(_:)`) to the coordinator's `CollapseMonitor`.
public struct ShardSignals: Equatable, Sendable {
    /// Examples in the shard.
    public var examples: Int
    /// Σ of per-example losses.
    public var lossSum: Double
    /// Examples the loss sum covers.
    public var lossCount: Int
    /// Input feature statistics.
    public var input: InputSignals
    /// Label statistics.
    public var labels: LabelSignals
    /// Output statistics.
    public var output: OutputSignals
    /// Per observed layer, in depth order.
    public var layers: [LayerSignals]
    /// L2 norm of the shard's gradient contribution as the coordinator received it (−1: not measured).
    /// The coordinator may fill this in; a replica whose norms are outliers is suspect.
    public var gradientNorm: Double
    /// A checksum of the replica's parameters when it computed the shard (0: not reported).
    public var parameterChecksum: UInt64
    /// The replica's probe-batch result, on steps with a probe (nil otherwise).
    public var probe: ProbeSignals?

    /// Creates shard signals.
    public init(examples: Int = 0, lossSum: Double = 0, lossCount: Int = 0, input: InputSignals = InputSignals(),
                labels: LabelSignals = LabelSignals(), output: OutputSignals = OutputSignals(), layers: [LayerSignals] = [],
                gradientNorm: Double = -1, parameterChecksum: UInt64 = 0) {
        self.examples = examples; self.lossSum = lossSum; self.lossCount = lossCount; self.input = input
        self.labels = labels; self.output = output; self.layers = layers
        self.gradientNorm = gradientNorm; self.parameterChecksum = parameterChecksum
    }

    /// Whether any input, label, layer output or model output value was NaN or infinite.
    public var hasNonFiniteForward: Bool {
        output.nonFiniteCount > 0 || layers.contains { $0.nonFiniteCount > 0 }
    }
}
