import Foundation

/// The cause vocabulary of CONTRACT.md.
public enum Cause: String, CaseIterable, Sendable {
    case vanishingGradients = "vanishing_gradients"
    case explodingGradients = "exploding_gradients"
    case deadRelu = "dead_relu"
    case symmetricWeights = "symmetric_weights"
    case bottleneck
    case unnormalizedInputs = "unnormalized_inputs"
    case constantLabels = "constant_labels"
    /// Labels that carry no information about their inputs (shuffled or shifted relative to them).
    case uninformativeLabels = "uninformative_labels"
    case lossMismatch = "loss_mismatch"
    case learningRateTooHigh = "learning_rate_too_high"
    case nanInf = "nan_inf"
    case replicaFault = "replica_fault"

    /// Causes this one explains when both are found (the symptoms a root cause produces):
    /// zero init leaves ReLUs dead, a huge learning rate blows gradients up, and so on.
    var explains: Set<Cause> {
        switch self {
        case .constantLabels, .lossMismatch: return Set(Cause.allCases).subtracting([self, .replicaFault, .nanInf])
        case .uninformativeLabels: return []  // found only when no other cause is
        case .replicaFault: return [.nanInf, .explodingGradients, .learningRateTooHigh, .deadRelu, .vanishingGradients]
        case .nanInf: return [.explodingGradients, .learningRateTooHigh, .unnormalizedInputs, .deadRelu]
        case .symmetricWeights: return [.deadRelu, .bottleneck, .vanishingGradients]
        case .unnormalizedInputs: return [.deadRelu, .explodingGradients, .learningRateTooHigh, .vanishingGradients]
        case .bottleneck: return [.deadRelu, .vanishingGradients]
        case .learningRateTooHigh: return [.explodingGradients, .deadRelu]
        case .explodingGradients: return [.deadRelu]
        case .vanishingGradients, .deadRelu: return []
        }
    }
}

/// One ranked explanation of a collapse.
public struct CauseFinding: Equatable, Sendable {
    /// The cause (vocabulary string).
    public var cause: String
    /// Confidence in 0...1 (lowered when another finding explains this one).
    public var confidence: Double
    /// The step at which the monitor confirmed it.
    public var step: Int
    /// The numbers behind it: layer, value, threshold, step of onset.
    public var evidence: String
    /// What to change.
    public var remedy: String
    /// The monitor's estimate of the step at which the problem began (≤ `step`): the first check
    /// of the evidence — the first of the consecutive checks that confirmed it, or, for loss
    /// dynamics, the check after the loss last stood at its best level, or the first check of an
    /// oscillating window.
    public var onsetStep: Int

    public init(cause: String, confidence: Double, step: Int, evidence: String, remedy: String, onsetStep: Int? = nil) {
        self.cause = cause; self.confidence = confidence; self.step = step; self.evidence = evidence; self.remedy = remedy
        self.onsetStep = min(onsetStep ?? step, step)
    }

    /// The report form: `{"cause", "confidence", "step", "onset_step", "evidence", "remedy"}`.
    public var json: [String: Any] {
        ["cause": cause, "confidence": (confidence * 1000).rounded() / 1000, "step": step, "onset_step": onsetStep,
         "evidence": evidence, "remedy": remedy]
    }
}

/// The monitor's conclusion so far: report.json's `collapse` object.
public struct CollapseVerdict: Equatable, Sendable {
    /// Whether a collapse was detected.
    public var detected = false
    /// The step of the first detection.
    public var step: Int?
    /// The most likely root cause (top of `causes`).
    public var cause: String? { causes.first?.cause }
    /// Ranked findings, most likely root cause first.
    public var causes: [CauseFinding] = []
    /// The replica (worker id) when a single replica is affected.
    public var replica: Int?

    /// The report form (CONTRACT.md `collapse`), with `NSNull` for absent values.
    public var json: [String: Any] {
        ["detected": detected, "step": step.map { $0 as Any } ?? NSNull(), "cause": cause.map { $0 as Any } ?? NSNull(),
         "causes": causes.map(\.json), "replica": replica.map { $0 as Any } ?? NSNull()]
    }
}

/// A message for the run's `alerts` list and metrics.
public struct Alert: Equatable, Sendable {
    /// How serious: `info`, `warning` (a risk, training continues), `critical` (a collapse).
    public enum Severity: String, Sendable { case info, warning, critical }
    /// The step it was raised at (0: before training).
    public var step: Int
    /// Severity.
    public var severity: Severity
    /// The cause it concerns (vocabulary string), if any.
    public var cause: String?
    /// One human line with the numbers.
    public var message: String

    /// The report form: `{"step", "severity", "cause", "message"}`.
    public var json: [String: Any] {
        ["step": step, "severity": severity.rawValue, "cause": cause.map { $0 as Any } ?? NSNull(), "message": message]
    }
}

/// What `--monitor rollback` should do after restoring the last healthy parameters.
public enum RemedyAction: Equatable, Sendable {
    /// Halve the learning rate.
    case halveLearningRate
    /// Scale the learning rate back by `factor` (< 1): a schedule's jump undone, the rate
    /// before it restored (the schedule's later changes keep their relative steps).
    case scaleLearningRate(factor: Double)
    /// Turn on global-norm gradient clipping at `norm`.
    case enableClipping(norm: Double)
    /// Re-initialize the never-active units of these layers (fresh random rows, zero bias).
    case reinitializeDeadUnits(layers: [String])
    /// Re-initialize these layers' weights randomly, breaking their symmetry.
    case reinitializeLayers([String])
    /// Stop sending work to this worker.
    case evictReplica(Int)
}
