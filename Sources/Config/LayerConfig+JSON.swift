/// Reading and writing layers in the config's JSON form.
extension LayerConfig {
    private static let keys: [String: [String]] = [
        "dense": ["type", "units", "activation", "init", "bias_init", "use_bias"],
        "conv2d": ["type", "filters", "kernel", "stride", "padding", "activation", "init", "bias_init", "use_bias"],
        "maxpool2d": ["type", "size", "stride"],
        "flatten": ["type"],
        "batchnorm": ["type", "momentum", "eps"],
        "dropout": ["type", "rate"],
        "activation": ["type", "activation"],
        "residual": ["type", "layers"],
    ]

    static func read(_ reader: ValueReader) throws -> LayerConfig {
        guard case .object(let members) = reader.value else { throw reader.wrongType("a layer object with \"type\"") }
        guard let typeValue = members.first(where: { $0.key == "type" })?.value else {
            throw ConfigError.missingKey(file: reader.file, path: reader.path, key: "type")
        }
        let type = try reader.child("type", typeValue).name(kind: "layer type", typeNames.map { ($0, $0) })
        let object = try reader.object(allowed: keys[type]!)
        switch type {
        case "dense":
            return .dense(DenseConfig(
                units: try object.required("units") { try $0.int(atLeast: 1) },
                activation: try object.optional("activation", Activation.read),
                initializer: try object.optional("init", Initializer.read),
                biasInit: try object.value("bias_init", default: 0) { try $0.float() },
                useBias: try object.value("use_bias", default: true) { try $0.bool() }))
        case "conv2d":
            return .conv2d(Conv2DConfig(
                filters: try object.required("filters") { try $0.int(atLeast: 1) },
                kernel: try object.required("kernel") { try $0.int(atLeast: 1) },
                stride: try object.value("stride", default: 1) { try $0.int(atLeast: 1) },
                padding: try object.value("padding", default: .valid) {
                    try $0.name(kind: "padding", [("valid", Padding.valid), ("same", .same)])
                },
                activation: try object.optional("activation", Activation.read),
                initializer: try object.optional("init", Initializer.read),
                biasInit: try object.value("bias_init", default: 0) { try $0.float() },
                useBias: try object.value("use_bias", default: true) { try $0.bool() }))
        case "maxpool2d":
            let size = try object.required("size") { try $0.int(atLeast: 1) }
            return .maxpool2d(size: size, stride: try object.value("stride", default: size) { try $0.int(atLeast: 1) })
        case "flatten":
            return .flatten
        case "batchnorm":
            let momentum = try object.value("momentum", default: 0.1) { r -> Float in
                let m = try r.float()
                guard m >= 0, m <= 1 else { throw r.outOfRange("must be in [0, 1]") }
                return m
            }
            let eps = try object.value("eps", default: 1e-5) { r -> Float in
                let e = try r.float()
                guard e > 0 else { throw r.outOfRange("must be > 0") }
                return e
            }
            return .batchnorm(momentum: momentum, eps: eps)
        case "dropout":
            return .dropout(rate: try object.value("rate", default: 0.5) { r -> Float in
                let rate = try r.float()
                guard rate >= 0, rate < 1 else { throw r.outOfRange("must be in [0, 1)") }
                return rate
            })
        case "activation":
            return .activation(try object.required("activation", Activation.read))
        case "residual":
            return .residual(try object.required("layers") { try readList($0) })
        default:
            fatalError("layer type \(type) passed the name check but has no reader")
        }
    }

    /// Reads a non-empty list of layers.
    static func readList(_ reader: ValueReader) throws -> [LayerConfig] {
        let elements = try reader.array()
        guard !elements.isEmpty else { throw reader.invalid("a layer list needs at least one layer") }
        return try elements.map(LayerConfig.read)
    }

    /// The canonical JSON form, with every default written out.
    var json: JSONValue {
        let type: (String, JSONValue) = ("type", .string(typeName))
        switch self {
        case .dense(let d):
            return .object([
                type, ("units", .int(d.units)), ("activation", .optional(d.activation) { $0.json }),
                ("init", .optional(d.initializer) { $0.json }), ("bias_init", .float(d.biasInit)), ("use_bias", .bool(d.useBias)),
            ])
        case .conv2d(let c):
            return .object([
                type, ("filters", .int(c.filters)), ("kernel", .int(c.kernel)), ("stride", .int(c.stride)),
                ("padding", .string(c.padding.rawValue)), ("activation", .optional(c.activation) { $0.json }),
                ("init", .optional(c.initializer) { $0.json }), ("bias_init", .float(c.biasInit)), ("use_bias", .bool(c.useBias)),
            ])
        case let .maxpool2d(size, stride):
            return .object([type, ("size", .int(size)), ("stride", .int(stride))])
        case .flatten:
            return .object([type])
        case let .batchnorm(momentum, eps):
            return .object([type, ("momentum", .float(momentum)), ("eps", .float(eps))])
        case .dropout(let rate):
            return .object([type, ("rate", .float(rate))])
        case .activation(let activation):
            return .object([type, ("activation", activation.json)])
        case .residual(let layers):
            return .object([type, ("layers", .array(layers.map(\.json)))])
        }
    }
}
