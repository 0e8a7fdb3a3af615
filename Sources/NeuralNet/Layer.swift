import Config
import TensorCore

/// Receives every hidden representation as the forward pass runs, for the collapse monitor.
public protocol ActivationObserver: AnyObject {
    /// `preActivation` is the layer's affine output (before its activation, if any; for a
    /// convolution with a fused ReLU, the output itself); `output` what the layer passes on. `depth` counts observed layers from the input.
    func observe(depth: Int, name: String, activation: Activation?, preActivation: Tensor, output: Tensor)
    /// The model's output for the shard ([N, units]) with the shard's labels, before the loss.
    func observeOutput(_ output: Tensor, labels: UnsafePointer<Float>)
}

extension ActivationObserver {
    public func observeOutput(_ output: Tensor, labels: UnsafePointer<Float>) {}
}

/// What a forward pass needs besides its input: the tape, the mode, and the key of every
/// random stream in it.
public struct ForwardContext {
    /// Records ops for backward (a non-recording tape for evaluation).
    public let tape: Tape
    /// Training mode: batch statistics in batch norm, dropout active.
    public let training: Bool
    /// Key prefix of the run's random streams for this pass, `[seed, step, shard]`.
    public let randomKey: [UInt64]
    /// Batch statistics each batch-norm layer computed, by its ordinal.
    public var batchStatistics: [Int: BatchStatistics] = [:]
    /// Optional observer of hidden representations.
    public weak var observer: ActivationObserver?
    var observedDepth = 0

    public init(tape: Tape, training: Bool, randomKey: [UInt64], observer: ActivationObserver? = nil) {
        self.tape = tape
        self.training = training
        self.randomKey = randomKey
        self.observer = observer
    }

    mutating func observe(_ name: String, _ activation: Activation?, _ pre: Tensor, _ out: Tensor) {
        guard let observer else { return }
        observer.observe(depth: observedDepth, name: name, activation: activation, preActivation: pre, output: out)
        observedDepth += 1
    }
}

/// A model layer: maps a batch to a batch, with parameters held in the model's stores.
public protocol Layer: AnyObject {
    /// The config path, e.g. `layers.2` or `layers.3.layers.0`.
    var name: String { get }
    /// Output shape of one example.
    var outputShape: [Int] { get }
    func forward(_ x: Tensor, _ context: inout ForwardContext) -> Tensor
}

extension Tape {
    /// Applies a configured activation (nil and `linear` are the identity).
    public func activate(_ x: Tensor, _ activation: Activation?, slope: Tensor? = nil) -> Tensor {
        switch activation {
        case nil, .linear?: return x
        case .relu?: return relu(x)
        case .leakyRelu(let alpha)?: return leakyRelu(x, alpha: alpha)
        case .prelu?: return prelu(x, alpha: slope!)
        case .tanh?: return tanh(x)
        case .sigmoid?: return sigmoid(x)
        case .gelu?: return gelu(x)
        case .softmax?:
            // Softmax over the last axis of [N, features]; image-shaped inputs over their flattening.
            if x.shape.count == 2 { return softmax(x) }
            return reshape(softmax(flatten(x)), x.shape)
        }
    }
}
