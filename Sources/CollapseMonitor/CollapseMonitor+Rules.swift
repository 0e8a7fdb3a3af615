import Foundation

extension CollapseMonitor {
    /// Every cause the signals of this check point to (each rule reads its own evidence).
    func diagnose(step: Int, signals: StepSignals, merged: MergedSignals) -> [Candidate] {
        let chance = facts.chanceLoss
        let recent = recentLoss()
        let lossNonFinite = !signals.loss.isFinite || (losses.last.map { !$0.isFinite } ?? false)
        let gradientNonFinite = !signals.gradientNorm.isFinite || signals.nonFiniteGradientCount > 0
        let anyNonFinite = lossNonFinite || gradientNonFinite || merged.forwardNonFinite
        let stuck = step >= settings.warmupSteps && chance > 0 && !(recent < settings.stuckFraction * chance)
        let firstLoss = losses.first(where: \.isFinite) ?? chance
        let divergenceLevel = settings.divergenceFactor * max(chance, firstLoss)
        let diverged = lossNonFinite || (divergenceLevel > 0 && recent >= divergenceLevel)
        let initialNorm = initialGradientNorm
        let gradientExploding = gradientNonFinite || signals.gradientNorm >= settings.explodingNorm
            || (initialNorm > 0 && signals.gradientNorm >= settings.explodingGrowth * initialNorm)
        let oscillating = isOscillating(chance: chance)
        let deadRelu = merged.layers.filter { $0.activation == "relu" && $0.deadFraction >= settings.deadReluFraction }
        let killed = deadRelu.filter { (initialDead[$0.name] ?? 1) < 0.5 }
        let saturated = merged.layers.filter { ($0.activation == "tanh" || $0.activation == "sigmoid") && $0.saturationFraction >= settings.saturationFraction }
        let outputCollapsed = merged.shardCount > 0 && merged.distinctLabels >= 2 && merged.distinctPredictions <= 1
        let unstable = diverged || gradientExploding || oscillating || !killed.isEmpty
        var result: [Candidate] = []

        // Certain facts about the data and the loss.
        if let c = constantLabels(merged) { result.append(c) }
        if let c = lossMismatch() { result.append(c) }
        if let c = nonFiniteData(step: step, merged: merged, anyNonFinite: anyNonFinite, recent: recent) { result.append(c) }
        if let c = replicaFault() { result.append(c) }

        // Structure: symmetric rows, narrow layers.
        if let c = symmetricWeights(signals) { result.append(c) }
        if let c = bottleneck(step: step, recent: recent, chance: chance, merged: merged) { result.append(c) }

        // Preprocessing: inputs on the wrong scale and a run that fails.
        let inputScale = max(facts.inputScale, merged.inputMeanAbs)
        let failing = anyNonFinite || unstable || stuck || outputCollapsed || !deadRelu.isEmpty || !saturated.isEmpty
        // One column on another scale squashes the rest even when the data as a whole looks
        // normalized (standardized with one global mean and std).
        let featureOutlier = facts.widestFeatureRatio >= settings.featureRangeRatio
        if (inputScale > settings.inputScaleLimit || featureOutlier) && failing {
            var symptoms: [String] = []
            if anyNonFinite { symptoms.append("non-finite loss or gradients") }
            if diverged && !lossNonFinite { symptoms.append("loss \(format(recent)) ≥ \(format(divergenceLevel))") }
            if gradientExploding && !gradientNonFinite { symptoms.append("gradient norm \(format(signals.gradientNorm))") }
            if let d = deadRelu.first { symptoms.append("\(d.name) \(format(d.deadFraction * 100))% dead") }
            if let s = saturated.first { symptoms.append("\(s.name) \(format(s.saturationFraction * 100))% saturated") }
            if stuck && !diverged { symptoms.append("loss \(format(recent)) stuck near chance \(format(chance))") }
            if outputCollapsed { symptoms.append("one prediction for every example") }
            // One column in other units stands out by its range (a ×1000 feature among ±3 ones).
            let outlier = featureOutlier
                ? "; feature \(facts.widestFeature) spans \(format(facts.widestFeatureRatio))× the median feature's range" : ""
            let scale = inputScale > settings.inputScaleLimit
                ? "input scale max(|mean|, std) = \(format(inputScale)) > \(format(settings.inputScaleLimit)) "
                : "feature \(facts.widestFeature) spans \(format(facts.widestFeatureRatio))× the median feature's range (≥ \(format(settings.featureRangeRatio))×), "
                    + "so the other features are squashed next to it although max(|mean|, std) = \(format(inputScale)) "
            result.append(Candidate(
                cause: .unnormalizedInputs, confidence: 0.85,
                evidence: scale
                    + "(features \(format(facts.featureMin))..\(format(facts.featureMax)), normalize: \(facts.normalization)\(inputScale > settings.inputScaleLimit ? outlier : "")) "
                    + "and the run fails: \(symptoms.joined(separator: ", "))",
                remedy: "set data.normalize to \"standardize\" (or \"scale\" for 8-bit images)",
                actions: [.halveLearningRate, .enableClipping(norm: 1.0)]))
        }

        // Dynamics: steps too large, or gradients that grow without bound.
        if unstable && (diverged || gradientExploding || oscillating || !killed.isEmpty) {
            var symptoms: [String] = []
            if lossNonFinite { symptoms.append("loss became non-finite") } else if diverged {
                symptoms.append("loss \(format(recent)) ≥ \(format(settings.divergenceFactor))× max(chance \(format(chance)), first loss \(format(firstLoss)))")
            }
            if oscillating { symptoms.append("loss oscillates by ≥ \(format(settings.oscillationRatio))× over \(settings.oscillationWindow) checks") }
            if gradientExploding {
                symptoms.append("gradient norm \(format(signals.gradientNorm)) (initial \(format(initialNorm)), threshold \(format(settings.explodingNorm)))")
            }
            if let k = killed.first { symptoms.append("\(k.name) went from \(format((initialDead[k.name] ?? 0) * 100))% to \(format(k.deadFraction * 100))% dead ReLUs") }
            let ratio = largestUpdateRatio
            // Where the dynamics went wrong: the oscillating window's start, or where the loss left its best level.
            var dynamicsOnset = [oscillating ? oscillationOnset : nil, diverged || gradientExploding || !killed.isEmpty ? lossRiseOnset() : nil]
                .compactMap { $0 }.min()
            let staticHigh = (facts.optimizer == "sgd" ? facts.learningRate >= 1 : facts.learningRate >= 0.05) && facts.clipNorm == nil
            // A rate that jumped ≥ 10× just before the trouble began is its cause (the root, ahead
            // of the dead units or exploding norms it produces), measured update ratio or not.
            let jump = learningRateJump(around: dynamicsOnset)
            if let jump {
                symptoms.append("the applied lr rose from \(format(jump.before)) to \(format(jump.after)) at step \(jump.step)")
                dynamicsOnset = jump.step  // the root cause began there
            }
            let bigSteps = ratio >= settings.updateRatioHigh || (ratio < 0 && staticHigh) || jump != nil
            if bigSteps && (!(initialNorm >= settings.explodingNorm) || jump != nil) {
                let ratioText = ratio >= 0 ? "update/weight ratio reached \(format(ratio)) ≥ \(format(settings.updateRatioHigh))" : "no update ratio measured"
                // The learning rate applied at this step (a schedule's, not the configured peak).
                let applied = signals.learningRate > 0 && signals.learningRate.isFinite ? signals.learningRate : facts.learningRate
                let lrText = applied == facts.learningRate ? "lr \(format(applied))"
                    : "lr \(format(applied)) applied at this step (configured \(format(facts.learningRate)))"
                result.append(Candidate(
                    cause: .learningRateTooHigh, confidence: staticHigh || jump != nil ? 0.9 : 0.8,
                    evidence: "\(symptoms.joined(separator: ", ")); \(ratioText) at \(lrText) (\(facts.optimizer), "
                        + (facts.clipNorm.map { "clip_norm \(format($0))" } ?? "no clipping") + ")",
                    remedy: "lower optimizer.lr (try \(format(applied / 10))) and set optimizer.clip_norm (e.g. 1.0)",
                    actions: (jump.map { [RemedyAction.scaleLearningRate(factor: $0.before / $0.after)] } ?? [.halveLearningRate])
                        + (facts.clipNorm == nil ? [.enableClipping(norm: 1.0)] : []),
                    evidenceOnset: dynamicsOnset))
            } else if gradientExploding || diverged {
                let layerRatio = signals.firstToLastGradientRatio.map { ", first/last layer gradient ratio \(format($0))" } ?? ""
                result.append(Candidate(
                    cause: .explodingGradients, confidence: 0.8,
                    evidence: "\(symptoms.joined(separator: ", "))\(layerRatio); update/weight ratio \(format(ratio))",
                    remedy: "set optimizer.clip_norm (e.g. 1.0), use a smaller weight init (he/xavier) or add batchnorm",
                    actions: [.enableClipping(norm: 1.0), .halveLearningRate], evidenceOnset: dynamicsOnset))
            }
        }

        // Vanishing gradients: first-layer gradients orders of magnitude below the last layer's, or saturation, and no learning.
        let layerRatio = signals.firstToLastGradientRatio
        let vanishing = layerRatio.map { $0 < settings.vanishingRatio } ?? false
        if (vanishing && (stuck || !saturated.isEmpty)) || (!saturated.isEmpty && stuck) {
            let weights = signals.weightMatrices
            var parts: [String] = []
            if let r = layerRatio, let first = weights.first, let last = weights.last {
                parts.append("‖∇\(first.name)‖/‖∇\(last.name)‖ = \(format(first.gradientNorm))/\(format(last.gradientNorm)) = \(format(r)) (threshold \(format(settings.vanishingRatio)))")
            }
            if let s = saturated.max(by: { $0.saturationFraction < $1.saturationFraction }) {
                parts.append("\(s.name) (\(s.activation)) \(format(s.saturationFraction * 100))% of pre-activations beyond ±\(format(settings.saturationThreshold)) (threshold \(format(settings.saturationFraction * 100))%)")
            }
            if stuck { parts.append("loss \(format(recent)) ≥ \(format(settings.stuckFraction))× chance \(format(chance))") }
            result.append(Candidate(
                cause: .vanishingGradients, confidence: vanishing && !saturated.isEmpty ? 0.85 : 0.75, evidence: parts.joined(separator: "; "),
                remedy: "use relu-family activations with he init, fewer sigmoid/tanh layers, batchnorm, or residual connections"))
        }

        // Dead ReLUs: layers whose units are never active over any shard.
        if !deadRelu.isEmpty {
            let worst = deadRelu.max(by: { $0.deadFraction < $1.deadFraction })!
            result.append(Candidate(
                cause: .deadRelu, confidence: worst.deadFraction >= 0.999 ? 0.8 : 0.7,
                evidence: deadRelu.map { "\($0.name): \(format($0.deadFraction * 100))% of \($0.units) ReLU units never positive" }.joined(separator: ", ")
                    + " (threshold \(format(settings.deadReluFraction * 100))%)",
                remedy: "check bias_init (use 0), use he init, leaky_relu, or a lower learning rate",
                actions: [.reinitializeDeadUnits(layers: deadRelu.map(\.name))]))
        }

        // Labels with no signal: only when nothing else explains a model that learns nothing (a
        // dead, saturated, symmetric or unstable network cannot use informative labels either).
        if result.isEmpty, !unstable, saturated.isEmpty,
           let c = uninformativeLabels(recent: recent, chance: chance, stuck: stuck, merged: merged) {
            result.append(c)
        }
        return result
    }

