import Config
import TensorCore

/// Fully connected: y = act(x·Wᵀ + b), W [out, in]. Inputs of rank > 2 are flattened.
final class DenseLayer: Layer {
    let name: String, outputShape: [Int]
    let weight: Int, bias: Int?, slope: Int?
    let activation: Activation?
    unowned let store: ParameterStore

    init(name: String, config: DenseConfig, inputs: Int, store: ParameterStore) {
        self.name = name
        self.store = store
        activation = config.activation
        outputShape = [config.units]
        weight = store.register(name: "\(name).weight", shape: [config.units, inputs])
        bias = config.useBias ? store.register(name: "\(name).bias", shape: [config.units]) : nil
        if case .prelu? = config.activation { slope = store.register(name: "\(name).prelu_weight", shape: [1]) } else { slope = nil }
    }

    func forward(_ x: Tensor, _ context: inout ForwardContext) -> Tensor {
        let input = x.shape.count > 2 ? context.tape.flatten(x) : x
        let pre = context.tape.linear(input, weight: store.tensor(weight), bias: bias.map(store.tensor))
        let out = context.tape.activate(pre, activation, slope: slope.map(store.tensor))
        context.observe(name, activation, pre, out)
        return out
    }
}

/// 2-D convolution with an optional activation; weight [F, C, k, k].
final class Conv2DLayer: Layer {
    let name: String, outputShape: [Int]
    let weight: Int, bias: Int?, slope: Int?
    let config: Conv2DConfig
    unowned let store: ParameterStore

    init(name: String, config: Conv2DConfig, input: [Int], store: ParameterStore) throws {
        guard input.count == 3 else {
            throw ModelError.shape(layer: name, "conv2d needs [channels, height, width] input, got \(input)")
        }
        let geometry = ConvolutionGeometry(inputHeight: input[1], inputWidth: input[2], kernelHeight: config.kernel,
                                           kernelWidth: config.kernel, stride: config.stride, same: config.padding == .same)
        guard geometry.outputHeight > 0 && geometry.outputWidth > 0 else {
            throw ModelError.shape(layer: name, "kernel \(config.kernel) does not fit input \(input)")
        }
        let weightShape = [config.filters, input[0], config.kernel, config.kernel]
        // Checked before it is registered (release builds do not check the product).
        guard Model.boundedProduct(weightShape) != nil else {
            throw ModelError.shape(layer: name, "a \(weightShape) kernel is more than \(Model.maximumSize) parameters")
        }
        self.name = name
        self.store = store
        self.config = config
        outputShape = [config.filters, geometry.outputHeight, geometry.outputWidth]
        weight = store.register(name: "\(name).weight", shape: weightShape)
        bias = config.useBias ? store.register(name: "\(name).bias", shape: [config.filters]) : nil
        if case .prelu? = config.activation { slope = store.register(name: "\(name).prelu_weight", shape: [1]) } else { slope = nil }
    }

    func forward(_ x: Tensor, _ context: inout ForwardContext) -> Tensor {
        if case .relu? = config.activation {
            // ReLU fused into the convolution's output pass (the observer sees the output as the
            // pre-activation too: only sigmoid/tanh saturation reads that).
            let out = context.tape.conv2d(x, weight: store.tensor(weight), bias: bias.map(store.tensor),
                                          stride: config.stride, same: config.padding == .same, relu: true)
            context.observe(name, config.activation, out, out)
            return out
        }
        let pre = context.tape.conv2d(x, weight: store.tensor(weight), bias: bias.map(store.tensor),
                                      stride: config.stride, same: config.padding == .same)
        let out = context.tape.activate(pre, config.activation, slope: slope.map(store.tensor))
        context.observe(name, config.activation, pre, out)
        return out
    }
}

/// Max pooling over size×size windows.
final class MaxPoolLayer: Layer {
    let name: String, outputShape: [Int]
    let size: Int, stride: Int

    init(name: String, size: Int, stride: Int, input: [Int]) throws {
        guard input.count == 3, input[1] >= size, input[2] >= size else {
            throw ModelError.shape(layer: name, "maxpool2d of size \(size) needs [channels, height ≥ \(size), width ≥ \(size)] input, got \(input)")
        }
        self.name = name; self.size = size; self.stride = stride
        outputShape = [input[0], (input[1] - size) / stride + 1, (input[2] - size) / stride + 1]
    }

