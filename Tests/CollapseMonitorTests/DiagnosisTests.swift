import Foundation
import Testing
@testable import CollapseMonitor

@Suite struct HealthyRunTests {
    @Test func healthyMLPRaisesNoCollapse() {
        let m = Scenario().run(steps: 200)
        #expect(!m.verdict.detected)
        #expect(m.alerts.allSatisfy { $0.severity != .critical })
    }

    @Test func slowLearnerNearChanceWithoutStructuralEvidenceIsNotACollapse() {
        var s = Scenario()
        s.loss = { 2.30 - 0.002 * Double($0) }  // plain SGD at a small lr: near chance for long
        #expect(!s.run(steps: 100).verdict.detected)
    }

    @Test func noisyLowLossLateInTrainingIsNotOscillation() {
        var s = Scenario()
        s.loss = { $0 % 2 == 0 ? 0.12 : 0.5 }  // minibatch noise ×4 but far below chance
        #expect(!s.run(steps: 100).verdict.detected)
    }

    @Test func aWarmupWhoseLossFallsNoisilyIsNotOscillation() {
        // The held-out false alarm: a warmup to a high peak lr while the loss falls 3.5 → 0.6 with
        // minibatch noise (many turns, max/min ≥ 3 over the window, but never climbing back).
        var s = Scenario()
        s.facts.learningRate = 1.2; s.facts.optimizer = "sgd"
        s.learningRate = { 1.2 * min(Double($0) / 1000, 1) }
        s.loss = { step in (0.6 + 2.9 * exp(-Double(step) / 10)) * (step % 2 == 0 ? 1.12 : 0.9) }
        s.tensors = { _ in Scenario.mlpTensors(update: -1) }  // as in a run: no update ratio measured
        let m = s.run(steps: 40)
        #expect(!m.verdict.detected, "\(m.alerts.map(\.message))")
    }

    @Test func aLossThatSwingsBackUpIsOscillationAndTheEvidenceQuotesTheAppliedRate() {
        var s = Scenario()
        s.facts.learningRate = 0.5; s.facts.optimizer = "sgd"
        s.learningRate = { _ in 0.25 }  // a schedule halved it; the configured value is 0.5
        s.loss = { step in step < 5 ? 2.3 - 0.1 * Double(step) : (step % 2 == 0 ? 0.6 : 3.5) }
        s.tensors = { step in Scenario.mlpTensors(update: step == 1 ? -1 : 2.0) }
        let m = s.run(steps: 40)
        #expect(m.verdict.cause == "learning_rate_too_high")
        let evidence = m.verdict.causes.first?.evidence ?? ""
        #expect(evidence.contains("oscillates"), "\(evidence)")
        #expect(evidence.contains("lr 0.25 applied at this step (configured 0.5)"), "\(evidence)")
    }

    @Test func aLearningRateJumpMidRunIsFoundWithinTwentyStepsWithItsOnset() {
        // 150 healthy steps, then the applied rate jumps ×1000: the loss leaves its level and climbs.
        var s = Scenario()
        s.facts.optimizer = "sgd"; s.facts.learningRate = 0.01
        let onset = 151
        s.learningRate = { $0 < onset ? 0.01 : 10 }
        let healthy = s.loss
        s.loss = { step in step < onset ? healthy(step) : min(healthy(onset) * pow(1.6, Double(step - onset + 1)), 1e6) }
        s.gradientNorm = { step in step < onset ? 1.5 : 1.5 * pow(1.8, Double(step - onset + 1)) }
        s.tensors = { step in Scenario.mlpTensors(update: step < onset ? 0.01 : 3.0) }
        let m = s.run(steps: 200)
        let finding = m.verdict.causes.first
        #expect(finding?.cause == "learning_rate_too_high")
        let detected = m.verdict.step ?? 0
        #expect(detected >= onset && detected - onset <= 20, "detected at \(detected)")
        #expect(finding.map { abs($0.onsetStep - onset) <= 2 } == true, "onset estimated at \(finding?.onsetStep ?? -1)")
        #expect((finding?.json["onset_step"] as? Int) == finding?.onsetStep)
        #expect(finding?.evidence.contains("lr 10 applied at this step (configured 0.01)") == true, "\(finding?.evidence ?? "")")
    }

