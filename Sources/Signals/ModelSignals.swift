import CollapseMonitor
import Config
import Data
import Foundation
import NeuralNet

/// Computes the coordinator's per-step signals from the model's parameters and the step's
/// averaged gradient (before clipping): per-tensor gradient and weight norms, weight spread,
/// update-to-weight ratios, identical rows per weight matrix, and non-finite gradient elements.
///
/// `previousParameters` are the parameter values before the last update (nil: ratios unknown).
/// Cost: a few passes over the parameters, well under 1% of a step for the default MLP.
public func computeStepSignals(
    model: Model, gradient: UnsafePointer<Float>, previousParameters: UnsafePointer<Float>?,
    step: Int, loss: Double, gradNorm: Double, clipped: Bool, lr: Double, reusingWeightsOf earlier: StepSignals? = nil,
    gradientSquares known: [Double]? = nil
) -> StepSignals {
    // Each tensor's Σg², when the caller measured it already (the session does, with the step's norm).
    let known = known?.count == model.parameters.entries.count ? known : nil
    if let earlier, earlier.tensors.count == model.parameters.entries.count {
        // Light path: fresh gradient norms, weight statistics carried over from `earlier`.
        var nonFinite = 0
        var tensors = earlier.tensors
        for (index, entry) in model.parameters.entries.enumerated() {
            let squares = known?[index] ?? sumOfSquares(gradient + entry.offset, entry.count)
            if !squares.isFinite { nonFinite += countNonFinite(gradient + entry.offset, entry.count) }
            tensors[index].gradientNorm = squares.squareRoot()
            tensors[index].updateRatio = -1
        }
        return StepSignals(step: step, loss: loss, gradientNorm: gradNorm, clipped: clipped, learningRate: lr,
                           tensors: tensors, nonFiniteGradientCount: nonFinite)
    }
    let values = UnsafePointer(model.parameters.values.pointer)
    var tensors: [TensorSignals] = []
    tensors.reserveCapacity(model.parameters.entries.count)
    var nonFinite = 0
    for (index, entry) in model.parameters.entries.enumerated() {
        let count = entry.count
        let w = values + entry.offset, g = gradient + entry.offset
        let gradientSquares = known?[index] ?? sumOfSquares(g, count)
        if !gradientSquares.isFinite { nonFinite += countNonFinite(g, count) }
        let matrixRows = entry.shape.count >= 2 ? entry.shape[0] : 0
        let rows = max(matrixRows, 1), columns = count / rows
        var weightSum = 0.0, weightSquares = 0.0, deltaSquares = 0.0, previousSquares = 0.0
        var prints: [(Double, Double, Double)] = []
        prints.reserveCapacity(matrixRows)
        let previous = previousParameters.map { $0 + entry.offset }
        for r in 0..<rows {
            let row = rowStatistics(w + r * columns, previous.map { $0 + r * columns }, columns)
            weightSum += row.sum; weightSquares += row.squares; deltaSquares += row.delta; previousSquares += row.previous
            if matrixRows >= 2 { prints.append((row.sum, row.squares, row.projection)) }
        }
        var ratio = -1.0
        if previousParameters != nil {
            if previousSquares > 0 { ratio = (deltaSquares / previousSquares).squareRoot() } else {
                ratio = deltaSquares > 0 || !deltaSquares.isFinite ? .infinity : 0
            }
        }
        let mean = weightSum / Double(max(count, 1))
        tensors.append(TensorSignals(
            name: entry.name, gradientNorm: gradientSquares.squareRoot(), weightNorm: weightSquares.squareRoot(),
            weightStd: max(0, weightSquares / Double(max(count, 1)) - mean * mean).squareRoot(), updateRatio: ratio,
            rows: matrixRows, identicalRows: matrixRows >= 2 ? largestGroup(of: prints) : 0))
    }
    return StepSignals(step: step, loss: loss, gradientNorm: gradNorm, clipped: clipped, learningRate: lr,
                       tensors: tensors, nonFiniteGradientCount: nonFinite)
}

/// Σx² with eight SIMD lanes (the reduction order is fixed, so results are reproducible).
@inline(__always) func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
    var acc = SIMD8<Float>(), i = 0
    let raw = UnsafeRawPointer(x)
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        acc += v * v
        i += 8
    }
    var total = Double(acc.sum())
    while i < n { total += Double(x[i] * x[i]); i += 1 }
    return total
}