    func forward(_ x: Tensor, _ context: inout ForwardContext) -> Tensor {
        context.tape.maxPool2d(x, size: size, stride: stride)
    }
}

/// [N, …] → [N, features].
final class FlattenLayer: Layer {
    let name: String, outputShape: [Int]
    init(name: String, input: [Int]) { self.name = name; outputShape = [input.reduce(1, *)] }
    func forward(_ x: Tensor, _ context: inout ForwardContext) -> Tensor { context.tape.flatten(x) }
}

/// A standalone activation.
final class ActivationLayer: Layer {
    let name: String, outputShape: [Int]
    let activation: Activation
    let slope: Int?
    unowned let store: ParameterStore

    init(name: String, activation: Activation, input: [Int], store: ParameterStore) {
        self.name = name; self.activation = activation; self.store = store; outputShape = input
        if case .prelu = activation { slope = store.register(name: "\(name).weight", shape: [1]) } else { slope = nil }
    }

    func forward(_ x: Tensor, _ context: inout ForwardContext) -> Tensor {
        let out = context.tape.activate(x, activation, slope: slope.map(store.tensor))
        context.observe(name, activation, x, out)
        return out
    }
}

/// Inverted dropout with a mask keyed by (seed, step, shard, layer ordinal).
final class DropoutLayer: Layer {
    let name: String, outputShape: [Int]
    let rate: Float, ordinal: UInt64

    init(name: String, rate: Float, ordinal: Int, input: [Int]) {
        self.name = name; self.rate = rate; self.ordinal = UInt64(ordinal); outputShape = input
    }

    func forward(_ x: Tensor, _ context: inout ForwardContext) -> Tensor {
        guard context.training else { return x }
        var rng = DeterministicRNG(key: context.randomKey + [0x4452_4F50, ordinal])
        return context.tape.dropout(x, rate: rate, rng: &rng)
    }
}

/// Batch normalization over channels (dimension 1) with running statistics.
public final class BatchNormLayer: Layer {
    public let name: String, outputShape: [Int]
    let gamma: Int, beta: Int
    /// Indices of `running_mean` and `running_var` in the model's buffer store.
    public let runningMean: Int, runningVariance: Int
    /// Momentum of the running statistics (PyTorch's convention: new = (1−m)·old + m·batch).
    public let momentum: Float
    let epsilon: Float
    /// Position among the model's batch-norm layers.
    public let ordinal: Int
    unowned let store: ParameterStore
    unowned let buffers: ParameterStore

    init(name: String, momentum: Float, epsilon: Float, ordinal: Int, input: [Int], store: ParameterStore, buffers: ParameterStore) {
        self.name = name; self.momentum = momentum; self.epsilon = epsilon; self.ordinal = ordinal
        self.store = store; self.buffers = buffers; outputShape = input
        let channels = input[0]
        gamma = store.register(name: "\(name).weight", shape: [channels])
        beta = store.register(name: "\(name).bias", shape: [channels])
        runningMean = buffers.register(name: "\(name).running_mean", shape: [channels])
        runningVariance = buffers.register(name: "\(name).running_var", shape: [channels])
    }

    public func forward(_ x: Tensor, _ context: inout ForwardContext) -> Tensor {
        var statistics: BatchStatistics?
        let training = context.training && x.shape[0] > 1
        let out = context.tape.batchNorm(
            x, gamma: store.tensor(gamma), beta: store.tensor(beta), epsilon: epsilon, training: training,
            runningMean: buffers.tensor(runningMean).data, runningVariance: buffers.tensor(runningVariance).data,
            statistics: &statistics)
        if let statistics { context.batchStatistics[ordinal] = statistics }
        return out
    }
}

/// y = x + f(x) for a block f of layers whose output shape equals its input shape.
final class ResidualLayer: Layer {
    let name: String, outputShape: [Int]
    let body: [Layer]

    init(name: String, body: [Layer], input: [Int]) throws {
        let output = body.last?.outputShape ?? input
        guard output == input else {
            throw ModelError.shape(layer: name, "residual block maps \(input) to \(output); they must be equal to be added")
        }
        self.name = name; self.body = body; outputShape = input
    }

    func forward(_ x: Tensor, _ context: inout ForwardContext) -> Tensor {
        var h = x
        for layer in body { h = layer.forward(h, &context) }
        if h.shape != x.shape { h = context.tape.reshape(h, x.shape) }
        return context.tape.add(x, h)
    }
}
