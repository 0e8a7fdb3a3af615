import Foundation
@testable import CollapseMonitor

/// Builds synthetic signal sequences: a healthy baseline that each test perturbs.
struct Scenario {
    var facts = StaticFacts()
    var settings = MonitorSettings()
    /// Loss at step s (healthy: falls from log 10 toward 0.4).
    var loss: (Int) -> Double = { 0.4 + (2.30 - 0.4) * exp(-Double($0) / 15) }
    var gradientNorm: (Int) -> Double = { _ in 1.5 }
    /// The learning rate applied at step s (a schedule's).
    var learningRate: (Int) -> Double = { _ in 0.001 }
    var tensors: (Int) -> [TensorSignals] = { _ in Scenario.mlpTensors() }
    var layers: (Int, Int) -> [LayerSignals] = { _, _ in Scenario.mlpLayers() }
    var output: (Int, Int) -> OutputSignals = { _, _ in OutputSignals(units: 10, maxVariance: 2, meanVariance: 1, distinctPredictions: 8, distinctLabels: 10, predictionEntropy: 2, labelEntropy: 2.2) }
    var input: (Int, Int) -> InputSignals = { _, _ in InputSignals(min: -1, max: 2.5, meanAbs: 0.8) }
    var shardGradientNorm: (Int, Int) -> Double = { _, replica in 1.5 + 0.2 * Double(replica) }
    var replicas = 2

    static func mlpTensors(gradients: [Double] = [0.8, 0.6, 0.9], update: Double = 0.01, identical: [Int] = [1, 1, 1]) -> [TensorSignals] {
        let rows = [256, 128, 10]
        var result: [TensorSignals] = []
        for i in 0..<3 {
            result.append(TensorSignals(name: "layers.\(i).weight", gradientNorm: gradients[i], weightNorm: 8, weightStd: 0.05,
                                        updateRatio: update, rows: rows[i], identicalRows: identical[i]))
            result.append(TensorSignals(name: "layers.\(i).bias", gradientNorm: gradients[i] / 10, weightNorm: 0.1))
        }
        return result
    }

    static func mlpLayers(dead: [Double] = [0.05, 0.08], activation: String = "relu", saturation: [Double] = [0, 0]) -> [LayerSignals] {
        [LayerSignals(depth: 0, name: "layers.0", activation: activation, units: 256, deadFraction: dead[0], saturationFraction: saturation[0]),
         LayerSignals(depth: 1, name: "layers.1", activation: activation, units: 128, deadFraction: dead[1], saturationFraction: saturation[1]),
         LayerSignals(depth: 2, name: "layers.2", activation: "linear", units: 10)]
    }

    func monitor() -> CollapseMonitor { CollapseMonitor(settings: settings, facts: facts) }

    /// Runs `steps` checks and returns the monitor.
    @discardableResult
    func run(steps: Int = 60, monitor existing: CollapseMonitor? = nil) -> CollapseMonitor {
        let m = existing ?? monitor()
        for step in 1...steps {
            var shards: [(replica: Int, shard: Int, signals: ShardSignals)] = []
            for r in 0..<replicas {
                let s = ShardSignals(examples: 64, lossSum: loss(step) * 64, lossCount: 64, input: input(step, r),
                                     labels: LabelSignals(min: 0, max: 9, distinct: 10), output: output(step, r),
                                     layers: layers(step, r), gradientNorm: shardGradientNorm(step, r))
                shards.append((r, r, s))
            }
            let signals = StepSignals(step: step, loss: loss(step), gradientNorm: gradientNorm(step), learningRate: learningRate(step), tensors: tensors(step))
            _ = m.observe(step: step, signals: signals, shards: shards)
        }
        return m
    }
}