/// One row's statistics in a single SIMD pass: Σw, Σw², the fingerprint projection
/// Σw·((c mod 8) − 3.5), and with a previous row p, Σ(w − p)² and Σp².
@inline(__always) func rowStatistics(_ w: UnsafePointer<Float>, _ p: UnsafePointer<Float>?, _ n: Int)
    -> (sum: Double, squares: Double, projection: Double, delta: Double, previous: Double) {
    let weights = SIMD8<Float>(-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5)
    var s = SIMD8<Float>(), q = SIMD8<Float>(), j = SIMD8<Float>(), d = SIMD8<Float>(), r = SIMD8<Float>()
    var i = 0
    let rw = UnsafeRawPointer(w)
    if let p {
        let rp = UnsafeRawPointer(p)
        while i + 8 <= n {
            let v = rw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let u = rp.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            s += v; q += v * v; j += v * weights
            let e = v - u
            d += e * e; r += u * u
            i += 8
        }
    } else {
        while i + 8 <= n {
            let v = rw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            s += v; q += v * v; j += v * weights
            i += 8
        }
    }
    var sum = Double(s.sum()), squares = Double(q.sum()), projection = Double(j.sum())
    var delta = Double(d.sum()), previous = Double(r.sum())
    while i < n {
        let v = w[i]
        sum += Double(v); squares += Double(v * v); projection += Double(v * (Float(i & 7) - 3.5))
        if let p { let e = v - p[i]; delta += Double(e * e); previous += Double(p[i] * p[i]) }
        i += 1
    }
    return (sum, squares, projection, delta, previous)
}

/// Elements that are NaN or infinite.
func countNonFinite(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
    var count = 0
    for k in 0..<n where !x[k].isFinite { count += 1 }
    return count
}

/// The size of the largest group of (near-)identical rows, from each row's fingerprint (sum, sum
/// of squares, projection on fixed weights): fingerprints equal within a relative 1e-6 are one
/// group. O(rows·log rows) after the single pass that computed the fingerprints.
func largestGroup(of fingerprints: [(Double, Double, Double)]) -> Int {
    let prints = fingerprints.sorted { $0.0 < $1.0 }
    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-6 * (1 + max(abs(a), abs(b))) }
    var best = prints.isEmpty ? 0 : 1, start = 0
    for i in prints.indices.dropFirst() {
        let a = prints[start], b = prints[i]
        if close(a.0, b.0) && close(a.1, b.1) && close(a.2, b.2) { best = max(best, i - start + 1) } else { start = i }
    }
    return best
}

/// The facts the monitor knows before step 1, from the config, the built model and the
/// training set as the model sees it (after normalization).
public func staticFacts(config: RunConfig, model: Model, train: Dataset, summary: DataSummary? = nil) -> StaticFacts {
    let summary = summary ?? DataSummary(train)
    var layers: [LayerFact] = []
    func walk(_ list: [LayerConfig], prefix: String) {
        for (i, layer) in list.enumerated() {
            let name = "\(prefix).\(i)"
            switch layer {
            case .dense(let d): layers.append(LayerFact(name: name, kind: "dense", units: d.units, activation: d.activation?.name))
            case .conv2d(let c): layers.append(LayerFact(name: name, kind: "conv2d", units: c.filters, activation: c.activation?.name))
            case .activation(let a): layers.append(LayerFact(name: name, kind: "activation", activation: a.name))
            case .residual(let body): walk(body, prefix: "\(name).layers")
            default: layers.append(LayerFact(name: name, kind: layer.typeName))
            }
        }
    }
    walk(config.model.layers, prefix: "layers")
    var finalActivation: String?
    for layer in config.model.layers.reversed() {
        switch layer {
        case .dropout, .flatten: continue
        case .activation(let a): finalActivation = a.name
        case .dense(let d): finalActivation = d.activation?.name
        case .conv2d(let c): finalActivation = c.activation?.name
        default: break
        }
        break
    }
    let clip = config.optimizer.clipNorm.map(Double.init)
    var facts = StaticFacts(
        lossKind: config.loss.rawValue, outputUnits: model.outputUnits, finalActivation: finalActivation, layers: layers,
        classCount: train.classCount, labelHistogram: summary.labelHistogram, labelsAreIntegers: train.classCount > 0,
        labelMin: Double(summary.labelMin), labelMax: Double(summary.labelMax), labelStd: Double(summary.labelStd),
        nonFiniteLabels: summary.nonFiniteLabelCount, nonFiniteFeatures: summary.nonFiniteFeatureCount,
        featureMin: Double(summary.featureMin), featureMax: Double(summary.featureMax),
        featureMean: Double(summary.featureMean), featureStd: Double(summary.featureStd),
        constantFeatures: summary.constantFeatureCount, featureCount: summary.featureCount, examples: summary.count,
        optimizer: config.optimizer.name.rawValue, learningRate: Double(config.optimizer.lr), clipNorm: clip,
        normalization: config.data.normalize.rawValue)
    (facts.widestFeature, facts.widestFeatureRatio) = (summary.widestFeature, summary.widestFeatureRatio)
    return facts
}
