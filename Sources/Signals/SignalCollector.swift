import CKernels
import CollapseMonitor
import Config
import Foundation
import NeuralNet
import TensorCore

/// Computes a shard's `ShardSignals` while the model runs forward: input and label statistics,
/// per-layer dead/saturated fractions, spread and effective width, output variance and
/// prediction diversity.
///
/// Use one collector per worker and reuse it: `begin(features:featureCount:count:)`, pass it as
/// the `observer` of `Model.computeShard`, then `finish(lossSum:count:)`. Loops run over raw
/// pointers into reused scratch buffers (no allocation per element); for the 784-256-128-10 MLP
/// at batch 128 the cost is about one extra pass over each activation.
public final class SignalCollector: ActivationObserver {
    /// Pre-activation magnitude beyond which sigmoid/tanh units count as saturated (default 5).
    public let saturationThreshold: Float
    /// The run's loss (`bce` predicts with logit > 0 on one unit).
    public let lossKind: LossKind
    private var layers: [LayerSignals] = []
    private var input = InputSignals()
    private var labels = LabelSignals()
    private var output = OutputSignals()
    private let scratch = Scratch()
    private var shardsSeen = 0

    /// Creates a collector; `saturationThreshold` is the monitor's `saturation_threshold`.
    public init(saturationThreshold: Float = 5, lossKind: LossKind = .crossEntropy) {
        self.saturationThreshold = saturationThreshold
        self.lossKind = lossKind
    }

    /// Starts a shard: measures its `count × featureCount` input features.
    public func begin(features: UnsafePointer<Float>, featureCount: Int, count: Int) {
        layers.removeAll(keepingCapacity: true)
        labels = LabelSignals()
        output = OutputSignals()
        shardsSeen += 1
        // Input statistics describe the data, not the model: measured on the first 40 shards,
        // then on every 50th (the last measurement is carried in between; the data do not change).
        guard shardsSeen <= 40 || shardsSeen % 50 == 0 else { return }
        input = InputSignals()
        guard count > 0, featureCount > 0 else { return }
        let varying = scratch.flags(featureCount)
        var lowLanes = SIMD8<Float>(repeating: .infinity), highLanes = SIMD8<Float>(repeating: -.infinity)
        var absSum = 0.0
        let raw = UnsafeRawPointer(features)
        for r in 0..<count {
            let row = features + r * featureCount
            // Min, max and Σ|x| in eight lanes (fixed order: reproducible), then the tail.
            var absLanes = SIMD8<Float>(), f = 0
            while f + 8 <= featureCount {
                let v = raw.loadUnaligned(fromByteOffset: (r * featureCount + f) * 4, as: SIMD8<Float>.self)
                lowLanes.replace(with: v, where: v .< lowLanes); highLanes.replace(with: v, where: v .> highLanes)
                absLanes += v.replacing(with: -v, where: v .< 0)
                f += 8
            }
            var rowAbs = absLanes.sum()
            while f < featureCount {
                let x = row[f]
                lowLanes[0] = min(lowLanes[0], x); highLanes[0] = max(highLanes[0], x); rowAbs += abs(x)
                f += 1
            }
            absSum += Double(rowAbs)
            if r > 0 {
                // Which features differ from the first row's, eight at a time.
                var f = 0
                while f + 8 <= featureCount {
                    let a = raw.loadUnaligned(fromByteOffset: (r * featureCount + f) * 4, as: SIMD8<Float>.self)
                    let b = raw.loadUnaligned(fromByteOffset: f * 4, as: SIMD8<Float>.self)
                    let bits = SIMD8<UInt8>(truncatingIfNeeded: SIMD8<Int32>(repeating: 0).replacing(with: 1, where: a .!= b))
                    let seen = UnsafeRawPointer(varying).loadUnaligned(fromByteOffset: f, as: SIMD8<UInt8>.self)
                    UnsafeMutableRawPointer(varying).storeBytes(of: seen | bits, toByteOffset: f, as: SIMD8<UInt8>.self)
                    f += 8
                }
                while f < featureCount { varying[f] |= row[f] != features[f] ? 1 : 0; f += 1 }
            }
        }
        var low = lowLanes.min(), high = highLanes.max()
        var nonFinite = 0
        if !absSum.isFinite || !low.isFinite || !high.isFinite {
            // Rare path: recount with the non-finite values left out.
            low = .infinity; high = -.infinity; absSum = 0
            for i in 0..<(count * featureCount) {
                let x = features[i]
                if x.isFinite { low = min(low, x); high = max(high, x); absSum += Double(abs(x)) } else { nonFinite += 1 }
            }
        }
        let finite = count * featureCount - nonFinite
        var constant = 0
        for f in 0..<featureCount where varying[f] == 0 { constant += 1 }
        input = InputSignals(min: finite > 0 ? Double(low) : 0, max: finite > 0 ? Double(high) : 0,
                             meanAbs: finite > 0 ? absSum / Double(finite) : 0,
                             constantFeatures: count > 1 ? constant : 0, nonFiniteCount: nonFinite)
    }

