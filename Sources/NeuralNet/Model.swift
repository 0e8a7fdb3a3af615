import Config
import TensorCore

/// Why a model could not be built from its config.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// A layer does not fit the shape it receives.
    case shape(layer: String, String)
    /// The config describes no usable model.
    case invalid(String)

    public var description: String {
        switch self {
        case .shape(let layer, let message): return "model: \(layer): \(message)"
        case .invalid(let message): return "model: \(message)"
        }
    }
}

/// One tensor of a model's state in checkpoint order.
public struct StateTensor {
    /// Name, e.g. `layers.0.weight`.
    public let name: String
    /// Whether it is a running statistic (buffer) rather than a trainable parameter.
    public let isBuffer: Bool
    /// Index in `parameters` or `buffers`.
    public let index: Int
}

/// A sequential model built from a `ModelConfig`, its trainable parameters in one flat store
/// and its running statistics in another.
public final class Model {
    /// The config the model was built from.
    public let config: ModelConfig
    /// Trainable parameters (and their gradients).
    public let parameters = ParameterStore()
    /// Running statistics of batch-norm layers.
    public let buffers = ParameterStore()
    /// Top-level layers.
    public private(set) var layers: [Layer] = []
    /// Batch-norm layers in order (their ordinal indexes this array).
    public private(set) var batchNormLayers: [BatchNormLayer] = []
    /// Every tensor in checkpoint (and `params_sha256`) order: each layer's parameters, then its buffers.
    public private(set) var stateOrder: [StateTensor] = []
    /// Output shape of one example.
    public private(set) var outputShape: [Int] = []

    private enum Fill { case initializer(Initializer), constant(Float) }
    private var plan: [(isBuffer: Bool, index: Int, fill: Fill)] = []
    private var dropoutCount = 0

    /// Builds the layers, checks every shape, allocates and initializes the parameters with
    /// random streams keyed by (seed, parameter index).
    public init(config: ModelConfig, seed: UInt64) throws {
        self.config = config
        guard !config.layers.isEmpty else { throw ModelError.invalid("model.layers is empty") }
        try Self.checkSize(after: "model.input", shape: config.input, parameters: 0)
        var shape = config.input
        layers = try build(config.layers, prefix: "layers", input: &shape)
        outputShape = shape
        parameters.allocate()
        buffers.allocate()
        for (ordinal, step) in plan.enumerated() {
            let store = step.isBuffer ? buffers : parameters
            let tensor = store.tensor(step.index)
            switch step.fill {
            case .constant(let value): tensor.data.update(repeating: value, count: tensor.count)
            case .initializer(let initializer):
                var rng = DeterministicRNG(key: [seed, 0x494E_4954, UInt64(ordinal)])
                WeightInitialization.fill(tensor.data, shape: tensor.shape, initializer: initializer, rng: &rng)
            }
        }
        plan.removeAll()
    }

    /// Number of output units per example.
    public var outputUnits: Int { outputShape.reduce(1, *) }

    private func add(_ store: ParameterStore, _ index: Int, _ fill: Fill) {
        let isBuffer = store === buffers
        plan.append((isBuffer, index, fill))
        stateOrder.append(StateTensor(name: store.entries[index].name, isBuffer: isBuffer, index: index))
    }

    private func build(_ configs: [LayerConfig], prefix: String, input shape: inout [Int]) throws -> [Layer] {
        var result: [Layer] = []
        for (position, layerConfig) in configs.enumerated() {
            let name = "\(prefix).\(position)"
            let layer: Layer
            switch layerConfig {
            case .dense(let dense):
                let dense_ = DenseLayer(name: name, config: dense, inputs: shape.reduce(1, *), store: parameters)
                add(parameters, dense_.weight, .initializer(dense.resolvedInitializer(followedBy: configs.activation(following: position))))
                if let bias = dense_.bias { add(parameters, bias, .constant(dense.biasInit)) }
                if let slope = dense_.slope, case .prelu(let initial)? = dense.activation { add(parameters, slope, .constant(initial)) }
                layer = dense_
            case .conv2d(let conv):
                let conv_ = try Conv2DLayer(name: name, config: conv, input: shape, store: parameters)
                add(parameters, conv_.weight, .initializer(conv.resolvedInitializer(followedBy: configs.activation(following: position))))
                if let bias = conv_.bias { add(parameters, bias, .constant(conv.biasInit)) }
                if let slope = conv_.slope, case .prelu(let initial)? = conv.activation { add(parameters, slope, .constant(initial)) }
                layer = conv_
            case .maxpool2d(let size, let stride):
                layer = try MaxPoolLayer(name: name, size: size, stride: stride, input: shape)
            case .flatten:
                layer = FlattenLayer(name: name, input: shape)
            case .batchnorm(let momentum, let eps):
                let bn = BatchNormLayer(name: name, momentum: momentum, epsilon: eps, ordinal: batchNormLayers.count,
                                        input: shape, store: parameters, buffers: buffers)
                add(parameters, bn.gamma, .constant(1))
                add(parameters, bn.beta, .constant(0))
                add(buffers, bn.runningMean, .constant(0))
                add(buffers, bn.runningVariance, .constant(1))
                batchNormLayers.append(bn)
                layer = bn
            case .dropout(let rate):
                layer = DropoutLayer(name: name, rate: rate, ordinal: dropoutCount, input: shape)
                dropoutCount += 1
            case .activation(let activation):
                let act = ActivationLayer(name: name, activation: activation, input: shape, store: parameters)
                if let slope = act.slope, case .prelu(let initial) = activation { add(parameters, slope, .constant(initial)) }
                layer = act
            case .residual(let body):
                var inner = shape
                let blocks = try build(body, prefix: "\(name).layers", input: &inner)
                layer = try ResidualLayer(name: name, body: blocks, input: shape)
            }
            shape = layer.outputShape
            try Self.checkSize(after: name, shape: shape, parameters: parameters.count)
            result.append(layer)
        }
        return result
    }

    /// The most values one example may have at any layer, and the most parameters: sizes multiply
    /// into allocations, and release builds do not check that arithmetic. Each layer's shape and
    /// parameters are checked as it is built, so no product of checked values can wrap.
    public static let maximumSize = Int(Int32.max)

    /// The product of `dims`, or nil when it exceeds `maximumSize` (or would overflow).
    static func boundedProduct(_ dims: [Int]) -> Int? {
        var product = 1
        for dim in dims {
            let (next, overflow) = product.multipliedReportingOverflow(by: dim)
            guard !overflow, next <= maximumSize else { return nil }
            product = next
        }
        return product
    }

    static func checkSize(after layer: String, shape: [Int], parameters: Int) throws {
        guard boundedProduct(shape) != nil else {
            throw ModelError.shape(layer: layer, "its output \(shape) is more than \(maximumSize) values per example")
        }
        guard parameters <= maximumSize else {
            throw ModelError.invalid("the model has more than \(maximumSize) parameters by \(layer) (\(parameters))")
        }
    }

    /// Runs the layers on x ([N] + input shape, or [N, features] for any input shape with the
    /// same element count).
    public func forward(_ x: Tensor, _ context: inout ForwardContext) -> Tensor {
        var h = x
        let expected = [x.shape[0]] + config.input
        if h.shape != expected { h = context.tape.reshape(h, expected) }
        for layer in layers { h = layer.forward(h, &context) }
        return h
    }
}