    /// Labels unrelated to their inputs: after `labelGapChecks` checks the loss still sits near
    /// chance and swapping each example's label for another example's costs nothing — the mean
    /// gap over the last `labelGapChecks` checks is within `labelGapFraction` × chance of zero,
    /// and measured precisely enough to say so (twice its standard error is inside that band
    /// too: a task with few differing label pairs per shard, such as a 90/10 one, gives a gap
    /// too noisy to conclude anything from, and the rule stays quiet).
    func uninformativeLabels(recent: Double, chance: Double, stuck: Bool, merged: MergedSignals) -> Candidate? {
        // Checks since the start or the last rollback (a restored model gets its time to learn again).
        guard stuck, chance > 0, labelGaps.count >= settings.labelGapChecks, merged.distinctLabels >= 2 else { return nil }
        let window = labelGaps.suffix(settings.labelGapChecks).filter(\.isFinite)
        guard window.count * 2 >= settings.labelGapChecks, window.count >= 2 else { return nil }
        let mean = window.reduce(0, +) / Double(window.count)
        let variance = window.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(window.count - 1)
        let standardError = (variance / Double(window.count)).squareRoot()
        let limit = settings.labelGapFraction * chance
        guard abs(mean) < limit, 2 * standardError < limit else { return nil }
        return Candidate(
            cause: .uninformativeLabels, confidence: 0.85,
            evidence: "after \(labelGaps.count) checks the loss \(format(recent)) is still ≥ \(format(settings.stuckFraction))× chance \(format(chance)), "
                + "and giving each example another example's label changes it by \(format(mean)) ± \(format(standardError)) "
                + "(mean ± standard error over the last \(window.count) checks; within ±\(format(limit)) = \(format(settings.labelGapFraction))× chance): "
                + "the labels carry no signal about the inputs, and the model can only learn their frequencies",
            remedy: "check that labels and features are read in the same order and from the same data set "
                + "(no label column shifted by a row, no separate shuffle of one of them)")
    }

