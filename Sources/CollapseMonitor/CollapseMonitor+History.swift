import Foundation

/// Formats a number for evidence text: three significant digits.
func format(_ value: Double) -> String {
    if !value.isFinite { return value.isNaN ? "NaN" : (value > 0 ? "Inf" : "-Inf") }
    if value == 0 { return "0" }
    let magnitude = abs(value)
    if magnitude >= 1e4 || magnitude < 1e-3 { return String(format: "%.2e", value) }
    return String(format: "%.3g", value)
}

extension CollapseMonitor {
    /// Appends this check to the step, learning-rate, label-gap, loss, gradient-norm and update-ratio histories.
    func record(step: Int, _ signals: StepSignals, _ merged: MergedSignals) {
        checkSteps.append(step)
        learningRates.append(signals.learningRate)
        labelGaps.append(merged.permutedLossGap ?? .nan)
        losses.append(signals.loss)
        gradientNorms.append(signals.gradientNorm)
        let ratios = signals.weightMatrices.filter { $0.weightNorm > 0 || !$0.weightNorm.isFinite }.map(\.updateRatio)
        // A NaN or infinite ratio (parameters blown up by the update) counts as a huge step.
        updateRatios.append(ratios.map { $0.isFinite ? $0 : .infinity }.max() ?? -1)
        for layer in merged.layers where initialDead[layer.name] == nil { initialDead[layer.name] = layer.deadFraction }
    }

    /// Compares each replica's shard gradient norms, forward non-finite counts and parameter
    /// checksums with the other replicas'; records an event when exactly one replica stands out.
    func recordReplicaOutliers(_ shards: [(replica: Int, shard: Int, signals: ShardSignals)]) {
        let replicas = Set(shards.map(\.replica))
        // Once another collapse is confirmed the run's dynamics are broken and shard-to-shard
        // spread says nothing about one replica (audits still count).
        guard replicas.count >= 2, findings.keys.allSatisfy({ $0 == .replicaFault }) else { return }
        var outliers: [Int: String] = [:]
        for r in replicas {
            let mine = shards.filter { $0.replica == r }.map(\.signals)
            let others = shards.filter { $0.replica != r }.map(\.signals)
            // Only a replica whose forward pass agrees with the others (finite, similar loss)
            // but whose gradient does not is suspect: a shard whose data blows up the forward
            // pass is a data problem, not a replica fault.
            let myLoss = mine.map { $0.lossSum / Double(max($0.lossCount, 1)) }
            let otherLoss = others.map { $0.lossSum / Double(max($0.lossCount, 1)) }.sorted()
            guard !mine.contains(where: \.hasNonFiniteForward), !others.contains(where: \.hasNonFiniteForward),
                  myLoss.allSatisfy(\.isFinite), otherLoss.allSatisfy(\.isFinite), !otherLoss.isEmpty else { continue }
            let typicalLoss = otherLoss[otherLoss.count / 2]
            guard myLoss.allSatisfy({ $0 <= 10 * typicalLoss + 1e-6 && 10 * $0 + 1e-6 >= typicalLoss }) else { continue }
            let myNorms = mine.map(\.gradientNorm).filter { $0 >= 0 || !$0.isFinite }
            let otherNorms = others.map(\.gradientNorm).filter { $0 >= 0 || !$0.isFinite }
            guard !myNorms.isEmpty, !otherNorms.isEmpty else { continue }
            let otherFinite = otherNorms.filter(\.isFinite).sorted()
            // The other replicas must look like the run did at its start: while the whole run
            // blows up, shard-to-shard spread says nothing about one replica.
            let sane = 10 * max(initialGradientNorm.isFinite ? initialGradientNorm : 0, 0.1)
            guard otherFinite.count == otherNorms.count, otherFinite[otherFinite.count / 2] <= sane else { continue }
            if myNorms.contains(where: { !$0.isFinite }) && otherFinite.count == otherNorms.count {
                outliers[r] = "its shard gradient norm is non-finite while the other replicas' are finite (similar losses)"
            } else if let worst = myNorms.filter(\.isFinite).max(), !otherFinite.isEmpty {
                let median = otherFinite[otherFinite.count / 2]
                if median > 0 && worst / median >= settings.replicaOutlierRatio {
                    outliers[r] = "its shard gradient norm \(format(worst)) is \(format(worst / median))× the other replicas' median "
                        + "\(format(median)) (threshold \(format(settings.replicaOutlierRatio))×) at similar losses"
                }
            }
        }
        // Parameter checksums: a strict majority decides which replicas hold the wrong parameters.
        let sums = shards.filter { $0.signals.parameterChecksum != 0 }
        if Set(sums.map(\.replica)).count >= 3 {
            var votes: [UInt64: Set<Int>] = [:]
            for s in sums { votes[s.signals.parameterChecksum, default: []].insert(s.replica) }
            if let majority = votes.max(by: { $0.value.count < $1.value.count }), majority.value.count * 2 > Set(sums.map(\.replica)).count {
                for (sum, members) in votes where sum != majority.key {
                    for r in members where outliers[r] == nil { outliers[r] = "its parameter checksum differs from the majority's" }
                }
            }
        }
        if outliers.count == 1, let (replica, reason) = outliers.first {
            replicaEvents.append((checks, replica, reason))
        }
        replicaEvents.removeAll { checks - $0.check >= settings.replicaWindow }
    }

    /// Median of the last `count` losses; infinite when any of them is not finite.
    func recentLoss(_ count: Int = 5) -> Double {
        let window = losses.suffix(count)
        guard !window.isEmpty else { return .nan }
        if window.contains(where: { !$0.isFinite }) { return .infinity }
        let sorted = window.sorted()
        return sorted[sorted.count / 2]
    }

