import Foundation
import Testing
@testable import Config

/// Parses `json` as a config, failing the test on an error.
func parse(_ json: String) throws -> RunConfig {
    try RunConfig.parse(jsonData: Data(json.utf8), source: "config.json")
}

/// The message of the `ConfigError` that parsing `json` throws, or nil when it parses.
func errorMessage(_ json: String) -> String? {
    do {
        _ = try parse(json)
        return nil
    } catch let error as ConfigError {
        return error.description
    } catch {
        return "unexpected error type: \(error)"
    }
}

/// Wraps a layer list in a minimal config.
func withLayers(_ layers: String, input: String = "[784]") -> String {
    "{\"model\": {\"input\": \(input), \"layers\": [\(layers)]}}"
}

@Test func contractExampleParsesToTheExpectedStructure() throws {
    let config = try parse("""
    {
      "model": {
        "input": [784],
        "layers": [
          {"type": "dense", "units": 256, "activation": "relu", "init": "he_uniform", "bias_init": 0.0},
          {"type": "batchnorm"},
          {"type": "dropout", "rate": 0.1},
          {"type": "dense", "units": 10}
        ]
      },
      "loss": "cross_entropy",
      "optimizer": {"name": "adam", "lr": 0.001, "clip_norm": 1.0},
      "data": {"name": "fashion-mnist", "normalize": "standardize"},
      "training": {"epochs": 10, "batch_size": 128, "seed": 1, "shards": 4}
    }
    """)
    let expected = RunConfig(
        model: ModelConfig(input: [784], layers: [
            .dense(DenseConfig(units: 256, activation: .relu, initializer: .heUniform, biasInit: 0)),
            .batchnorm(momentum: 0.1, eps: 1e-5),
            .dropout(rate: 0.1),
            .dense(DenseConfig(units: 10)),
        ]),
        loss: .crossEntropy,
        optimizer: OptimizerConfig(name: .adam, lr: 0.001, clipNorm: 1.0),
        data: DataConfig(source: .named("fashion-mnist"), normalize: .standardize),
        training: TrainingConfig(epochs: 10, batchSize: 128, seed: 1, shards: 4))
    #expect(config == expected)
}

@Test func onlyTheModelIsRequiredAndEverythingElseTakesItsDefault() throws {
    let config = try parse(withLayers("{\"type\": \"dense\", \"units\": 10}"))
    #expect(config.loss == .crossEntropy)
    #expect(config.optimizer.name == .adam)
    #expect(config.optimizer.lr == 0.001)
    #expect(config.optimizer.beta1 == 0.9 && config.optimizer.beta2 == 0.999 && config.optimizer.eps == 1e-8)
    #expect(config.optimizer.clipNorm == nil && config.optimizer.schedule == .constant)
    #expect(config.data == DataConfig(source: .named("fashion-mnist"), normalize: .standardize))
    #expect(config.training == TrainingConfig(epochs: 10, batchSize: 128, seed: 1, shards: nil, maxSteps: nil))
    #expect(config.monitor == MonitorConfig(policy: .warn, interval: 1, thresholds: [:]))
}

@Test func defaultConfigIsTheContractMLP() {
    let c = RunConfig.default
    #expect(c.model.input == [784])
    #expect(c.model.layers == [
        .dense(DenseConfig(units: 256, activation: .relu, initializer: .heUniform)),
        .dense(DenseConfig(units: 128, activation: .relu, initializer: .heUniform)),
        .dense(DenseConfig(units: 10, activation: nil, initializer: nil)),
    ])
    #expect(c.loss == .crossEntropy)
    #expect(c.optimizer.name == .adam && c.optimizer.lr == 0.001 && c.optimizer.clipNorm == 1.0)
    #expect(c.optimizer.schedule == .cosine(totalSteps: nil, minLR: 0))
    #expect(c.data.source == .named("fashion-mnist") && c.data.normalize == .standardize)
    #expect(c.training.epochs == 10 && c.training.batchSize == 128 && c.training.seed == 1)
}

@Test func everyLayerTypeParsesWithItsDefaults() throws {
    let config = try parse(withLayers("""
        {"type": "conv2d", "filters": 8, "kernel": 3},
        {"type": "conv2d", "filters": 4, "kernel": 5, "stride": 2, "padding": "same", "activation": "gelu",
         "init": "orthogonal", "bias_init": 0.5, "use_bias": false},
        {"type": "maxpool2d", "size": 2},
        {"type": "maxpool2d", "size": 3, "stride": 1},
        {"type": "batchnorm", "momentum": 0.01, "eps": 0.001},
        {"type": "activation", "activation": "tanh"},
        {"type": "residual", "layers": [{"type": "activation", "activation": "relu"}]},
        {"type": "flatten"},
        {"type": "dropout"},
        {"type": "dense", "units": 3, "use_bias": false}
        """, input: "[1, 28, 28]"))
    #expect(config.model.input == [1, 28, 28])
    #expect(config.model.layers == [
        .conv2d(Conv2DConfig(filters: 8, kernel: 3, stride: 1, padding: .valid)),
        .conv2d(Conv2DConfig(filters: 4, kernel: 5, stride: 2, padding: .same, activation: .gelu,
                             initializer: .orthogonal, biasInit: 0.5, useBias: false)),
        .maxpool2d(size: 2, stride: 2),
        .maxpool2d(size: 3, stride: 1),
        .batchnorm(momentum: 0.01, eps: 0.001),
        .activation(.tanh),
        .residual([.activation(.relu)]),
        .flatten,
        .dropout(rate: 0.5),
        .dense(DenseConfig(units: 3, useBias: false)),
    ])
}