    func constantLabels(_ merged: MergedSignals) -> Candidate? {
        let runtime = merged.shardCount > 0 && merged.distinctLabels == 1 && merged.labelMin == merged.labelMax
        guard facts.labelsAreConstant || runtime else { return nil }
        let value = facts.labelsAreConstant ? facts.labelMin : merged.labelMin
        return Candidate(
            cause: .constantLabels, confidence: facts.labelsAreConstant ? 0.97 : 0.85,
            evidence: facts.labelsAreConstant
                ? "every one of the \(facts.examples) training labels is \(format(value)) (1 distinct value)"
                : "every shard's labels are \(format(value)) (1 distinct value)",
            remedy: "fix the label column or the data pipeline: the targets must hold at least two classes or values",
            certain: facts.labelsAreConstant)
    }

    func lossMismatch() -> Candidate? {
        let units = facts.outputUnits
        var reason: String?
        var remedy = "use cross_entropy with one output unit per class"
        if facts.finalActivation == "softmax" && units == 1 {
            reason = "a softmax over 1 output unit always outputs 1, so the output carries nothing"
        } else if facts.lossKind == "cross_entropy" && facts.finalActivation == "softmax" {
            reason = "cross_entropy takes logits and applies its own softmax: a softmax before it squashes the outputs into [0, 1], "
                + "so the loss cannot fall below log(1 + (C − 1)/e) = \(format(log(1 + Double(max(units, 2) - 1) / M_E))) and the gradients shrink"
            remedy = "remove the softmax activation from the last layer (cross_entropy works on raw logits)"
        } else if facts.lossKind == "bce" && facts.finalActivation == "sigmoid" {
            reason = "bce takes logits and applies its own sigmoid: a sigmoid before it squashes them into [0, 1], so predictions cannot become confident"
            remedy = "remove the sigmoid activation from the last layer (bce works on raw logits)"
        } else if facts.lossKind == "cross_entropy" && units == 1 {
            reason = "cross_entropy over 1 output unit: softmax of one logit is 1, the loss is 0 and no gradient flows"
        } else if facts.lossKind == "cross_entropy" && facts.labelsAreIntegers && facts.classCount > units {
            reason = "labels go up to \(format(facts.labelMax)) but the model has only \(units) output units"
            remedy = "give the last layer \(facts.classCount) units"
        } else if facts.lossKind == "cross_entropy" && !facts.labelsAreIntegers {
            reason = "cross_entropy needs class indices but the labels are real values (\(format(facts.labelMin))..\(format(facts.labelMax)))"
            remedy = "use mse for regression targets"
        } else if facts.lossKind != "cross_entropy" && units == 1 && facts.labelsAreIntegers && facts.classCount >= 3 && facts.classCount <= 1000 {
            reason = "\(facts.lossKind) with 1 output unit regresses the class indices 0..\(facts.classCount - 1) as if they were numbers"
        } else if facts.lossKind == "bce" && units == 1 && (facts.labelMin < 0 || facts.labelMax > 1) {
            reason = "bce targets must lie in [0, 1] but the labels span \(format(facts.labelMin))..\(format(facts.labelMax))"
        }
        guard let reason else { return nil }
        return Candidate(cause: .lossMismatch, confidence: 0.95,
                         evidence: "loss \(facts.lossKind), \(units) output unit(s), \(facts.classCount) label classes: \(reason)",
                         remedy: remedy, certain: true)
    }

