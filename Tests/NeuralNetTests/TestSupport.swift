import Config
import NeuralNet
import TensorCore
import Testing

/// A model with one fixed small batch, computed by `Model.computeShard` in training mode.
///
/// Features are uniform in ±1 and labels random class indices (0/1 for a single output unit),
/// both drawn from a stream keyed by the seed; `randomKey` fixes every dropout mask.
struct ShardFixture {
    let model: Model
    let features: [Float]
    let labels: [Float]
    let loss: LossKind
    let randomKey: [UInt64]
    var count: Int { labels.count }

    init(_ config: ModelConfig, loss: LossKind = .crossEntropy, examples: Int = 3, seed: UInt64 = 1,
         randomKey: [UInt64] = [7, 1, 0]) throws {
        model = try Model(config: config, seed: seed)
        self.loss = loss
        self.randomKey = randomKey
        var rng = DeterministicRNG(seed, 0xDA7A)
        features = (0..<(examples * config.input.reduce(1, *))).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let classes = model.outputUnits == 1 ? 2 : model.outputUnits
        labels = (0..<examples).map { _ in Float(rng.nextIndex(below: classes)) }
    }

    /// One `computeShard`: the contribution vector (gradient, then batch statistics × count) and the outcome.
    func compute(randomKey key: [UInt64]? = nil, observer: ActivationObserver? = nil) -> (contribution: [Float], outcome: ShardOutcome) {
        var contribution = [Float](repeating: .nan, count: model.contributionCount)
        let outcome = features.withUnsafeBufferPointer { x in
            labels.withUnsafeBufferPointer { y in
                contribution.withUnsafeMutableBufferPointer { c in
                    model.computeShard(features: x.baseAddress!, labels: y.baseAddress!, count: count, loss: loss,
                                       randomKey: key ?? randomKey, into: c.baseAddress!, observer: observer)
                }
            }
        }
        return (contribution, outcome)
    }
}

/// Central finite differences of the summed loss against the gradient part of the contribution.
///
/// Every parameter p is moved by ±h in the flat buffer and the shard recomputed (same batch,
/// same dropout masks, batch statistics of the batch as in training); the numeric derivative
/// (L(p+h) − L(p−h)) / 2h is formed in Float64 from the Float32 losses. Stated bound, the same
/// as TensorCore's op-level check: |analytic − numeric| ≤ 2e-3 + 2e-2·max(|analytic|, |numeric|).
///
/// ReLU-family activations have a kink at 0 that a ±h step must not cross. The fixtures put
/// them only right after the first layer, whose pre-activations move by at most h·max(1, |x|) = h
/// when one parameter moves by h (inputs lie in ±1); so the check first requires every such
/// pre-activation to be more than h from 0, and reports the sample point instead of a false
/// gradient mismatch otherwise.
/// Returns the number of parameters checked (all of them), so callers can see it was not zero.
@discardableResult
func checkModelGradients(_ fixture: ShardFixture, h: Float = 1e-2,
                         sourceLocation: SourceLocation = #_sourceLocation) -> Int {
    let model = fixture.model
    let kinks = KinkMargin()
    _ = fixture.compute(observer: kinks)
    guard kinks.margin > h else {
        Issue.record("a ReLU-family pre-activation is \(kinks.margin) from its kink, within h = \(h): choose another seed",
                     sourceLocation: sourceLocation)
        return 0
    }
    let analytic = Array(fixture.compute().contribution.prefix(model.parameters.count))
    let values = model.parameters.values.pointer
    for index in 0..<model.parameters.count {
        let original = values[index]
        values[index] = original + h
        let plus = fixture.compute().outcome.lossSum
        values[index] = original - h
        let minus = fixture.compute().outcome.lossSum
        values[index] = original
        let numeric = (plus - minus) / Double(2 * h)
        let a = Double(analytic[index])
        let bound = 2e-3 + 2e-2 * max(abs(a), abs(numeric))
        #expect(abs(a - numeric) <= bound,
                "\(name(of: index, in: model)): analytic \(a) vs numeric \(numeric)",
                sourceLocation: sourceLocation)
    }
    return model.parameters.count
}

/// The smallest |pre-activation| at any ReLU, leaky-ReLU or PReLU of a forward pass.
final class KinkMargin: ActivationObserver {
    var margin = Float.infinity
    func observe(depth: Int, name: String, activation: Activation?, preActivation: Tensor, output: Tensor) {
        switch activation {
        case .relu?, .leakyRelu?, .prelu?:
            for i in 0..<preActivation.count { margin = min(margin, abs(preActivation.data[i])) }
        default: break
        }
    }
}

/// `layers.0.weight[3]`: the tensor and element a flat parameter index falls in.
func name(of index: Int, in model: Model) -> String {
    let entry = model.parameters.entries.last { $0.offset <= index }!
    return "\(entry.name)[\(index - entry.offset)]"
}

/// A sequential model config over `input`.
func model(_ input: [Int], _ layers: LayerConfig...) -> ModelConfig {
    ModelConfig(input: input, layers: layers)
}

func dense(_ units: Int, _ activation: Activation? = nil, bias: Bool = true) -> LayerConfig {
    .dense(DenseConfig(units: units, activation: activation, useBias: bias))
}
