/// How long and in what batches to train, and the seed that makes a run reproducible.
public struct TrainingConfig: Equatable, Sendable {
    /// Passes over the training set (≥ 1, default 10).
    public var epochs: Int
    /// Examples per optimizer step, over all workers together (≥ 1, default 128).
    public var batchSize: Int
    /// The seed of every random choice: initialization, shuffling, dropout (default 1).
    public var seed: UInt64
    /// The number of data shards, fixed for the run so results do not depend on the worker
    /// count (≥ 1; nil: the initial worker count, or 1 in a single process).
    public var shards: Int?
    /// Stop after this many steps even if epochs remain (≥ 1; nil: no limit).
    public var maxSteps: Int?

    /// Creates a training config; defaults as in the config file.
    public init(epochs: Int = 10, batchSize: Int = 128, seed: UInt64 = 1, shards: Int? = nil, maxSteps: Int? = nil) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.seed = seed
        self.shards = shards
        self.maxSteps = maxSteps
    }

    static func read(_ reader: ValueReader) throws -> TrainingConfig {
        let object = try reader.object(allowed: ["epochs", "batch_size", "seed", "shards", "max_steps"])
        return TrainingConfig(
            epochs: try object.value("epochs", default: 10) { try $0.int(atLeast: 1) },
            batchSize: try object.value("batch_size", default: 128) { try $0.int(atLeast: 1) },
            seed: try object.value("seed", default: 1) { try $0.uint64() },
            shards: try object.optional("shards") { try $0.int(atLeast: 1) },
            maxSteps: try object.optional("max_steps") { try $0.int(atLeast: 1) })
    }

    /// The canonical JSON form (nil values written as null).
    var json: JSONValue {
        .object([
            ("epochs", .int(epochs)), ("batch_size", .int(batchSize)), ("seed", .int(seed)),
            ("shards", .optional(shards, JSONValue.int)), ("max_steps", .optional(maxSteps, JSONValue.int)),
        ])
    }
}