    func nonFiniteData(step: Int, merged: MergedSignals, anyNonFinite: Bool, recent: Double) -> Candidate? {
        let staticBad = facts.nonFiniteFeatures + facts.nonFiniteLabels
        let runtimeBad = merged.inputNonFinite + merged.labelNonFinite
        let magnitude = max(merged.inputMaxAbs, abs(facts.featureMin), abs(facts.featureMax))
        let overflow = magnitude >= settings.overflowMagnitude && (anyNonFinite || !(recent < settings.overflowMagnitude))
        let firstCheckOverflow = checks == 1 && merged.forwardNonFinite && merged.inputNonFinite == 0 && replicaEvents.isEmpty
        let evidence: String
        if staticBad > 0 {
            evidence = "the training set holds \(facts.nonFiniteFeatures) non-finite feature values and \(facts.nonFiniteLabels) non-finite labels"
        } else if runtimeBad > 0 {
            evidence = "step \(step): shards held \(merged.inputNonFinite) non-finite inputs and \(merged.labelNonFinite) non-finite labels"
        } else if overflow {
            evidence = "inputs reach |x| = \(format(magnitude)) ≥ \(format(settings.overflowMagnitude)): the forward pass overflows Float32 "
                + "(loss \(format(recent)), first non-finite layer \(merged.layers.first { $0.nonFiniteCount > 0 }?.name ?? "output"))"
        } else if firstCheckOverflow {
            evidence = "the first forward pass produced non-finite values (first at \(merged.layers.first { $0.nonFiniteCount > 0 }?.name ?? "the output")) from finite inputs"
        } else {
            return nil
        }
        return Candidate(cause: .nanInf, confidence: 0.95, evidence: evidence,
                         remedy: "clean or clip the data (drop NaN/Inf rows, rescale huge values) and normalize the features",
                         certain: true)
    }