    /// Measures one observed layer (see `ActivationObserver`).
    public func observe(depth: Int, name: String, activation: Activation?, preActivation: Tensor, output out: Tensor) {
        let n = out.shape.first ?? 0
        guard n > 0, out.count > 0 else { return }
        let units = out.shape.count > 1 ? out.shape[1] : 1
        let spatial = out.count / (n * units)
        let sums = scratch.sums(units), squares = scratch.squares(units), positive = scratch.flags(units)
        let y = out.data, p = preActivation.data
        let checkSaturation = activation == .tanh || activation == .sigmoid
        let threshold = saturationThreshold
        var nonFinite = 0, saturatedCount = 0
        if spatial == 1 {
            // Dense layers: per-unit Float sums, squares and maxima, units in blocks down all the
            // rows (CKernels: vectorized for the CPU, the same bits at every width); a non-finite
            // value shows up in the sums and is counted on the rare slow path.
            let floatSums = scratch.floatSums(units), floatSquares = scratch.floatSquares(units)
            let floatMaxima = scratch.floatMaxima(units)
            chorus_column_stats(y, n, units, floatSums, floatSquares, floatMaxima)
            for u in 0..<units { positive[u] = floatMaxima[u] > 0 ? 1 : 0 }
            for r in 0..<n where checkSaturation {
                let pre = p + r * units
                for u in 0..<units where abs(pre[u]) > threshold { saturatedCount += 1 }
            }
            var finite = true
            for u in 0..<units { sums[u] = Double(floatSums[u]); squares[u] = Double(floatSquares[u]); finite = finite && squares[u].isFinite }
            if !finite {
                for u in 0..<units { sums[u] = 0; squares[u] = 0 }
                for r in 0..<n {
                    for u in 0..<units {
                        let v = y[r * units + u]
                        if !v.isFinite { nonFinite += 1; continue }
                        sums[u] += Double(v); squares[u] += Double(v) * Double(v)
                    }
                }
            }
        } else {
        // Convolutional layers: each (example, channel) plane in eight Float lanes (vectorizes);
        // a plane with a non-finite value (its sums are not finite) is redone on the slow path,
        // which skips and counts those values.
        var offset = 0
        let raw = UnsafeRawPointer(y), blocks = spatial / 8
        for _ in 0..<n {
            for u in 0..<units {
                var s8 = SIMD8<Float>(repeating: 0), q8 = SIMD8<Float>(repeating: 0), m8 = SIMD8<Float>(repeating: -.infinity)
                for b in 0..<blocks {
                    let v = raw.loadUnaligned(fromByteOffset: (offset + 8 * b) * 4, as: SIMD8<Float>.self)
                    s8 += v; q8 += v * v; m8.replace(with: v, where: v .> m8)  // (pointwiseMax was a call per vector)
                }
                var s: Float = 0, q: Float = 0
                for lane in 0..<8 { s += s8[lane]; q += q8[lane] }
                var anyPositive: UInt8 = m8.max() > 0 ? 1 : 0
                for k in (8 * blocks)..<spatial {
                    let v = y[offset + k]
                    s += v; q += v * v
                    if v > 0 { anyPositive = 1 }
                }
                if !(s.isFinite && q.isFinite) {
                    s = 0; q = 0; anyPositive = 0
                    for k in 0..<spatial {
                        let v = y[offset + k]
                        if !v.isFinite { nonFinite += 1; continue }
                        s += v; q += v * v
                        if v > 0 { anyPositive = 1 }
                    }
                }
                if checkSaturation {
                    for k in 0..<spatial where abs(p[offset + k]) > threshold { saturatedCount += 1 }
                }
                sums[u] += Double(s); squares[u] += Double(q)
                positive[u] |= anyPositive
                offset += spatial
            }
        }
        }
        let perUnit = Double(n * spatial)
        var maxVariance = 0.0, totalSum = 0.0, totalSquares = 0.0, alive = 0
        for u in 0..<units {
            let mean = sums[u] / perUnit
            maxVariance = max(maxVariance, squares[u] / perUnit - mean * mean)
            totalSum += sums[u]; totalSquares += squares[u]
            if positive[u] != 0 { alive += 1 }
        }
        var effective = 0
        for u in 0..<units {
            let mean = sums[u] / perUnit
            let variance = squares[u] / perUnit - mean * mean
            if variance > 1e-12 && variance > 1e-4 * maxVariance { effective += 1 }
        }
        let total = perUnit * Double(units)
        let mean = totalSum / total
        let reluFamily = activation?.isReLUFamily ?? false
        layers.append(LayerSignals(
            depth: depth, name: name, activation: activation?.name ?? "linear", units: units,
            deadFraction: reluFamily ? Double(units - alive) / Double(units) : 0,
            saturationFraction: checkSaturation ? Double(saturatedCount) / total : 0,
            outputStd: max(0, totalSquares / total - mean * mean).squareRoot(), effectiveWidth: effective,
            nonFiniteCount: nonFinite))
    }