@Test func activationsParseFromNamesAndObjects() throws {
    let layers = try parse(withLayers("""
        {"type": "activation", "activation": "leaky_relu"},
        {"type": "activation", "activation": {"type": "leaky_relu", "alpha": 0.2}},
        {"type": "activation", "activation": "prelu"},
        {"type": "activation", "activation": {"type": "prelu", "initial": 0.1}},
        {"type": "activation", "activation": {"type": "sigmoid"}},
        {"type": "activation", "activation": "softmax"},
        {"type": "activation", "activation": "linear"}
        """)).model.layers
    #expect(layers == [
        .activation(.leakyRelu(alpha: 0.01)), .activation(.leakyRelu(alpha: 0.2)),
        .activation(.prelu(initial: 0.25)), .activation(.prelu(initial: 0.1)),
        .activation(.sigmoid), .activation(.softmax), .activation(.linear),
    ])
}

@Test func initializersParseFromNamesObjectsAndAliases() throws {
    let inits = [
        "\"zeros\"", "\"ones\"", "{\"name\": \"constant\", \"value\": 0.5}", "{\"type\": \"uniform\", \"limit\": 0.1}",
        "\"uniform\"", "{\"name\": \"normal\", \"std\": 0.02}", "\"glorot_uniform\"", "\"glorot_normal\"",
        "\"kaiming_uniform\"", "{\"name\": \"kaiming_normal\"}", "\"lecun_normal\"", "\"xavier_normal\"",
    ]
    let layers = try parse(withLayers(inits.map { "{\"type\": \"dense\", \"units\": 2, \"init\": \($0)}" }.joined(separator: ",")))
        .model.layers
    let expected: [Initializer] = [
        .zeros, .ones, .constant(value: 0.5), .uniform(limit: 0.1), .uniform(limit: 0.05), .normal(std: 0.02),
        .xavierUniform, .xavierNormal, .heUniform, .heNormal, .lecunNormal, .xavierNormal,
    ]
    #expect(layers == expected.map { .dense(DenseConfig(units: 2, initializer: $0)) })
}

@Test func defaultInitializerIsHeBeforeReLUFamilyAndXavierOtherwise() {
    #expect(DenseConfig(units: 1, activation: .relu).resolvedInitializer() == .heUniform)
    #expect(DenseConfig(units: 1, activation: .leakyRelu(alpha: 0.1)).resolvedInitializer() == .heUniform)
    #expect(Conv2DConfig(filters: 1, kernel: 1, activation: .prelu(initial: 0.25)).resolvedInitializer() == .heUniform)
    #expect(DenseConfig(units: 1, activation: .tanh).resolvedInitializer() == .xavierUniform)
    #expect(DenseConfig(units: 1).resolvedInitializer() == .xavierUniform)
    #expect(DenseConfig(units: 1, activation: .sigmoid, initializer: .ones).resolvedInitializer() == .ones)
    // Without an activation of its own, the layer looks at the activation layer after it.
    let layers: [LayerConfig] = [.dense(DenseConfig(units: 4)), .batchnorm(), .activation(.relu), .dense(DenseConfig(units: 2))]
    #expect(layers.activation(following: 0) == .relu)
    #expect(layers.activation(following: 3) == nil)
    if case .dense(let first) = layers[0] {
        #expect(first.resolvedInitializer(followedBy: layers.activation(following: 0)) == .heUniform)
    }
}

@Test func optimizerDefaultsDependOnTheOptimizer() throws {
    func optimizer(_ json: String) throws -> OptimizerConfig {
        try parse("{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 1}]}, \"optimizer\": \(json)}").optimizer
    }
    let sgd = try optimizer("{\"name\": \"sgd\", \"momentum\": 0.9, \"nesterov\": true}")
    #expect(sgd.lr == 0.01 && sgd.momentum == 0.9 && sgd.nesterov && sgd.weightDecay == 0)
    let adamw = try optimizer("{\"name\": \"adamw\"}")
    #expect(adamw.lr == 0.001 && adamw.weightDecay == 0.01)
    let rmsprop = try optimizer("{\"name\": \"rmsprop\", \"alpha\": 0.9, \"eps\": 1e-6}")
    #expect(rmsprop.alpha == 0.9 && rmsprop.eps == 1e-6 && rmsprop.lr == 0.001)
    let clipped = try optimizer("{\"clip_value\": 0.5, \"clip_tensor_norm\": 2, \"weight_decay\": 0.0001}")
    #expect(clipped.clipValue == 0.5 && clipped.clipPerTensorNorm == 2 && clipped.weightDecay == 0.0001 && clipped.clipNorm == nil)
}

