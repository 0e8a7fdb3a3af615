/// The network: the shape of one input example and the list of layers applied to it.
public struct ModelConfig: Equatable, Sendable {
    /// The shape of one example: `[features]`, or `[channels, height, width]` for conv2d models.
    public var input: [Int]
    /// The layers in order; parameter names use their index (`layers.N.weight`).
    public var layers: [LayerConfig]

    /// Creates a model config.
    public init(input: [Int], layers: [LayerConfig]) {
        self.input = input
        self.layers = layers
    }

    static func read(_ reader: ValueReader) throws -> ModelConfig {
        let object = try reader.object(allowed: ["input", "layers"])
        let input = try object.required("input") { r -> [Int] in
            let dims = try r.array().map { try $0.int(atLeast: 1) }
            guard dims.count == 1 || dims.count == 3 else {
                throw r.invalid("expected [features] or [channels, height, width], got \(dims.count) dimensions")
            }
            var product = 1
            for dim in dims {
                let (next, overflow) = product.multipliedReportingOverflow(by: dim)
                guard !overflow, next <= ValueReader.maximumInt else {
                    throw r.invalid("\(dims) is more than \(ValueReader.maximumInt) values per example")
                }
                product = next
            }
            return dims
        }
        return ModelConfig(input: input, layers: try object.required("layers", LayerConfig.readList))
    }

    /// The canonical JSON form.
    var json: JSONValue {
        .object([("input", .array(input.map(JSONValue.int))), ("layers", .array(layers.map(\.json)))])
    }
}

/// The training loss, computed as a mean as in PyTorch.
public enum LossKind: String, Equatable, Sendable, CaseIterable {
    /// Softmax cross-entropy from logits; labels are class indices (`cross_entropy`).
    case crossEntropy = "cross_entropy"
    /// Mean squared error over all output elements (`mse`).
    case mse
    /// Binary cross-entropy from logits over all output elements (`bce`).
    case bce

    static func read(_ reader: ValueReader) throws -> LossKind {
        try reader.name(kind: "loss", allCases.map { ($0.rawValue, $0) })
    }
}