    /// Measures the model's output and the shard's labels.
    public func observeOutput(_ out: Tensor, labels labelPointer: UnsafePointer<Float>) {
        let n = out.shape.first ?? 0
        guard n > 0 else { return }
        let units = out.count / n
        let sums = scratch.sums(units), squares = scratch.squares(units)
        let counts = scratch.counts(max(units, 1))
        let y = out.data
        // Per-unit Σ and Σ² of the finite values in Float64 and the rows' argmax histogram (CKernels).
        let nonFinite = chorus_output_stats(y, n, units, sums, squares, counts)
        var roundedPredictions = Set<Int>()
        if units == 1 {
            for r in 0..<n where roundedPredictions.count < 255 && y[r].isFinite {
                roundedPredictions.insert(lossKind == .bce ? (y[r] > 0 ? 1 : 0) : Int(max(-1e9, min(1e9, y[r].rounded()))))
            }
        }
        var maxVariance = 0.0, varianceSum = 0.0
        for u in 0..<units {
            let mean = sums[u] / Double(n)
            let variance = max(0, squares[u] / Double(n) - mean * mean)
            maxVariance = max(maxVariance, variance); varianceSum += variance
        }
        var distinctPredictions = roundedPredictions.count, predictionEntropy = 0.0
        if units > 1 {
            distinctPredictions = 0
            for u in 0..<units where counts[u] > 0 {
                distinctPredictions += 1
                let q = Double(counts[u]) / Double(n)
                predictionEntropy -= q * log(q)
            }
        }
        // Class indices 0..<256 in an array (the usual case: no hashing per example, and the
        // entropy summed in a fixed order); any other value in a dictionary, at most 255 distinct.
        // (The scratch counts: the prediction histogram above is done with them.)
        let classCounts = scratch.counts(256)
        var classesSeen = 0
        var otherCounts: [Float: Int] = [:]
        var low = Float.infinity, high = -Float.infinity, labelNonFinite = 0
        for r in 0..<n {
            let label = labelPointer[r]
            guard label.isFinite else { labelNonFinite += 1; continue }
            low = min(low, label); high = max(high, label)
            if label >= 0 && label < 256 && label == label.rounded(.towardZero) {
                let index = Int(label)
                if classCounts[index] == 0 { classesSeen += 1 }
                classCounts[index] += 1
            } else if classesSeen + otherCounts.count < 255 || otherCounts[label] != nil {
                otherCounts[label, default: 0] += 1
            }
        }
        var labelEntropy = 0.0
        for c in UnsafeBufferPointer(start: classCounts, count: 256) where c > 0 { let q = Double(c) / Double(n); labelEntropy -= q * log(q) }
        for key in otherCounts.keys.sorted() { let q = Double(otherCounts[key]!) / Double(n); labelEntropy -= q * log(q) }
        let distinctLabels = classesSeen + otherCounts.count
        labels = LabelSignals(min: low.isFinite ? Double(low) : 0, max: high.isFinite ? Double(high) : 0,
                              distinct: distinctLabels, nonFiniteCount: labelNonFinite)
        // The permuted-label gap (see OutputSignals): example r against the label of r + n/2.
        var gap: Double?
        if lossKind == .crossEntropy && units > 1 && n >= 2 {
            var total = 0.0, counted = 0
            for r in 0..<n {
                let own = labelPointer[r], other = labelPointer[(r + n / 2) % n]
                // Pairs with the same label say nothing (their difference is 0 whatever the model
                // learned) and would pull the mean toward zero with unbalanced classes.
                guard own >= 0 && own < Float(units) && other >= 0 && other < Float(units), Int(own) != Int(other) else { continue }
                let row = y + r * units
                let difference = Double(row[Int(own)]) - Double(row[Int(other)])
                if difference.isFinite { total += difference; counted += 1 }
            }
            if counted > 0 { gap = total / Double(counted) }
        }
        output = OutputSignals(units: units, maxVariance: maxVariance, meanVariance: varianceSum / Double(max(units, 1)),
                               distinctPredictions: min(distinctPredictions, 255), distinctLabels: distinctLabels,
                               predictionEntropy: predictionEntropy, labelEntropy: labelEntropy, nonFiniteCount: nonFinite,
                               permutedLossGap: gap)
    }