    func replicaFault() -> Candidate? {
        var counts: [Int: Int] = [:]
        for event in replicaEvents { counts[event.replica, default: 0] += 1 }
        let flagged = counts.filter { $0.value >= settings.replicaOutlierEvents }
        guard flagged.count == 1, let (replica, count) = flagged.first, let last = replicaEvents.last(where: { $0.replica == replica }) else {
            return nil
        }
        return Candidate(
            cause: .replicaFault, confidence: 0.9,
            evidence: "replica \(replica) disagreed with the others at \(count) of the last \(settings.replicaWindow) checks: \(last.reason)",
            remedy: "evict worker \(replica) and check its host (memory errors, wrong data, different build)",
            actions: [.evictReplica(replica)], replica: replica, certain: true)
    }

    func symmetricWeights(_ signals: StepSignals) -> Candidate? {
        let weights = signals.weightMatrices
        guard weights.count >= 2 else { return nil }
        let hidden = weights.dropLast().filter {
            $0.rows >= 2 && Double($0.identicalRows) >= max(2, (settings.symmetricFraction * Double($0.rows)).rounded(.up))
        }
        guard !hidden.isEmpty else { return nil }
        return Candidate(
            cause: .symmetricWeights, confidence: 0.9,
            evidence: hidden.map { "\($0.name): \($0.identicalRows) of \($0.rows) rows identical (weight std \(format($0.weightStd)))" }
                .joined(separator: ", ") + " (threshold \(format(settings.symmetricFraction * 100))% of rows)",
            remedy: "use a random initializer (he_uniform before relu, xavier_uniform otherwise) instead of zeros/ones/constant",
            actions: [.reinitializeLayers(hidden.map { String($0.name.dropLast(".weight".count)) })])
    }

