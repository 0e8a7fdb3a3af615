/// One layer of the model, as listed in `model.layers`.
public indirect enum LayerConfig: Equatable, Sendable {
    /// A fully connected layer: `y = W·x + b`, `W` of shape `[units, inputs]`.
    case dense(DenseConfig)
    /// A 2-D convolution over `[channels, height, width]` inputs.
    case conv2d(Conv2DConfig)
    /// Max pooling over `size × size` windows moved by `stride` (default: `size`).
    case maxpool2d(size: Int, stride: Int)
    /// Flattens `[channels, height, width]` to `[channels·height·width]`.
    case flatten
    /// Batch normalization (Ioffe & Szegedy 2015) with PyTorch's running-average `momentum`
    /// (default 0.1: `running = (1 − momentum)·running + momentum·batch`) and `eps` (default 1e-5).
    case batchnorm(momentum: Float = 0.1, eps: Float = 1e-5)
    /// Inverted dropout: zeroes each input with probability `rate` in training and scales the rest by `1/(1 − rate)`.
    case dropout(rate: Float)
    /// An activation applied as its own layer.
    case activation(Activation)
    /// `x + f(x)` where `f` is the list of layers; the output shape of `f` must equal its input shape.
    case residual([LayerConfig])

    /// The config `type` names, in the order error messages list them.
    public static let typeNames = ["dense", "conv2d", "maxpool2d", "flatten", "batchnorm", "dropout", "activation", "residual"]

    /// The config `type` of this layer.
    public var typeName: String {
        switch self {
        case .dense: return "dense"
        case .conv2d: return "conv2d"
        case .maxpool2d: return "maxpool2d"
        case .flatten: return "flatten"
        case .batchnorm: return "batchnorm"
        case .dropout: return "dropout"
        case .activation: return "activation"
        case .residual: return "residual"
        }
    }
}

/// A dense (fully connected) layer.
public struct DenseConfig: Equatable, Sendable {
    /// Output features (≥ 1).
    public var units: Int
    /// The activation applied to the output; nil means none (linear).
    public var activation: Activation?
    /// The weight initializer; nil means the default (see `resolvedInitializer(followedBy:)`).
    public var initializer: Initializer?
    /// The constant every bias starts at (default 0).
    public var biasInit: Float
    /// Whether the layer has a bias (default true).
    public var useBias: Bool

    /// Creates a dense layer config; defaults as in the config file.
    public init(units: Int, activation: Activation? = nil, initializer: Initializer? = nil, biasInit: Float = 0, useBias: Bool = true) {
        self.units = units
        self.activation = activation
        self.initializer = initializer
        self.biasInit = biasInit
        self.useBias = useBias
    }

    /// The initializer to use: the given one, else `he_uniform` when this layer's activation
    /// (or, without one, `next`, the activation that follows the layer) is ReLU-family,
    /// else `xavier_uniform`.
    public func resolvedInitializer(followedBy next: Activation? = nil) -> Initializer {
        initializer ?? .defaultInitializer(before: activation ?? next)
    }
}

/// Convolution padding: `valid` (none) or `same` (output size `ceil(input / stride)`, zeros added evenly, extra at the end).
public enum Padding: String, Equatable, Sendable {
    case valid
    case same
}

/// A 2-D convolution layer with square kernels.
public struct Conv2DConfig: Equatable, Sendable {
    /// Output channels (≥ 1).
    public var filters: Int
    /// Kernel height and width (≥ 1).
    public var kernel: Int
    /// Step between windows (≥ 1, default 1).
    public var stride: Int
    /// `valid` (default) or `same`.
    public var padding: Padding
    /// The activation applied to the output; nil means none.
    public var activation: Activation?
    /// The weight initializer; nil means the default (see `resolvedInitializer(followedBy:)`).
    public var initializer: Initializer?
    /// The constant every bias starts at (default 0).
    public var biasInit: Float
    /// Whether the layer has a bias (default true).
    public var useBias: Bool

    /// Creates a conv2d layer config; defaults as in the config file.
    public init(
        filters: Int, kernel: Int, stride: Int = 1, padding: Padding = .valid, activation: Activation? = nil,
        initializer: Initializer? = nil, biasInit: Float = 0, useBias: Bool = true
    ) {
        self.filters = filters
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.activation = activation
        self.initializer = initializer
        self.biasInit = biasInit
        self.useBias = useBias
    }

    /// The initializer to use, by the same rule as `DenseConfig.resolvedInitializer(followedBy:)`.
    public func resolvedInitializer(followedBy next: Activation? = nil) -> Initializer {
        initializer ?? .defaultInitializer(before: activation ?? next)
    }
}

extension Array where Element == LayerConfig {
    /// The activation that follows layer `index` in this list, looking past batchnorm and
    /// dropout layers: the argument for `resolvedInitializer(followedBy:)`.
    public func activation(following index: Int) -> Activation? {
        var i = index + 1
        while i < count {
            switch self[i] {
            case .activation(let activation): return activation
            case .batchnorm, .dropout: i += 1
            default: return nil
            }
        }
        return nil
    }
}