    /// Ends the shard and returns its signals.
    public func finish(lossSum: Double, count: Int) -> ShardSignals {
        ShardSignals(examples: count, lossSum: lossSum, lossCount: count, input: input, labels: labels, output: output, layers: layers)
    }
}

/// Scratch buffers reused across layers and shards (zeroed on each request, except the kernel outputs), freed with the collector.
private final class Scratch {
    private var doubles: [(pointer: UnsafeMutablePointer<Double>, capacity: Int)] = [(.allocate(capacity: 16), 16), (.allocate(capacity: 16), 16)]
    private var flagBuffer = (pointer: UnsafeMutablePointer<UInt8>.allocate(capacity: 16), capacity: 16)
    private var countBuffer = (pointer: UnsafeMutablePointer<Int>.allocate(capacity: 16), capacity: 16)

    private var floats: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = (0..<3).map { _ in (.allocate(capacity: 16), 16) }

    // The kernel's outputs (chorus_column_stats writes every value): not zeroed.
    func floatSums(_ n: Int) -> UnsafeMutablePointer<Float> { float(0, n) }
    func floatSquares(_ n: Int) -> UnsafeMutablePointer<Float> { float(1, n) }
    func floatMaxima(_ n: Int) -> UnsafeMutablePointer<Float> { float(2, n) }

    private func float(_ slot: Int, _ n: Int) -> UnsafeMutablePointer<Float> {
        if floats[slot].capacity < n { floats[slot].pointer.deallocate(); floats[slot] = (.allocate(capacity: n), n) }
        return floats[slot].pointer
    }

    func sums(_ n: Int) -> UnsafeMutablePointer<Double> { double(0, n) }
    func squares(_ n: Int) -> UnsafeMutablePointer<Double> { double(1, n) }

    func flags(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if flagBuffer.capacity < n { flagBuffer.pointer.deallocate(); flagBuffer = (.allocate(capacity: n), n) }
        flagBuffer.pointer.update(repeating: 0, count: n)
        return flagBuffer.pointer
    }

    func counts(_ n: Int) -> UnsafeMutablePointer<Int> {
        if countBuffer.capacity < n { countBuffer.pointer.deallocate(); countBuffer = (.allocate(capacity: n), n) }
        countBuffer.pointer.update(repeating: 0, count: n)
        return countBuffer.pointer
    }

    private func double(_ index: Int, _ n: Int) -> UnsafeMutablePointer<Double> {
        if doubles[index].capacity < n { doubles[index].pointer.deallocate(); doubles[index] = (.allocate(capacity: n), n) }
        doubles[index].pointer.update(repeating: 0, count: n)
        return doubles[index].pointer
    }

    deinit {
        for buffer in doubles { buffer.pointer.deallocate() }
        for buffer in floats { buffer.pointer.deallocate() }
        flagBuffer.pointer.deallocate()
        countBuffer.pointer.deallocate()
    }
}
