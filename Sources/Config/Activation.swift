/// An element-wise activation function, named as in the config (`"relu"`, or
/// `{"type": "leaky_relu", "alpha": 0.2}` for one with parameters).
public enum Activation: Equatable, Sendable {
    /// The identity.
    case linear
    /// `max(0, x)`.
    case relu
    /// `x` for `x > 0`, `alpha·x` otherwise; `alpha` defaults to 0.01 (PyTorch's slope).
    case leakyRelu(alpha: Float = 0.01)
    /// Leaky ReLU with a learned slope per layer, starting at `initial` (default 0.25, as PyTorch).
    case prelu(initial: Float = 0.25)
    /// The hyperbolic tangent.
    case tanh
    /// `1 / (1 + e^-x)`.
    case sigmoid
    /// `x·Φ(x)` (Hendrycks & Gimpel, "Gaussian Error Linear Units").
    case gelu
    /// `e^x_i / Σ_j e^x_j` over the features of one example.
    case softmax

    /// The config names, in the order error messages list them.
    public static let names = ["linear", "relu", "leaky_relu", "prelu", "tanh", "sigmoid", "gelu", "softmax"]

    /// The config name of this activation (`"leaky_relu"` for `.leakyRelu`).
    public var name: String {
        switch self {
        case .linear: return "linear"
        case .relu: return "relu"
        case .leakyRelu: return "leaky_relu"
        case .prelu: return "prelu"
        case .tanh: return "tanh"
        case .sigmoid: return "sigmoid"
        case .gelu: return "gelu"
        case .softmax: return "softmax"
        }
    }

    /// Whether this is ReLU, leaky ReLU or PReLU, the activations that get He initialization by default.
    public var isReLUFamily: Bool {
        switch self {
        case .relu, .leakyRelu, .prelu: return true
        default: return false
        }
    }

    static func read(_ reader: ValueReader) throws -> Activation {
        let name: String
        var object: ObjectReader?
        switch reader.value {
        case .string(let s): name = s
        case .object:
            let peek = try reader.object(allowed: ["type", "alpha", "initial"])
            name = try peek.required("type") { try $0.string() }
            let allowed: [String]
            switch name {
            case "leaky_relu": allowed = ["type", "alpha"]
            case "prelu": allowed = ["type", "initial"]
            default: allowed = ["type"]
            }
            object = try reader.object(allowed: allowed)
        default:
            throw reader.wrongType("an activation name or an object with \"type\"")
        }
        let namePath = object == nil ? reader : reader.child("type", .string(name))
        switch name {
        case "linear": return .linear
        case "relu": return .relu
        case "leaky_relu":
            let alpha = try object?.optional("alpha") { r -> Float in
                let a = try r.float()
                guard a >= 0 else { throw r.outOfRange("must be >= 0") }
                return a
            }
            return .leakyRelu(alpha: alpha ?? 0.01)
        case "prelu":
            return .prelu(initial: try object?.optional("initial") { try $0.float() } ?? 0.25)
        case "tanh": return .tanh
        case "sigmoid": return .sigmoid
        case "gelu": return .gelu
        case "softmax": return .softmax
        default:
            throw ConfigError.unknownName(file: reader.file, path: namePath.path, kind: "activation", value: name, allowed: names)
        }
    }

    /// The canonical JSON form: a bare name, or an object when the activation has a parameter.
    var json: JSONValue {
        switch self {
        case .leakyRelu(let alpha): return .object([("type", .string(name)), ("alpha", .float(alpha))])
        case .prelu(let initial): return .object([("type", .string(name)), ("initial", .float(initial))])
        default: return .string(name)
        }
    }
}
