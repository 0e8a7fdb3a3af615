import Foundation

/// A complete, validated run configuration: the model, loss, optimizer, data, training
/// length and monitor policy. Read with `load(path:)` or `parse(jsonData:source:)`, sent to
/// workers as `jsonData()`, and identified by `canonicalHash()`.
public struct RunConfig: Equatable, Sendable {
    /// The network.
    public var model: ModelConfig
    /// The loss (default `cross_entropy`).
    public var loss: LossKind
    /// The optimizer (default Adam, lr 0.001).
    public var optimizer: OptimizerConfig
    /// The data set (default Fashion-MNIST, standardized).
    public var data: DataConfig
    /// Epochs, batch size, seed, shards.
    public var training: TrainingConfig
    /// The collapse monitor's policy.
    public var monitor: MonitorConfig

    /// Creates a run config; everything but the model has defaults.
    public init(
        model: ModelConfig, loss: LossKind = .crossEntropy, optimizer: OptimizerConfig = OptimizerConfig(),
        data: DataConfig = DataConfig(), training: TrainingConfig = TrainingConfig(), monitor: MonitorConfig = MonitorConfig()
    ) {
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.data = data
        self.training = training
        self.monitor = monitor
    }

    /// The default run: a 784-256-128-10 MLP (ReLU, He-uniform) on standardized Fashion-MNIST,
    /// cross-entropy, Adam lr 0.001 with global-norm clipping at 1.0, the learning rate annealed
    /// to 0 over the run (cosine), 10 epochs of batch 128, seed 1. The annealing is what lifts
    /// the default run's test accuracy over 0.885 at every seed measured (docs/benchmarks.md);
    /// a config file that leaves `schedule` out still gets PyTorch's constant rate.
    public static let `default` = RunConfig(
        model: ModelConfig(input: [784], layers: [
            .dense(DenseConfig(units: 256, activation: .relu, initializer: .heUniform)),
            .dense(DenseConfig(units: 128, activation: .relu, initializer: .heUniform)),
            .dense(DenseConfig(units: 10)),
        ]),
        optimizer: OptimizerConfig(name: .adam, lr: 0.001, clipNorm: 1.0, schedule: .cosine()))

    private static let topLevelKeys = ["model", "loss", "optimizer", "data", "training", "monitor"]

    /// Parses and validates a JSON config; `source` names the file in error messages.
    /// File paths in `data` are kept as written.
    public static func parse(jsonData: Data, source: String = "config.json") throws -> RunConfig {
        let root: JSONValue
        do {
            root = try JSONParser.parse(Array(jsonData))
        } catch {
            throw ConfigError.invalidJSON(file: source, reason: error.description)
        }
        let reader = ValueReader(value: root, path: "", file: source)
        let object = try reader.object(allowed: topLevelKeys)
        return RunConfig(
            model: try object.required("model", ModelConfig.read),
            loss: try object.value("loss", default: .crossEntropy, LossKind.read),
            optimizer: try object.value("optimizer", default: OptimizerConfig(), OptimizerConfig.read),
            data: try object.value("data", default: DataConfig(), DataConfig.read),
            training: try object.value("training", default: TrainingConfig(), TrainingConfig.read),
            monitor: try object.value("monitor", default: MonitorConfig(), MonitorConfig.read))
    }

    /// Reads, parses and validates the config file at `path`; relative data paths are
    /// resolved against the file's directory.
    public static func load(path: String) throws -> RunConfig {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "\(error.localizedDescription)" : "no such file"
            throw ConfigError.unreadable(file: path, reason: reason)
        }
        var config = try parse(jsonData: data, source: path)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        config.data = config.data.resolvingPaths(against: directory)
        return config
    }

    /// The canonical JSON value: every default written out, nil values as null.
    var json: JSONValue {
        .object([
            ("model", model.json), ("loss", .string(loss.rawValue)), ("optimizer", optimizer.json),
            ("data", data.json), ("training", training.json), ("monitor", monitor.json),
        ])
    }

    /// Canonical JSON (keys sorted, defaults explicit, floats in shortest round-trip form),
    /// such that `parse(jsonData: c.jsonData()) == c`; `pretty` adds newlines and indentation.
    public func jsonData(pretty: Bool = false) -> Data {
        Data(json.serialized(pretty: pretty).utf8)
    }

    /// FNV-1a 64-bit hash of the compact canonical JSON: equal for equal configs, so the
    /// coordinator and workers can check that they run the same configuration.
    public func canonicalHash() -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in json.serialized(pretty: false).utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}

extension RunConfig {
    /// The settings (dotted paths such as `training.seed`) whose values differ between this
    /// config and `other`, sorted; paths under an `ignoring` prefix are left out.
    public func differences(from other: RunConfig, ignoring: [String] = []) -> [String] {
        func flatten(_ value: JSONValue, _ path: String, into leaves: inout [String: String]) {
            switch value {
            case .object(let members):
                for member in members { flatten(member.value, path.isEmpty ? member.key : "\(path).\(member.key)", into: &leaves) }
            default:
                leaves[path] = value.serialized(pretty: false)
            }
        }
        var mine: [String: String] = [:], theirs: [String: String] = [:]
        flatten(json, "", into: &mine)
        flatten(other.json, "", into: &theirs)
        return Set(mine.keys).union(theirs.keys)
            .filter { key in mine[key] != theirs[key] && !ignoring.contains { key == $0 || key.hasPrefix($0 + ".") } }
            .sorted()
    }
}