    @Test func aScheduleJumpIsNamedAheadOfTheExplodingGradientsItCauses() {
        // As in a run: no update ratio measured, a modest configured rate, then a step schedule's ×1000.
        var s = Scenario()
        s.facts.optimizer = "sgd"; s.facts.learningRate = 0.02
        let onset = 121
        s.learningRate = { $0 < onset ? 0.02 : 20 }
        let healthy = s.loss
        s.loss = { step in step <= onset ? healthy(step) : (step < onset + 4 ? 40 * Double(step - onset) : .nan) }
        s.gradientNorm = { step in step <= onset ? 1.5 : 5000 }
        s.tensors = { _ in Scenario.mlpTensors(update: -1) }
        let m = s.run(steps: 160)
        let top = m.verdict.causes.first
        #expect(top?.cause == "learning_rate_too_high", "\(m.verdict.causes.map(\.cause))")
        #expect(top?.evidence.contains("the applied lr rose from 0.02 to 20 at step 121") == true, "\(top?.evidence ?? "")")
        #expect(top?.onsetStep == onset)
        #expect((m.verdict.step ?? 0) - onset <= 20)
    }

    @Test func labelsThatCarryNoSignalAreUninformativeLabels() {
        // Loss at chance for the whole run (the model learns the prior), and another example's
        // label costs nothing: labels shifted by a row.
        var s = Scenario()
        s.loss = { step in 2.30 - 0.05 * (1 - exp(-Double(step) / 10)) }
        s.output = { step, replica in OutputSignals(units: 10, maxVariance: 0.01, meanVariance: 0.01, distinctPredictions: 2, distinctLabels: 10,
                                                    predictionEntropy: 0.3, labelEntropy: 2.2, permutedLossGap: replica == 0 ? 0.004 : -0.006) }
        let m = s.run(steps: 60)
        #expect(m.verdict.cause == "uninformative_labels")
        #expect((m.verdict.step ?? 0) >= m.settings.labelGapChecks && (m.verdict.step ?? 0) <= m.settings.labelGapChecks + m.settings.persistence)
        #expect(m.verdict.causes.first?.evidence.contains("carry no signal") == true)
    }

    @Test func aSlowLearnerNearChanceWhoseLabelsMatterIsNotUninformative() {
        var s = Scenario()
        s.loss = { 2.30 - 0.002 * Double($0) }
        s.output = { step, _ in OutputSignals(units: 10, maxVariance: 0.5, meanVariance: 0.3, distinctPredictions: 8, distinctLabels: 10,
                                              predictionEntropy: 1.8, labelEntropy: 2.2, permutedLossGap: 0.1 + 0.004 * Double(step)) }
        #expect(!s.run(steps: 100).verdict.detected)
    }

    @Test func healthyTanhNetWithModerateSaturationIsNotVanishing() {
        var s = Scenario()
        s.layers = { _, _ in Scenario.mlpLayers(dead: [0, 0], activation: "tanh", saturation: [0.2, 0.1]) }
        s.tensors = { _ in Scenario.mlpTensors(gradients: [0.05, 0.2, 0.9]) }
        #expect(!s.run(steps: 100).verdict.detected)
    }

    @Test func zeroInitializedOutputLayerAloneIsNotSymmetric() {
        var s = Scenario()
        s.tensors = { step in Scenario.mlpTensors(identical: [1, 1, step == 1 ? 10 : 1]) }
        #expect(!s.run(steps: 60).verdict.detected)
    }

    @Test func transientDeadLayerShorterThanPersistenceIsIgnored() {
        var s = Scenario()
        s.layers = { step, _ in Scenario.mlpLayers(dead: [step >= 20 && step < 23 ? 0.95 : 0.05, 0.1]) }
        #expect(!s.run(steps: 60).verdict.detected)
    }
}

@Suite struct RootCauseTests {
    @Test func zeroInitIsSymmetricWeightsNotDeadRelu() {
        var s = Scenario()
        s.loss = { _ in 2.302 }
        s.tensors = { _ in Scenario.mlpTensors(gradients: [0, 0, 0.3], update: 0, identical: [256, 128, 10]) }
        s.layers = { _, _ in Scenario.mlpLayers(dead: [1, 1]) }
        let m = s.run(steps: 30)
        #expect(m.verdict.cause == "symmetric_weights")
        #expect(m.verdict.step == 5)
        #expect(m.verdict.causes.map(\.cause).contains("dead_relu"))
        #expect(m.verdict.causes[0].evidence.contains("layers.0.weight: 256 of 256 rows identical"))
    }