    /// The first check's gradient norm: the scale at initialization, before any update.
    var initialGradientNorm: Double { gradientNorms.first ?? .nan }

    /// The largest update-to-weight ratio seen so far (−1 when none was measured).
    var largestUpdateRatio: Double { updateRatios.max() ?? -1 }

    /// Whether the last `oscillationWindow` losses swing up and down by `oscillationRatio` at or above chance:
    /// the loss climbs back to `oscillationRatio` × a low it had reached earlier in the window (a loss
    /// that only falls, however noisily — a warmup's 3.5 → 0.6 — is not oscillating), and turns often.
    func isOscillating(chance: Double) -> Bool {
        let window = Array(losses.suffix(settings.oscillationWindow))
        guard window.count >= settings.oscillationWindow, window.allSatisfy(\.isFinite), let low = window.min(), let high = window.max(),
              low > 0, high >= chance else { return false }
        var lowest = window[0], largestRise = 1.0
        for loss in window.dropFirst() {
            largestRise = max(largestRise, loss / lowest)
            lowest = min(lowest, loss)
        }
        guard largestRise >= settings.oscillationRatio else { return false }
        var turns = 0
        for i in 1..<(window.count - 1) where (window[i] - window[i - 1]) * (window[i + 1] - window[i]) < 0 { turns += 1 }
        return turns >= window.count / 3
    }

    /// The step at which the loss left its best level: the check after the last one (before the
    /// current) whose loss was within 1.5× the lowest loss seen up to it; the first check when
    /// the loss was never finite. Used as the onset of divergence and exploding gradients.
    func lossRiseOnset() -> Int? {
        guard losses.count >= 2, checkSteps.count == losses.count else { return checkSteps.first }
        var best = Double.infinity, lastAtBest: Int?
        for i in 0..<(losses.count - 1) where losses[i].isFinite {
            best = min(best, losses[i])
            if losses[i] <= 1.5 * best { lastAtBest = i }
        }
        guard let index = lastAtBest else { return checkSteps.first }
        return checkSteps[min(index + 1, checkSteps.count - 1)]
    }

    /// A rise of the applied learning rate by ≥ 10× around `onset` (from three checks before it
    /// to 20 after, the onset estimate being rough) over its median before then: a schedule
    /// step, a restart or a warmup overshoot. A rise long after the trouble began is not its cause.
    /// Returns the median before and the highest rate since, with the step it was first applied.
    func learningRateJump(around onset: Int?) -> (before: Double, after: Double, step: Int)? {
        guard let onset, learningRates.count == checkSteps.count,
              let index = checkSteps.lastIndex(where: { $0 <= onset }) else { return nil }
        let start = max(0, index - 3)
        let before = learningRates[..<start].filter { $0 > 0 && $0.isFinite }.sorted()
        guard !before.isEmpty else { return nil }
        let median = before[before.count / 2]
        let since = learningRates[start...min(learningRates.count - 1, index + 20)]
        guard let highest = since.filter(\.isFinite).max(), highest >= 10 * median,
              let first = since.firstIndex(where: { $0 >= 10 * median }) else { return nil }
        return (median, highest, checkSteps[first])
    }

    /// The first check of the oscillation window.
    var oscillationOnset: Int? {
        checkSteps.count >= settings.oscillationWindow ? checkSteps[checkSteps.count - settings.oscillationWindow] : checkSteps.first
    }

    /// The monitor fields of one check for metrics.jsonl. Typed values (not `[String: Any]`):
    /// this runs every step, and dynamic casts of boxed values cost more than the rules.
    func metrics(_ signals: StepSignals, _ merged: MergedSignals) -> [(key: String, value: MonitorMetric)] {
        var fields: [(key: String, value: MonitorMetric)] = []
        fields.reserveCapacity(8)
        var norms: [(String, Double)] = []
        for tensor in signals.tensors where tensor.name.hasSuffix(".weight") {
            norms.append((tensor.name, tensor.gradientNorm.isFinite ? tensor.gradientNorm : -1))
        }
        fields.append(("grad_norms", .map(norms)))
        if let ratio = signals.firstToLastGradientRatio { fields.append(("first_last_grad_ratio", .number(ratio))) }
        let updateRatio = signals.maxUpdateRatio
        if updateRatio >= 0 && updateRatio.isFinite { fields.append(("update_ratio_max", .number(updateRatio))) }
        if let gap = merged.permutedLossGap { fields.append(("label_gap", .number(gap))) }
        if merged.shardCount > 0 {
            // (MergedSignals holds one entry per layer name.)
            var dead: [(String, Double)] = [], saturated: [(String, Double)] = []
            for layer in merged.layers {
                if layer.deadFraction > 0 || layer.activation.hasSuffix("relu") { dead.append((layer.name, layer.deadFraction)) }
                if layer.activation == "tanh" || layer.activation == "sigmoid" { saturated.append((layer.name, layer.saturationFraction)) }
            }
            fields.append(("dead_fraction", .map(dead)))
            fields.append(("saturation_fraction", .map(saturated)))
            fields.append(("output_variance", .map(merged.outputVarianceByReplica.sorted { $0.key < $1.key }
                .map { (String($0.key), $0.value.isFinite ? $0.value : -1) })))
            fields.append(("distinct_predictions", .integer(merged.distinctPredictions)))
        }
        return fields
    }
}

/// One monitor field of a metrics.jsonl row: a number, a count, or numbers by name.
public enum MonitorMetric {
    case number(Double)
    case integer(Int)
    case map([(String, Double)])
}
