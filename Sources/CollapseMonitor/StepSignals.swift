/// Signals of one parameter tensor at one step.
public struct TensorSignals: Equatable, Sendable {
    /// Parameter name, e.g. `layers.0.weight`.
    public var name: String
    /// L2 norm of the tensor's averaged gradient (before clipping).
    public var gradientNorm: Double
    /// L2 norm of the tensor's values.
    public var weightNorm: Double
    /// Standard deviation of the tensor's values.
    public var weightStd: Double
    /// ‖θ_t − θ_{t−1}‖ / ‖θ_{t−1}‖ for the last update (−1 when unknown).
    public var updateRatio: Double
    /// Rows (output units or filters) of a weight matrix; 0 for vectors.
    public var rows: Int
    /// Size of the largest group of (near-)identical rows (1 when all rows differ; 0 for vectors).
    public var identicalRows: Int

    /// Creates tensor signals.
    public init(name: String, gradientNorm: Double, weightNorm: Double = 1, weightStd: Double = 0.1,
                updateRatio: Double = -1, rows: Int = 0, identicalRows: Int = 0) {
        self.name = name; self.gradientNorm = gradientNorm; self.weightNorm = weightNorm; self.weightStd = weightStd
        self.updateRatio = updateRatio; self.rows = rows; self.identicalRows = identicalRows
    }

    /// Whether this is a weight matrix (a `.weight` tensor with rows), the tensors whose
    /// gradients and symmetry the monitor compares.
    public var isWeightMatrix: Bool { rows > 0 && name.hasSuffix(".weight") }
}

/// What the coordinator knows after aggregating one step's gradient.
public struct StepSignals: Equatable, Sendable {
    /// The step (1-based).
    public var step: Int
    /// Mean loss over the step's batch.
    public var loss: Double
    /// Global L2 norm of the averaged gradient before clipping.
    public var gradientNorm: Double
    /// Whether clipping scaled this step's gradient.
    public var clipped: Bool
    /// The learning rate used for this step.
    public var learningRate: Double
    /// Per parameter tensor, in parameter order.
    public var tensors: [TensorSignals]
    /// NaN or infinite elements in the averaged gradient.
    public var nonFiniteGradientCount: Int

    /// Creates step signals.
    public init(step: Int, loss: Double, gradientNorm: Double, clipped: Bool = false, learningRate: Double = 0.001,
                tensors: [TensorSignals] = [], nonFiniteGradientCount: Int = 0) {
        self.step = step; self.loss = loss; self.gradientNorm = gradientNorm; self.clipped = clipped
        self.learningRate = learningRate; self.tensors = tensors; self.nonFiniteGradientCount = nonFiniteGradientCount
    }

    /// Gradient norms by tensor name.
    public var gradientNorms: [String: Double] { Dictionary(tensors.map { ($0.name, $0.gradientNorm) }, uniquingKeysWith: { a, _ in a }) }
    /// Update-to-weight ratios by tensor name (known ones only).
    public var updateRatios: [String: Double] {
        Dictionary(tensors.filter { $0.updateRatio >= 0 }.map { ($0.name, $0.updateRatio) }, uniquingKeysWith: { a, _ in a })
    }
    /// Weight matrices, in parameter order.
    public var weightMatrices: [TensorSignals] { tensors.filter(\.isWeightMatrix) }

    /// ‖∇W_first‖ / ‖∇W_last‖ over the weight matrices (nil with fewer than two), the
    /// vanishing/exploding ratio of AutoTrainer (ICSE'21).
    public var firstToLastGradientRatio: Double? {
        let weights = weightMatrices
        guard weights.count >= 2, let first = weights.first, let last = weights.last else { return nil }
        guard last.gradientNorm > 0, first.gradientNorm.isFinite, last.gradientNorm.isFinite else { return nil }
        return first.gradientNorm / last.gradientNorm
    }

    /// The largest update-to-weight ratio over the weight matrices (−1 when unknown).
    public var maxUpdateRatio: Double {
        weightMatrices.filter { $0.weightNorm > 0 }.map(\.updateRatio).max() ?? -1
    }
}