    @Test func negativeBiasIsDeadRelu() {
        var s = Scenario()
        s.loss = { _ in 2.302 }
        s.layers = { _, _ in Scenario.mlpLayers(dead: [1, 0]) }
        let m = s.run(steps: 30)
        #expect(m.verdict.cause == "dead_relu")
        #expect(m.verdict.step == 5)
        #expect(m.recommendedActions == [.reinitializeDeadUnits(layers: ["layers.0"])])
    }

    @Test func deepSigmoidStackIsVanishingGradients() {
        var s = Scenario()
        s.loss = { _ in 2.3025 }
        s.tensors = { _ in Scenario.mlpTensors(gradients: [1e-6, 1e-4, 0.2]) }
        s.layers = { _, _ in Scenario.mlpLayers(dead: [0, 0], activation: "sigmoid", saturation: [0.1, 0.1]) }
        let m = s.run(steps: 40)
        #expect(m.verdict.cause == "vanishing_gradients")
        #expect(m.verdict.step! <= s.settings.warmupSteps + s.settings.persistence)
    }

    @Test func saturatedTanhIsVanishingEvenWhileTheLastLayerLearns() {
        var s = Scenario()
        s.tensors = { _ in Scenario.mlpTensors(gradients: [1e-5, 1e-3, 0.5]) }
        s.layers = { _, _ in Scenario.mlpLayers(dead: [0, 0], activation: "tanh", saturation: [0.95, 0.9]) }
        let m = s.run(steps: 30)
        #expect(m.verdict.cause == "vanishing_gradients")
        #expect(m.verdict.step == 5)
    }

    @Test func hugeLearningRateIsLearningRateTooHigh() {
        var s = Scenario()
        s.facts.optimizer = "sgd"; s.facts.learningRate = 10
        s.loss = { $0 == 1 ? 2.3 : ($0 < 6 ? 80 * Double($0) : .nan) }
        s.gradientNorm = { $0 == 1 ? 2 : 40 * Double($0) }
        s.tensors = { step in Scenario.mlpTensors(update: step == 1 ? -1 : 3.0) }
        let m = s.run(steps: 30)
        #expect(m.verdict.cause == "learning_rate_too_high")
        #expect(m.verdict.step! <= 7)
        #expect(m.recommendedActions.contains(.halveLearningRate))
        #expect(m.recommendedActions.contains(.enableClipping(norm: 1.0)))
    }

    @Test func learningRateThatKillsReLUsIsLearningRateTooHighNotDeadRelu() {
        var s = Scenario()
        s.facts.optimizer = "sgd"; s.facts.learningRate = 5
        s.loss = { $0 == 1 ? 2.3 : 2.31 }
        s.layers = { step, _ in Scenario.mlpLayers(dead: step == 1 ? [0.05, 0.05] : [1, 1]) }
        s.tensors = { step in Scenario.mlpTensors(update: step == 1 ? -1 : 1.5) }
        let m = s.run(steps: 30)
        #expect(m.verdict.cause == "learning_rate_too_high")
        #expect(m.verdict.causes.map(\.cause).contains("dead_relu"))
    }

    @Test func growingNormsAtSmallStepsAreExplodingGradients() {
        var s = Scenario()
        s.loss = { 2.3 * pow(1.6, Double($0)) }
        s.gradientNorm = { 5 * pow(3, Double($0)) }
        s.tensors = { _ in Scenario.mlpTensors(gradients: [500, 10, 1], update: 1e-3) }
        let m = s.run(steps: 30)
        #expect(m.verdict.cause == "exploding_gradients")
        #expect(m.recommendedActions.first == .enableClipping(norm: 1.0))
    }

    @Test func widthOneLayerIsBottleneck() {
        var s = Scenario()
        s.facts.layers = [LayerFact(name: "layers.0", kind: "dense", units: 64, activation: "relu"),
                          LayerFact(name: "layers.1", kind: "dense", units: 1, activation: "relu"),
                          LayerFact(name: "layers.2", kind: "dense", units: 10)]
        s.loss = { _ in 2.0 }
        s.layers = { _, _ in Scenario.mlpLayers(dead: [0.1, 1]) }
        let m = s.run(steps: 40)
        #expect(m.verdict.cause == "bottleneck")
        #expect(m.verdict.causes[0].evidence.contains("layers.1 has 1 unit"))
    }

