/// The optimizer and its hyper-parameters; defaults follow PyTorch.
public struct OptimizerConfig: Equatable, Sendable {
    /// Which update rule.
    public enum Name: String, Equatable, Sendable, CaseIterable {
        case sgd, adam, adamw, rmsprop
    }

    /// The update rule (default `adam`).
    public var name: Name
    /// Base learning rate (> 0; default 0.01 for SGD, 0.001 otherwise).
    public var lr: Float
    /// SGD/RMSprop momentum μ (default 0); SGD applies `v = μ·v + g; p -= lr·v`.
    public var momentum: Float
    /// Nesterov momentum for SGD (default false; needs `momentum > 0`).
    public var nesterov: Bool
    /// L2 penalty added to the gradient, or decoupled decay for AdamW (default 0; 0.01 for AdamW).
    public var weightDecay: Float
    /// Adam/AdamW first-moment decay (default 0.9).
    public var beta1: Float
    /// Adam/AdamW second-moment decay (default 0.999).
    public var beta2: Float
    /// Adam/AdamW/RMSprop denominator epsilon (default 1e-8).
    public var eps: Float
    /// RMSprop smoothing constant (default 0.99).
    public var alpha: Float
    /// Clip the global norm of the averaged gradient to this (PyTorch `clip_grad_norm_`); nil: off.
    public var clipNorm: Float?
    /// Clamp every gradient element to `[-clipValue, clipValue]`; nil: off.
    public var clipValue: Float?
    /// Clip each tensor's own norm to this (Keras `clipnorm`; key `clip_tensor_norm`); nil: off.
    public var clipPerTensorNorm: Float?
    /// How the learning rate changes over the steps (default constant).
    public var schedule: ScheduleConfig

    /// Creates an optimizer config; nil `lr`/`weightDecay` take the optimizer's defaults.
    public init(
        name: Name = .adam, lr: Float? = nil, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float? = nil,
        beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, alpha: Float = 0.99,
        clipNorm: Float? = nil, clipValue: Float? = nil, clipPerTensorNorm: Float? = nil, schedule: ScheduleConfig = .constant
    ) {
        self.name = name
        self.lr = lr ?? OptimizerConfig.defaultLearningRate(for: name)
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay ?? OptimizerConfig.defaultWeightDecay(for: name)
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.alpha = alpha
        self.clipNorm = clipNorm
        self.clipValue = clipValue
        self.clipPerTensorNorm = clipPerTensorNorm
        self.schedule = schedule
    }

    /// 0.01 for SGD, 0.001 for the adaptive optimizers (PyTorch's defaults, SGD's as in Keras).
    public static func defaultLearningRate(for name: Name) -> Float { name == .sgd ? 0.01 : 0.001 }

    /// 0.01 for AdamW (PyTorch), 0 otherwise.
    public static func defaultWeightDecay(for name: Name) -> Float { name == .adamw ? 0.01 : 0 }

    private static let commonKeys = ["name", "lr", "weight_decay", "clip_norm", "clip_value", "clip_tensor_norm", "schedule"]

    /// The keys that apply to each optimizer; any other key is an error.
    static func keys(for name: Name) -> [String] {
        switch name {
        case .sgd: return commonKeys + ["momentum", "nesterov"]
        case .adam, .adamw: return commonKeys + ["beta1", "beta2", "eps"]
        case .rmsprop: return commonKeys + ["alpha", "eps", "momentum"]
        }
    }

    static func read(_ reader: ValueReader) throws -> OptimizerConfig {
        guard case .object(let members) = reader.value else { throw reader.wrongType("an object") }
        var name = Name.adam
        if let nameValue = members.first(where: { $0.key == "name" })?.value {
            name = try reader.child("name", nameValue).name(kind: "optimizer", Name.allCases.map { ($0.rawValue, $0) })
        }
        let object = try reader.object(allowed: keys(for: name))
        func positive(_ r: ValueReader) throws -> Float {
            let v = try r.float()
            guard v > 0 else { throw r.outOfRange("must be > 0") }
            return v
        }
        func nonNegative(_ r: ValueReader) throws -> Float {
            let v = try r.float()
            guard v >= 0 else { throw r.outOfRange("must be >= 0") }
            return v
        }
        func unitInterval(_ r: ValueReader) throws -> Float {
            let v = try r.float()
            guard v >= 0, v < 1 else { throw r.outOfRange("must be in [0, 1)") }
            return v
        }
        let config = OptimizerConfig(
            name: name,
            lr: try object.optional("lr", positive),
            momentum: try object.value("momentum", default: 0, unitInterval),
            nesterov: try object.value("nesterov", default: false) { try $0.bool() },
            weightDecay: try object.optional("weight_decay", nonNegative),
            beta1: try object.value("beta1", default: 0.9, unitInterval),
            beta2: try object.value("beta2", default: 0.999, unitInterval),
            eps: try object.value("eps", default: 1e-8, positive),
            alpha: try object.value("alpha", default: 0.99, unitInterval),
            clipNorm: try object.optional("clip_norm", positive),
            clipValue: try object.optional("clip_value", positive),
            clipPerTensorNorm: try object.optional("clip_tensor_norm", positive),
            schedule: try object.value("schedule", default: .constant, ScheduleConfig.read))
        if config.nesterov && config.momentum == 0 {
            throw ConfigError.invalid(file: reader.file, path: ConfigError.join(reader.path, "nesterov"),
                                      message: "nesterov needs a momentum > 0 (set \"momentum\", e.g. 0.9)")
        }
        return config
    }

    /// The canonical JSON form: every key that applies to this optimizer, defaults included.
    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("name", .string(name.rawValue)), ("lr", .float(lr)), ("weight_decay", .float(weightDecay)),
            ("clip_norm", .optional(clipNorm, JSONValue.float)), ("clip_value", .optional(clipValue, JSONValue.float)),
            ("clip_tensor_norm", .optional(clipPerTensorNorm, JSONValue.float)), ("schedule", schedule.json),
        ]
        switch name {
        case .sgd: members += [("momentum", .float(momentum)), ("nesterov", .bool(nesterov))]
        case .adam, .adamw: members += [("beta1", .float(beta1)), ("beta2", .float(beta2)), ("eps", .float(eps))]
        case .rmsprop: members += [("alpha", .float(alpha)), ("eps", .float(eps)), ("momentum", .float(momentum))]
        }
        return .object(members)
    }
}
