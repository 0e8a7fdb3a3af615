import Config

/// An optimizer bound to a parameter count: its rule, its state buffers, its step count and
/// its schedule — the part of training state that lives at the coordinator.
public final class Optimizer {
    /// The update rule.
    public let rule: UpdateRule
    /// The configuration it was built from.
    public var config: OptimizerConfig
    /// State buffers, each `count` long, named by `rule.stateNames` (owned, zero-filled at start).
    public let state: [UnsafeMutablePointer<Float>]
    /// Updates applied so far.
    public var step: Int = 0
    /// Total updates in the run (for schedules such as cosine).
    public let totalSteps: Int
    let count: Int

    public init(config: OptimizerConfig, parameterCount: Int, totalSteps: Int) {
        self.config = config
        self.count = parameterCount
        self.totalSteps = totalSteps
        switch config.name {
        case .sgd: rule = SGD(momentum: config.momentum, nesterov: config.nesterov, weightDecay: config.weightDecay)
        case .adam: rule = Adam(beta1: config.beta1, beta2: config.beta2, epsilon: config.eps, weightDecay: config.weightDecay)
        case .adamw: rule = Adam(beta1: config.beta1, beta2: config.beta2, epsilon: config.eps, weightDecay: config.weightDecay, decoupled: true)
        case .rmsprop: rule = RMSprop(alpha: config.alpha, epsilon: config.eps, momentum: config.momentum, weightDecay: config.weightDecay)
        }
        state = rule.stateNames.map { _ in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(parameterCount, 1))
            buffer.initialize(repeating: 0, count: max(parameterCount, 1))
            return buffer
        }
    }

    deinit { for buffer in state { buffer.deallocate() } }

    /// The state buffers as arrays (copies), for checkpoints.
    public var stateArrays: [[Float]] { state.map { Array(UnsafeBufferPointer(start: $0, count: count)) } }

    /// The learning rate the next update will use.
    public var currentLearningRate: Float {
        config.schedule.learningRate(atStep: step, base: config.lr, totalSteps: totalSteps) * learningRateScale
    }

    /// A multiplier on the schedule (the monitor's rollback halves it).
    public var learningRateScale: Float = 1

    /// Clips `gradients` in place per the config (global norm, per-tensor norm, value; once,
    /// after averaging) and applies one update. Returns the clipping report. `norm` is the
    /// gradient's global norm when the caller has already measured it (computed here otherwise).
    @discardableResult
    public func update(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, tensorRanges: [Range<Int>],
                       norm measured: Double? = nil) -> ClipReport {
        let norm = measured ?? GradientClipping.chunkedNorm(gradients, chunks: ParameterChunks(tensors: tensorRanges))
        var clipped = false
        if let maxNorm = config.clipNorm, norm.isFinite {
            clipped = GradientClipping.clipGlobalNorm(gradients, count: count, maxNorm: maxNorm, norm: norm) || clipped
        }
        if let maxNorm = config.clipPerTensorNorm {
            clipped = GradientClipping.clipPerTensorNorm(gradients, ranges: tensorRanges, maxNorm: maxNorm) || clipped
        }
        if let limit = config.clipValue {
            clipped = GradientClipping.clipValue(gradients, count: count, limit: limit) || clipped
        }
        let lr = currentLearningRate
        step += 1
        rule.apply(parameters: parameters, gradients: gradients, count: count, state: state, lr: lr, t: step)
        return ClipReport(normBeforeClipping: norm, clipped: clipped)
    }

    /// Replaces the state (from a checkpoint); counts must match.
    public func restore(state newState: [[Float]], step: Int) {
        precondition(newState.count == state.count && newState.allSatisfy { $0.count == count })
        for (buffer, values) in zip(state, newState) { buffer.update(from: values, count: count) }
        self.step = step
    }
}