    @Test func rawPixelsAreUnnormalizedInputs() {
        var s = Scenario()
        s.facts.featureMin = 0; s.facts.featureMax = 255; s.facts.featureMean = 72.9; s.facts.featureStd = 90; s.facts.normalization = "none"
        s.loss = { $0 < 4 ? 900 / Double($0) : .nan }
        s.gradientNorm = { _ in 4e4 }
        s.tensors = { step in Scenario.mlpTensors(update: step == 1 ? -1 : 5) }
        let m = s.run(steps: 30)
        #expect(m.verdict.cause == "unnormalized_inputs")
        #expect(m.verdict.step! <= 5)
        #expect(m.alerts.first?.severity == .warning)
    }

    @Test func rawPixelsThatStillLearnAreOnlyAWarning() {
        var s = Scenario()
        s.facts.featureMin = 0; s.facts.featureMax = 255; s.facts.featureMean = 72.9; s.facts.featureStd = 90
        let m = s.run(steps: 60)
        #expect(!m.verdict.detected)
        #expect(m.alerts.contains { $0.cause == "unnormalized_inputs" && $0.severity == .warning })
    }

    @Test func oneFeatureOnAnotherScaleIsAWarningEvenWhenTheDataLooksNormalized() {
        // Globally standardized by hand: mean 0, std 1 overall, but feature 3 spans 1000× the rest.
        var s = Scenario()
        s.facts.featureMin = -0.1; s.facts.featureMax = 3.6; s.facts.featureMean = 0; s.facts.featureStd = 1; s.facts.normalization = "none"
        s.facts.widestFeature = 3; s.facts.widestFeatureRatio = 1000
        let healthy = s.run(steps: 60)
        #expect(!healthy.verdict.detected, "it still learns: a warning, not a collapse")
        #expect(healthy.alerts.contains { $0.cause == "unnormalized_inputs" && $0.severity == .warning && $0.message.contains("feature 3 spans") })
        // The same data and a run stuck at chance: the inputs are named, not the dynamics.
        s.loss = { _ in 2.30 }
        s.gradientNorm = { _ in 0.01 }
        let stuck = s.run(steps: 60)
        #expect(stuck.verdict.cause == "unnormalized_inputs", "\(stuck.verdict)")
        #expect(stuck.verdict.causes.first?.evidence.contains("feature 3 spans 1e+03× the median feature's range") == true, "\(stuck.verdict)")
        // Below the ratio, nothing.
        s.facts.widestFeatureRatio = 20
        #expect(s.run(steps: 60).verdict.cause != "unnormalized_inputs")
    }

    @Test func oneClassLabelsAreConstantLabelsAtTheFirstCheck() {
        var s = Scenario()
        s.facts.labelHistogram = [0, 0, 0, 2000]; s.facts.classCount = 4; s.facts.labelMin = 3; s.facts.labelMax = 3; s.facts.examples = 2000
        s.loss = { 1e-3 / Double($0) }
        let m = s.run(steps: 5)
        #expect(m.verdict.cause == "constant_labels")
        #expect(m.verdict.step == 1)
    }

    @Test(arguments: [("mse", 1, "regresses the class indices"), ("cross_entropy", 1, "softmax of one logit")])
    func lossThatDoesNotFitTheOutputsIsLossMismatch(loss: String, units: Int, phrase: String) {
        var s = Scenario()
        s.facts.lossKind = loss; s.facts.outputUnits = units
        let m = s.run(steps: 3)
        #expect(m.verdict.cause == "loss_mismatch")
        #expect(m.verdict.step == 1)
        #expect(m.verdict.causes[0].evidence.contains(phrase))
    }

    @Test func binaryMSERegressionIsNotAMismatch() {
        var s = Scenario()
        s.facts.lossKind = "mse"; s.facts.outputUnits = 1; s.facts.classCount = 2; s.facts.labelHistogram = [500, 500]; s.facts.labelMax = 1
        s.loss = { 0.25 * exp(-Double($0) / 20) + 0.05 }
        #expect(!s.run(steps: 60).verdict.detected)
    }

    @Test func nonFiniteFeaturesAreNanInf() {
        var s = Scenario()
        s.facts.nonFiniteFeatures = 12
        #expect(s.run(steps: 2).verdict.cause == "nan_inf")
    }