@Test func schedulesParseFromNamesAndObjects() throws {
    func schedule(_ json: String) throws -> ScheduleConfig {
        try parse("{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 1}]}, \"optimizer\": {\"schedule\": \(json)}}")
            .optimizer.schedule
    }
    #expect(try schedule("\"constant\"") == .constant)
    #expect(try schedule("\"cosine\"") == .cosine(totalSteps: nil, minLR: 0))
    #expect(try schedule("{\"type\": \"step\", \"step_size\": 30}") == .step(stepSize: 30, gamma: 0.1))
    #expect(try schedule("{\"type\": \"cosine\", \"total_steps\": 100, \"min_lr\": 1e-5}") == .cosine(totalSteps: 100, minLR: 1e-5))
    #expect(try schedule("{\"type\": \"warmup\", \"warmup_steps\": 10, \"then\": \"cosine\"}") == .warmup(warmupSteps: 10, then: .cosine()))
    #expect(try schedule("{\"type\": \"warmup\", \"warmup_steps\": 10}") == .warmup(warmupSteps: 10, then: .constant))
}

@Test func dataSourcesParseInEachForm() throws {
    func data(_ json: String) throws -> DataConfig {
        try parse("{\"model\": {\"input\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 1}]}, \"data\": \(json)}").data
    }
    #expect(try data("{\"normalize\": \"scale\"}") == DataConfig(source: .named("fashion-mnist"), normalize: .scale))
    #expect(try data("""
        {"format": "idx", "train_images": "a.gz", "train_labels": "b.gz", "test_images": "c", "test_labels": "d", "normalize": "none"}
        """) == DataConfig(source: .idx(trainImages: "a.gz", trainLabels: "b.gz", testImages: "c", testLabels: "d"), normalize: .none))
    #expect(try data("{\"format\": \"csv\", \"train\": \"t.csv\", \"test\": \"v.csv\"}")
        == DataConfig(source: .csv(train: "t.csv", test: "v.csv", labelColumn: "label")))
    #expect(try data("{\"format\": \"csv\", \"train\": \"t.csv\", \"test\": \"v.csv\", \"label_column\": \"y\"}").source
        == .csv(train: "t.csv", test: "v.csv", labelColumn: "y"))
}

@Test func monitorKeepsFreeFormThresholds() throws {
    let monitor = try parse("""
        {"model": {"input": [2], "layers": [{"type": "dense", "units": 1}]},
         "monitor": {"policy": "rollback", "interval": 5, "thresholds": {"dead_relu_fraction": 0.9, "loss_spike": 3}}}
        """).monitor
    #expect(monitor == MonitorConfig(policy: .rollback, interval: 5, thresholds: ["dead_relu_fraction": 0.9, "loss_spike": 3]))
}

@Test func nullMeansUnsetForOptionalKeys() throws {
    let config = try parse("""
        {"model": {"input": [2], "layers": [{"type": "dense", "units": 1, "activation": null, "init": null}]},
         "optimizer": {"clip_norm": null}, "training": {"shards": null, "max_steps": null}}
        """)
    #expect(config.model.layers == [.dense(DenseConfig(units: 1))])
    #expect(config.optimizer.clipNorm == nil && config.training.shards == nil)
}

@Test func integerKeysAcceptIntegralNumbersInAnyNotation() throws {
    let config = try parse("""
        {"model": {"input": [2], "layers": [{"type": "dense", "units": 2.56e2}]},
         "training": {"batch_size": 64.0, "seed": 18446744073709551615}}
        """)
    #expect(config.model.layers == [.dense(DenseConfig(units: 256))])
    #expect(config.training.batchSize == 64)
    #expect(config.training.seed == UInt64.max)
}

@Test func loadResolvesRelativeDataPathsAgainstTheConfigDirectory() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-config-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("run.json")
    try Data("""
        {"model": {"input": [2], "layers": [{"type": "dense", "units": 1}]},
         "data": {"format": "csv", "train": "data/train.csv", "test": "/abs/test.csv"}}
        """.utf8).write(to: file)
    let config = try RunConfig.load(path: file.path)
    #expect(config.data.source == .csv(train: directory.path + "/data/train.csv", test: "/abs/test.csv", labelColumn: "label"))
}
