/// How a layer's weights are initialized, given as a name (`"he_uniform"`) or an object
/// (`{"name": "constant", "value": 0.5}`; `"type"` is accepted in place of `"name"`).
///
/// Fans follow PyTorch: for a dense layer `fan_in` = inputs, `fan_out` = units; for conv2d
/// both are multiplied by `kernel²`.
public enum Initializer: Equatable, Sendable {
    /// All weights 0.
    case zeros
    /// All weights 1.
    case ones
    /// All weights `value`.
    case constant(value: Float)
    /// `U(-limit, limit)`; `limit` defaults to 0.05 (Keras `RandomUniform`).
    case uniform(limit: Float = 0.05)
    /// `N(0, std²)`; `std` defaults to 0.05 (Keras `RandomNormal`).
    case normal(std: Float = 0.05)
    /// `U(-a, a)`, `a = √(6 / (fan_in + fan_out))` (Glorot & Bengio 2010); alias `glorot_uniform`.
    case xavierUniform
    /// `N(0, 2 / (fan_in + fan_out))`; alias `glorot_normal`.
    case xavierNormal
    /// `U(-a, a)`, `a = √(6 / fan_in)` (He et al. 2015); alias `kaiming_uniform`.
    case heUniform
    /// `N(0, 2 / fan_in)`; alias `kaiming_normal`.
    case heNormal
    /// `N(0, 1 / fan_in)` (LeCun 1998).
    case lecunNormal
    /// A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one (Saxe et al. 2014).
    case orthogonal

    /// The canonical names, in the order error messages list them.
    public static let names = [
        "zeros", "ones", "constant", "uniform", "normal", "xavier_uniform", "xavier_normal",
        "he_uniform", "he_normal", "lecun_normal", "orthogonal",
    ]

    private static let aliases = [
        "glorot_uniform": "xavier_uniform", "glorot_normal": "xavier_normal",
        "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal",
    ]

    /// The canonical config name (`"xavier_uniform"` for `.xavierUniform`).
    public var name: String {
        switch self {
        case .zeros: return "zeros"
        case .ones: return "ones"
        case .constant: return "constant"
        case .uniform: return "uniform"
        case .normal: return "normal"
        case .xavierUniform: return "xavier_uniform"
        case .xavierNormal: return "xavier_normal"
        case .heUniform: return "he_uniform"
        case .heNormal: return "he_normal"
        case .lecunNormal: return "lecun_normal"
        case .orthogonal: return "orthogonal"
        }
    }

    /// The default for a layer: `he_uniform` before a ReLU-family activation, `xavier_uniform` otherwise.
    public static func defaultInitializer(before activation: Activation?) -> Initializer {
        activation?.isReLUFamily == true ? .heUniform : .xavierUniform
    }

    static func read(_ reader: ValueReader) throws -> Initializer {
        let spelled: String
        var object: ObjectReader?
        var namePath = reader
        switch reader.value {
        case .string(let s): spelled = s
        case .object:
            let all = ["name", "type", "value", "limit", "std"]
            let peek = try reader.object(allowed: all)
            if peek.has("name") && peek.has("type") { throw reader.invalid("give the initializer as \"name\" or \"type\", not both") }
            let key = peek.has("type") ? "type" : "name"
            spelled = try peek.required(key) { try $0.string() }
            namePath = reader.child(key, .string(spelled))
            let parameter: [String: String] = ["constant": "value", "uniform": "limit", "normal": "std"]
            object = try reader.object(allowed: [key] + (parameter[aliases[spelled] ?? spelled].map { [$0] } ?? []))
        default:
            throw reader.wrongType("an initializer name or an object with \"name\"")
        }
        let name = aliases[spelled] ?? spelled
        switch name {
        case "zeros": return .zeros
        case "ones": return .ones
        case "constant":
            guard let object else { throw reader.invalid("the constant initializer needs a value: {\"name\": \"constant\", \"value\": 0.5}") }
            return .constant(value: try object.required("value") { try $0.float() })
        case "uniform":
            let limit = try object?.optional("limit") { r -> Float in
                let v = try r.float()
                guard v > 0 else { throw r.outOfRange("must be > 0") }
                return v
            }
            return .uniform(limit: limit ?? 0.05)
        case "normal":
            let std = try object?.optional("std") { r -> Float in
                let v = try r.float()
                guard v > 0 else { throw r.outOfRange("must be > 0") }
                return v
            }
            return .normal(std: std ?? 0.05)
        case "xavier_uniform": return .xavierUniform
        case "xavier_normal": return .xavierNormal
        case "he_uniform": return .heUniform
        case "he_normal": return .heNormal
        case "lecun_normal": return .lecunNormal
        case "orthogonal": return .orthogonal
        default:
            throw ConfigError.unknownName(
                file: reader.file, path: namePath.path, kind: "initializer", value: spelled,
                allowed: names + aliases.keys.sorted())
        }
    }

    /// The canonical JSON form: a bare name, or `{"name": ..., <parameter>: ...}`.
    var json: JSONValue {
        switch self {
        case .constant(let value): return .object([("name", .string(name)), ("value", .float(value))])
        case .uniform(let limit): return .object([("name", .string(name)), ("limit", .float(limit))])
        case .normal(let std): return .object([("name", .string(name)), ("std", .float(std))])
        default: return .string(name)
        }
    }
}