    @Test func forwardOverflowFromHugeInputsIsNanInfNotUnnormalized() {
        var s = Scenario()
        s.facts.featureMin = -1e38; s.facts.featureMax = 1e38; s.facts.featureStd = 5e37; s.facts.normalization = "none"
        s.input = { _, _ in InputSignals(min: -1e38, max: 1e38, meanAbs: 4e37) }
        s.loss = { _ in .nan }
        s.gradientNorm = { _ in .nan }
        s.output = { _, _ in OutputSignals(units: 10, maxVariance: .nan, distinctPredictions: 1, distinctLabels: 10, nonFiniteCount: 640) }
        let m = s.run(steps: 10)
        #expect(m.verdict.cause == "nan_inf")
        #expect(m.verdict.step == 1)
    }

    @Test func oneReplicaWithOutlierGradientsIsReplicaFault() {
        var s = Scenario()
        s.shardGradientNorm = { step, replica in replica == 1 && step > 3 ? 3e19 : 1.5 }
        s.gradientNorm = { $0 > 3 ? 2e19 : 1.5 }  // the corrupted shard dominates the average
        s.loss = { _ in 2.0 }  // forward passes agree: the fault is in one replica's gradient
        let m = s.run(steps: 20)
        #expect(m.verdict.cause == "replica_fault")
        #expect(m.verdict.replica == 1)
        #expect(m.verdict.step == 3 + s.settings.replicaOutlierEvents)
        #expect(m.recommendedActions.first == .evictReplica(1))
    }

    @Test func shardSpreadWhileTheWholeRunBlowsUpIsNotReplicaFault() {
        var s = Scenario()
        s.shardGradientNorm = { step, replica in step > 3 ? 1e4 * pow(10, Double(replica * 3)) : 1.5 }
        s.gradientNorm = { $0 > 3 ? 1e7 : 1.5 }
        #expect(s.run(steps: 20).verdict.replica == nil)
        #expect(!s.run(steps: 20).verdict.causes.contains { $0.cause == "replica_fault" })
    }

    @Test func auditMismatchIsReplicaFault() {
        let m = Scenario().run(steps: 5)
        m.recordAuditMismatch(step: 6, shard: 3, replicaA: 0, replicaB: 2)
        m.recordAuditMismatch(step: 7, shard: 1, replicaA: 1, replicaB: 2)
        #expect(m.verdict.cause == "replica_fault")
        #expect(m.verdict.step == 6)
        #expect(m.verdict.replica == 2)
    }

    @Test func aContributionChangedAfterItWasComputedNamesItsReplicaAtOnce() {
        let m = Scenario().run(steps: 5)
        #expect(m.verdict.cause == nil)
        m.recordTransitMismatch(step: 6, shards: 2..<4, replica: 1, reported: 2.5, received: 3.1e4)
        #expect(m.verdict.cause == "replica_fault")
        #expect(m.verdict.step == 6 && m.verdict.replica == 1)
        #expect(m.verdict.causes.first?.onsetStep == 6)
        #expect(m.recommendedActions.first == .evictReplica(1))
        #expect(m.verdict.causes.first?.evidence.contains("shards 2..<4") == true)
    }

    @Test func aChangedContributionNamesTheReplicaOfAnEarlierFinding() {
        let m = Scenario().run(steps: 5)
        m.recordAuditMismatch(step: 6, shard: 0, replicaA: 0, replicaB: 1)
        #expect(m.verdict.cause == "replica_fault" && m.verdict.replica == nil)
        m.recordTransitMismatch(step: 7, shards: 1..<2, replica: 1, reported: 2.5, received: 9e3)
        #expect(m.verdict.replica == 1)
        #expect(m.recommendedActions.first == .evictReplica(1))
    }

    @Test func aRefereedAuditNamesTheReplicaEvenWithTwo() {
        let m = Scenario().run(steps: 5)
        m.recordAuditMismatch(step: 6, shard: 0, replicaA: 0, replicaB: 1)
        #expect(m.verdict.cause == "replica_fault")
        #expect(m.verdict.replica == nil, "two replicas disagreeing alone do not say which is wrong")
        m.recordAuditMismatch(step: 7, shard: 1, replicaA: 1, replicaB: 0, suspect: 1)
        #expect(m.verdict.replica == 1)
        #expect(m.recommendedActions.first == .evictReplica(1))
        #expect(m.verdict.causes.first?.evidence.contains("audit at step 6") == true)
    }
}
