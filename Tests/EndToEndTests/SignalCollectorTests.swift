import Config
import Foundation
import Cluster
import Signals
import Stress
import Training
import TensorCore
import Testing

/// The collapse monitor's per-layer statistics of convolutional outputs (the eight-lane fast
/// path and its non-finite fallback) against a direct computation.
struct SignalCollectorTests {
    @Test func convolutionalLayerStatisticsMatchADirectComputation() throws {
        // [2 examples, 3 channels, 5×5]: 25 values per plane, three lanes of 8 and a tail of 1.
        // Channel 0 is never positive (dead); channel 2 holds an inf and a NaN.
        var values = [Float](repeating: 0, count: 2 * 3 * 25)
        for n in 0..<2 {
            for c in 0..<3 {
                for k in 0..<25 {
                    let i = (n * 3 + c) * 25 + k
                    values[i] = c == 0 ? -Float(k) * 0.1 : Float((k * 37 + n * 11 + c) % 17) * 0.25 - 1.5
                }
            }
        }
        values[(0 * 3 + 2) * 25 + 24] = .infinity  // the tail element
        values[(1 * 3 + 2) * 25 + 3] = .nan         // inside a lane block
        let output = Tensor(values, shape: [2, 3, 5, 5])
        let collector = SignalCollector()
        let features = [Float](repeating: 1, count: 8)
        features.withUnsafeBufferPointer { collector.begin(features: $0.baseAddress!, featureCount: 4, count: 2) }
        collector.observe(depth: 0, name: "layers.0", activation: .relu, preActivation: output, output: output)
        let layer = try #require(collector.finish(lossSum: 0, count: 2).layers.first)
        #expect(layer.nonFiniteCount == 2)
        #expect(abs(layer.deadFraction - 1.0 / 3.0) < 1e-12)
        let std = Self.outputStd(values)
        #expect(abs(layer.outputStd - std) < 1e-5 * max(1, std), "\(layer.outputStd) vs \(std)")
    }

    /// outputStd over all finite values, divided by the element count as the collector does.
    static func outputStd(_ values: [Float]) -> Double {
        let finite = values.filter(\.isFinite).map(Double.init)
        let total = Double(values.count)
        let mean = finite.reduce(0, +) / total
        return max(0, finite.map { $0 * $0 }.reduce(0, +) / total - mean * mean).squareRoot()
    }

    /// Dense outputs go through the C kernel (units in blocks of 32, then the tail): 70 units =
    /// two blocks and 6 tail units; unit 3 (in a block) and unit 66 (in the tail) are never
    /// positive, so 2 of 70 are dead; a NaN takes the slow path, which skips and counts it.
    @Test(arguments: [false, true])
    func denseLayerStatisticsMatchADirectComputation(withNaN: Bool) throws {
        let rows = 9, units = 70
        var values = (0..<(rows * units)).map { i -> Float in Float((i * 29 + 7) % 23) * 0.125 - 1.0 }
        for r in 0..<rows { values[r * units + 3] = -Float(r) - 0.5; values[r * units + 66] = -0.25 * Float(r) }
        if withNaN { values[4 * units + 40] = .nan }
        let output = Tensor(values, shape: [rows, units])
        let collector = SignalCollector()
        let features = [Float](repeating: 1, count: 8)
        features.withUnsafeBufferPointer { collector.begin(features: $0.baseAddress!, featureCount: 4, count: 2) }
        collector.observe(depth: 0, name: "layers.0", activation: .relu, preActivation: output, output: output)
        let layer = try #require(collector.finish(lossSum: 0, count: rows).layers.first)
        #expect(layer.nonFiniteCount == (withNaN ? 1 : 0))
        #expect(abs(layer.deadFraction - 2.0 / 70.0) < 1e-12)
        let std = Self.outputStd(values)
        #expect(abs(layer.outputStd - std) < 1e-5 * max(1, std), "\(layer.outputStd) vs \(std)")
        #expect(layer.effectiveWidth == 70)
    }

    @Test func thePermutedLabelGapCountsOnlyPairsWhoseLabelsDiffer() throws {
        // Six examples, three classes; example r is paired with r + 3. Logits: 2 at the own label, 0 elsewhere.
        let labels: [Float] = [0, 1, 2, 0, 2, 2]
        var logits = [Float](repeating: 0, count: 6 * 3)
        for r in 0..<6 { logits[r * 3 + Int(labels[r])] = 2 }
        let collector = SignalCollector(lossKind: .crossEntropy)
        let features = [Float](repeating: 1, count: 6)
        features.withUnsafeBufferPointer { collector.begin(features: $0.baseAddress!, featureCount: 1, count: 6) }
        labels.withUnsafeBufferPointer { collector.observeOutput(Tensor(logits, shape: [6, 3]), labels: $0.baseAddress!) }
        let signals = collector.finish(lossSum: 0, count: 6)
        let gap = signals.output.permutedLossGap
        // The label histogram (an array for class indices): 3 classes with 2, 1 and 3 examples.
        #expect(signals.labels.distinct == 3 && signals.output.distinctLabels == 3)
        let entropy = -[2.0, 1, 3].map { $0 / 6 * log($0 / 6) }.reduce(0, +)
        #expect(abs(signals.output.labelEntropy - entropy) < 1e-12)
        // Pairs r → r+3 mod 6: (0→0: 0 vs 0, same), (1→2), (2→2, same), (3→0, same), (4→1), (5→2, same):
        // the two pairs with different labels each differ by 2 − 0 = 2; equal-label pairs are left out.
        #expect(gap == 2, "\(gap)")
        // Every pair equal: not measured.
        let same: [Float] = [1, 1, 1, 1]
        features.withUnsafeBufferPointer { collector.begin(features: $0.baseAddress!, featureCount: 1, count: 4) }
        same.withUnsafeBufferPointer { collector.observeOutput(Tensor([Float](repeating: 0, count: 12), shape: [4, 3]), labels: $0.baseAddress!) }
        #expect(collector.finish(lossSum: 0, count: 4).output.permutedLossGap == nil)
    }
}

/// The coordinator's sent-versus-received norm comparison (MonitorHookup).
struct TransitNormTests {
    @Test func onlyAChangeOfTheValuesCounts() {
        #expect(!MonitorHookup.changedInTransit(reported: 2.5, received: 2.5))
        #expect(MonitorHookup.changedInTransit(reported: 2.5, received: 2.5.nextUp), "fp32 wires: the same function of the same values, so any difference is a change")
        #expect(MonitorHookup.changedInTransit(reported: 2.5, received: 2.6))
        // A diverging run: both sides infinite (or NaN) is not a replica's fault.
        #expect(!MonitorHookup.changedInTransit(reported: .infinity, received: .infinity))
        #expect(!MonitorHookup.changedInTransit(reported: .nan, received: .infinity))
        // Finite when computed, not when it arrived (or the reverse): changed.
        #expect(MonitorHookup.changedInTransit(reported: 2.5, received: .infinity))
        #expect(MonitorHookup.changedInTransit(reported: .nan, received: 2.5))
        #expect(!MonitorHookup.changedInTransit(reported: 0, received: 0))
        #expect(MonitorHookup.changedInTransit(reported: 0, received: 1e-3))
    }
}