    func bottleneck(step: Int, recent: Double, chance: Double, merged: MergedSignals) -> Candidate? {
        let classes = facts.classesToSeparate
        guard classes >= 3, step >= settings.warmupSteps, chance > 0, !(recent < settings.bottleneckLossFraction * chance) else { return nil }
        let needed = max(2, Int(ceil(log2(Double(classes)))))
        let sized = facts.layers.filter { $0.units > 0 }
        let narrow = sized.dropLast().filter { $0.units < needed }
        guard let layer = narrow.min(by: { $0.units < $1.units }) else { return nil }
        let effective = merged.layers.first { $0.name == layer.name }.map { ", effective width \($0.effectiveWidth)" } ?? ""
        return Candidate(
            cause: .bottleneck, confidence: 0.85,
            evidence: "\(layer.name) has \(layer.units) unit(s)\(effective) but the output separates \(classes) classes "
                + "(needs ≥ \(needed)); loss \(format(recent)) ≥ \(format(settings.bottleneckLossFraction))× chance \(format(chance))",
            remedy: "widen \(layer.name) (e.g. to \(max(32, classes * 4)) units)")
    }

    /// Warnings from the static facts alone, raised before the first check.
    func staticWarnings() -> [Alert] {
        var result: [Alert] = []
        if facts.inputScale > settings.inputScaleLimit {
            result.append(Alert(step: 0, severity: .warning, cause: Cause.unnormalizedInputs.rawValue,
                                message: "input scale max(|mean|, std) = \(format(facts.inputScale)) > \(format(settings.inputScaleLimit)) with normalize: \(facts.normalization)"))
        }
        if facts.widestFeatureRatio >= settings.featureRangeRatio && facts.inputScale <= settings.inputScaleLimit {
            result.append(Alert(step: 0, severity: .warning, cause: Cause.unnormalizedInputs.rawValue,
                                message: "feature \(facts.widestFeature) spans \(format(facts.widestFeatureRatio))× the median feature's range with normalize: \(facts.normalization): "
                                    + (facts.normalization == "standardize"
                                        ? "the other features are squashed next to it (this data is standardized per channel: rescale that feature, or give each feature its own channel)"
                                        : "the other features are squashed next to it (standardize per feature: normalize \"standardize\")")))
        }
        let high = facts.optimizer == "sgd" ? facts.learningRate >= 1 : facts.learningRate >= 0.05
        if high && facts.clipNorm == nil {
            result.append(Alert(step: 0, severity: .warning, cause: Cause.learningRateTooHigh.rawValue,
                                message: "lr \(format(facts.learningRate)) for \(facts.optimizer) without clip_norm"))
        }
        if facts.constantFeatures > 0 {
            result.append(Alert(step: 0, severity: .info, cause: Cause.unnormalizedInputs.rawValue,
                                message: "\(facts.constantFeatures) of \(facts.featureCount) features are constant over the training set"))
        }
        if facts.finalActivation == "softmax" && facts.lossKind == "cross_entropy" && facts.outputUnits > 1 {
            result.append(Alert(step: 0, severity: .warning, cause: Cause.lossMismatch.rawValue,
                                message: "a softmax layer before cross_entropy (which takes logits) applies softmax twice"))
        }
        return result
    }

    /// One warning when the outputs collapse to a single prediction for `persistence` checks without a confirmed cause.
    func outputCollapseWarning(step: Int, merged: MergedSignals) -> [Alert] {
        let collapsed = merged.shardCount > 0 && merged.distinctLabels >= 2 && merged.distinctPredictions <= 1
        outputCollapseStreak = collapsed ? outputCollapseStreak + 1 : 0
        guard outputCollapseStreak >= settings.persistence, !warnedOutputCollapse, !verdict.detected else { return [] }
        warnedOutputCollapse = true
        return [Alert(step: step, severity: .warning, cause: nil,
                      message: "outputs collapsed: one prediction for every example over \(outputCollapseStreak) checks (largest output variance \(format(merged.outputMaxVariance)))")]
    }
}
