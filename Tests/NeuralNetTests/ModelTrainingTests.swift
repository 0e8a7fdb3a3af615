import Config
import NeuralNet
import Optimizers
import TensorCore
import Testing

/// `Model.computeShard`'s contract: same inputs give the same bits; the contribution is the
/// gradient, then each running statistic's batch value times the example count; and the
/// pieces together train a small model.
@Suite struct ModelTrainingTests {
    static let withBatchNorm = model([3], dense(4), .batchnorm(momentum: 0.1, eps: 1e-5), .activation(.relu),
                                     .dropout(rate: 0.25), dense(2))

    @Test func sameInputsGiveTheSameBits() throws {
        let fixture = try ShardFixture(Self.withBatchNorm, examples: 6)
        let first = fixture.compute(), second = fixture.compute()
        #expect(first.contribution.map(\.bitPattern) == second.contribution.map(\.bitPattern))
        #expect(first.outcome == second.outcome)
        // A model built again from the same config and seed starts from the same bits.
        let rebuilt = try ShardFixture(Self.withBatchNorm, examples: 6)
        #expect(rebuilt.model.parameters.valueArray.map(\.bitPattern) == fixture.model.parameters.valueArray.map(\.bitPattern))
        #expect(rebuilt.compute().contribution.map(\.bitPattern) == first.contribution.map(\.bitPattern))
    }

    @Test func anotherSeedGivesOtherParameters() throws {
        let one = try Model(config: Self.withBatchNorm, seed: 1), other = try Model(config: Self.withBatchNorm, seed: 2)
        #expect(one.parameters.valueArray != other.parameters.valueArray)
    }

    @Test func contributionIsTheGradientThenTheBatchStatisticsTimesTheCount() throws {
        let fixture = try ShardFixture(Self.withBatchNorm, examples: 6)
        let model = fixture.model
        let (contribution, outcome) = fixture.compute()
        #expect(contribution.count == model.parameters.count + model.buffers.count)
        #expect(model.buffers.entries.map(\.name) == ["layers.1.running_mean", "layers.1.running_var"])
        let gradient = Array(UnsafeBufferPointer(start: model.parameters.gradients.pointer, count: model.parameters.count))
        #expect(Array(contribution.prefix(model.parameters.count)) == gradient)
        #expect(gradient.contains { $0 != 0 })
        #expect(outcome.count == 6)

        // The batch-norm input, by a naive loop over the dense layer's parameters: x·Wᵀ + b.
        let values = model.parameters.valueArray
        let weight = model.parameters.entries[0], bias = model.parameters.entries[1]
        let units = 4, inputs = 3, n = fixture.count
        var pre = [[Double]](repeating: [Double](repeating: 0, count: units), count: n)
        for e in 0..<n {
            for u in 0..<units {
                var sum = Double(values[bias.offset + u])
                for i in 0..<inputs { sum += Double(values[weight.offset + u * inputs + i]) * Double(fixture.features[e * inputs + i]) }
                pre[e][u] = sum
            }
        }
        let mean = model.parameters.count + model.buffers.entries[0].offset
        let variance = model.parameters.count + model.buffers.entries[1].offset
        for u in 0..<units {
            let mu = pre.reduce(0) { $0 + $1[u] } / Double(n)
            let unbiased = pre.reduce(0) { $0 + ($1[u] - mu) * ($1[u] - mu) } / Double(n - 1)
            #expect(abs(Double(contribution[mean + u]) - mu * Double(n)) <= 1e-5 * max(1, abs(mu * Double(n))), "mean of unit \(u)")
            #expect(abs(Double(contribution[variance + u]) - unbiased * Double(n)) <= 1e-5 * max(1, unbiased * Double(n)), "variance of unit \(u)")
        }
    }

    @Test func aShardWithoutBatchNormContributesOnlyItsGradient() throws {
        let fixture = try ShardFixture(model([3], dense(4, .tanh), dense(2)))
        #expect(fixture.model.contributionCount == fixture.model.parameters.count)
        #expect(fixture.compute().contribution.allSatisfy { $0.isFinite })
    }

    @Test func anEmptyShardContributesZeros() throws {
        let fixture = try ShardFixture(Self.withBatchNorm)
        var contribution = [Float](repeating: .nan, count: fixture.model.contributionCount)
        let outcome = contribution.withUnsafeMutableBufferPointer { c in
            fixture.model.computeShard(features: fixture.features, labels: fixture.labels, count: 0, loss: .crossEntropy,
                                       randomKey: fixture.randomKey, into: c.baseAddress!)
        }
        #expect(outcome == ShardOutcome())
        #expect(contribution.allSatisfy { $0 == 0 })
    }

    @Test func runningStatisticsFollowPyTorchsMomentumRule() throws {
        let model = try Model(config: Self.withBatchNorm, seed: 1)
        let merged: [Float] = [1, 2, 3, 4, 10, 20, 30, 40]  // running_mean's 4, then running_var's 4
        merged.withUnsafeBufferPointer { model.updateRunningStatistics(merged: $0.baseAddress!) }
        // From mean 0 and variance 1: (1 − 0.1)·running + 0.1·batch.
        let expected: [Float] = [0.1, 0.2, 0.3, 0.4, 0.9 + 1, 0.9 + 2, 0.9 + 3, 0.9 + 4]
        for (value, reference) in zip(model.buffers.valueArray, expected) { #expect(abs(value - reference) < 1e-6) }
    }

    /// A tiny convergence test: a 2-8-2 MLP learns a linearly separable rule on 256 points in
    /// 150 full-batch Adam steps (lr 0.05). The loss starts near ln 2 ≈ 0.69.
    @Test func aSmallMLPLearnsALinearlySeparableRule() throws {
        let config = model([2], dense(8, .tanh), dense(2))
        let model = try Model(config: config, seed: 3)
        var rng = DeterministicRNG(11, 0x5EED)
        let n = 256
        let features = (0..<(2 * n)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let labels = (0..<n).map { e -> Float in features[2 * e] + 0.5 * features[2 * e + 1] > 0 ? 1 : 0 }
        let optimizer = Optimizer(config: OptimizerConfig(name: .adam, lr: 0.05), parameterCount: model.parameters.count, totalSteps: 150)
        let ranges = model.parameters.entries.map { $0.offset..<($0.offset + $0.count) }
        let before = model.evaluate(features: features, labels: labels, count: n, loss: .crossEntropy)
        var gradient = [Float](repeating: 0, count: model.contributionCount)
        for step in 0..<150 {
            gradient.withUnsafeMutableBufferPointer { g in
                _ = model.computeShard(features: features, labels: labels, count: n, loss: .crossEntropy,
                                       randomKey: [3, UInt64(step), 0], into: g.baseAddress!)
                for i in 0..<g.count { g[i] /= Float(n) }  // the summed loss's gradient → the mean's
                optimizer.update(parameters: model.parameters.values.pointer, gradients: g.baseAddress!, tensorRanges: ranges)
            }
        }
        let after = model.evaluate(features: features, labels: labels, count: n, loss: .crossEntropy)
        #expect(before.loss > 0.5)
        #expect(after.loss < 0.2 * before.loss, "loss \(before.loss) → \(after.loss)")
        #expect(after.accuracy >= 0.97, "accuracy \(after.accuracy)")
    }
}
