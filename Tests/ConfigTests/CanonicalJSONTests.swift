import Foundation
import Testing
@testable import Config
import struct TensorCore.DeterministicRNG

@Test func defaultConfigRoundTripsThroughCanonicalJSON() throws {
    let json = RunConfig.default.jsonData()
    #expect(try RunConfig.parse(jsonData: json) == RunConfig.default)
    #expect(try RunConfig.parse(jsonData: RunConfig.default.jsonData(pretty: true)) == RunConfig.default)
}

@Test func canonicalJSONWritesEveryDefaultExplicitly() throws {
    // Foundation's parser is the independent reader here.
    let object = try JSONSerialization.jsonObject(with: RunConfig.default.jsonData()) as! [String: Any]
    let optimizer = object["optimizer"] as! [String: Any]
    #expect((optimizer["beta2"] as? Double).map { Float($0) } == 0.999)
    #expect((optimizer["schedule"] as? [String: Any])?["type"] as? String == "cosine")
    #expect((optimizer["schedule"] as? [String: Any])?["total_steps"] is NSNull)
    #expect(optimizer["clip_value"] is NSNull)
    let layers = (object["model"] as! [String: Any])["layers"] as! [[String: Any]]
    #expect(layers[2]["use_bias"] as? Bool == true)
    #expect(layers[2]["activation"] is NSNull)
    let training = object["training"] as! [String: Any]
    #expect(training["shards"] is NSNull && training["epochs"] as? Int == 10)
    #expect((object["monitor"] as! [String: Any])["policy"] as? String == "warn")
}

@Test func canonicalJSONSortsKeysAtEveryLevel() throws {
    let text = String(decoding: RunConfig.default.jsonData(), as: UTF8.self)
    #expect(text.hasPrefix("{\"data\":{\"name\":\"fashion-mnist\",\"normalize\":\"standardize\"},\"loss\":\"cross_entropy\",\"model\":"))
    // The same bytes however the fields were set.
    var reordered = RunConfig.default
    reordered.training.seed = 2
    reordered.training.seed = 1
    #expect(reordered.jsonData() == RunConfig.default.jsonData())
}

@Test func awkwardFloatsSurviveTheRoundTripBitForBit() throws {
    let values: [Float] = [0.1, 1e-8, 3.4028235e38, Float.leastNonzeroMagnitude, 1.0 / 3.0, 0.999_999_94, 16_777_217, 7e-45]
    for value in values {
        var config = RunConfig.default
        config.optimizer.lr = value
        config.optimizer.clipNorm = value
        config.model.layers[0] = .dense(DenseConfig(units: 3, initializer: .constant(value: -value), biasInit: value))
        let back = try RunConfig.parse(jsonData: config.jsonData())
        #expect(back.optimizer.lr.bitPattern == value.bitPattern)
        #expect(back == config)
    }
}

@Test func randomConfigsRoundTrip() throws {
    var rng = DeterministicRNG(42)
    for _ in 0..<300 {
        let config = randomConfig(&rng)
        let parsed = try RunConfig.parse(jsonData: config.jsonData())
        #expect(parsed == config, "\(String(decoding: config.jsonData(pretty: true), as: UTF8.self))")
        #expect(parsed.canonicalHash() == config.canonicalHash())
    }
}

@Test func hashIsStableForEqualConfigsAndChangesWithAnyField() throws {
    let parsed = try RunConfig.parse(jsonData: Data("""
        {"model": {"input": [784], "layers": [
          {"type": "dense", "units": 256, "activation": "relu", "init": "kaiming_uniform"},
          {"type": "dense", "units": 128, "activation": "relu", "init": "he_uniform"},
          {"type": "dense", "units": 10}]},
         "optimizer": {"clip_norm": 1, "lr": 1e-3, "schedule": {"type": "cosine", "min_lr": 0}}}
        """.utf8))
    #expect(parsed.canonicalHash() == RunConfig.default.canonicalHash())
    var changed = RunConfig.default
    changed.training.seed = 2
    #expect(changed.canonicalHash() != RunConfig.default.canonicalHash())
}

@Test func hashIsFNV1aOfTheCanonicalBytes() {
    // FNV-1a 64 computed independently, byte by byte, over the compact canonical JSON.
    var expected: UInt64 = 14_695_981_039_346_656_037
    for byte in RunConfig.default.jsonData() { expected = (expected ^ UInt64(byte)) &* 1_099_511_628_211 }
    #expect(RunConfig.default.canonicalHash() == expected)
}

// MARK: - Random configs

// Test inputs are drawn from TensorCore's seeded `DeterministicRNG` (a `RandomNumberGenerator`).

private func randomFloat(_ rng: inout DeterministicRNG, in range: ClosedRange<Float> = 0.0001...10) -> Float {
    // Random bit patterns in the range, so the decimal text is rarely short.
    Float.random(in: range, using: &rng)
}

private func randomActivation(_ rng: inout DeterministicRNG) -> Activation? {
    let options: [Activation?] = [nil, .linear, .relu, .leakyRelu(alpha: randomFloat(&rng, in: 0...1)),
                                  .prelu(initial: randomFloat(&rng, in: -1...1)), .tanh, .sigmoid, .gelu, .softmax]
    return options.randomElement(using: &rng)!
}

private func randomInitializer(_ rng: inout DeterministicRNG) -> Initializer? {
    let options: [Initializer?] = [nil, .zeros, .ones, .constant(value: randomFloat(&rng, in: -5...5)), .uniform(limit: randomFloat(&rng)),
                                   .normal(std: randomFloat(&rng)), .xavierUniform, .xavierNormal, .heUniform, .heNormal,
                                   .lecunNormal, .orthogonal]
    return options.randomElement(using: &rng)!
}

private func randomLayers(_ rng: inout DeterministicRNG, depth: Int) -> [LayerConfig] {
    (0..<Int.random(in: 1...4, using: &rng)).map { _ in
        switch Int.random(in: 0..<(depth < 2 ? 8 : 7), using: &rng) {
        case 0:
            return .dense(DenseConfig(units: .random(in: 1...512, using: &rng), activation: randomActivation(&rng),
                                      initializer: randomInitializer(&rng), biasInit: randomFloat(&rng, in: -1...1), useBias: .random(using: &rng)))
        case 1:
            return .conv2d(Conv2DConfig(filters: .random(in: 1...64, using: &rng), kernel: .random(in: 1...7, using: &rng),
                                        stride: .random(in: 1...3, using: &rng), padding: Bool.random(using: &rng) ? .same : .valid,
                                        activation: randomActivation(&rng), initializer: randomInitializer(&rng),
                                        biasInit: randomFloat(&rng, in: -1...1), useBias: .random(using: &rng)))
        case 2: return .maxpool2d(size: .random(in: 1...4, using: &rng), stride: .random(in: 1...4, using: &rng))
        case 3: return .flatten
        case 4: return .batchnorm(momentum: randomFloat(&rng, in: 0...1), eps: randomFloat(&rng, in: 1e-7...1e-2))
        case 5: return .dropout(rate: randomFloat(&rng, in: 0...0.99))
        case 6: return .activation(randomActivation(&rng) ?? .relu)
        default: return .residual(randomLayers(&rng, depth: depth + 1))
        }
    }
}

private func randomSchedule(_ rng: inout DeterministicRNG, depth: Int = 0) -> ScheduleConfig {
    switch Int.random(in: 0..<(depth == 0 ? 4 : 3), using: &rng) {
    case 0: return .constant
    case 1: return .step(stepSize: .random(in: 1...10_000, using: &rng), gamma: randomFloat(&rng, in: 0.01...1))
    case 2: return .cosine(totalSteps: Bool.random(using: &rng) ? nil : .random(in: 1...100_000, using: &rng), minLR: randomFloat(&rng, in: 0...0.01))
    default: return .warmup(warmupSteps: .random(in: 1...1000, using: &rng), then: randomSchedule(&rng, depth: 1))
    }
}

/// A random valid config; optimizer fields that do not apply to the chosen optimizer keep their defaults.
func randomConfig(_ rng: inout DeterministicRNG) -> RunConfig {
    let name = OptimizerConfig.Name.allCases.randomElement(using: &rng)!
    var optimizer = OptimizerConfig(name: name, lr: randomFloat(&rng, in: 1e-6...1), weightDecay: randomFloat(&rng, in: 0...0.1),
                                    clipNorm: Bool.random(using: &rng) ? randomFloat(&rng) : nil,
                                    clipValue: Bool.random(using: &rng) ? randomFloat(&rng) : nil,
                                    clipPerTensorNorm: Bool.random(using: &rng) ? randomFloat(&rng) : nil,
                                    schedule: randomSchedule(&rng))
    switch name {
    case .sgd:
        optimizer.momentum = randomFloat(&rng, in: 0.01...0.99)
        optimizer.nesterov = .random(using: &rng)
    case .adam, .adamw:
        optimizer.beta1 = randomFloat(&rng, in: 0...0.99)
        optimizer.beta2 = randomFloat(&rng, in: 0...0.9999)
        optimizer.eps = randomFloat(&rng, in: 1e-10...1e-3)
    case .rmsprop:
        optimizer.alpha = randomFloat(&rng, in: 0...0.99)
        optimizer.eps = randomFloat(&rng, in: 1e-10...1e-3)
        optimizer.momentum = randomFloat(&rng, in: 0...0.99)
    }
    let sources: [DataConfig.Source] = [
        .named("fashion-mnist"),
        .idx(trainImages: "/d/train-images.gz", trainLabels: "tl \"quoted\"", testImages: "ümlaut/ti", testLabels: "t\\l"),
        .csv(train: "a.csv", test: "b.csv", labelColumn: "class\tid"),
    ]
    let input = Bool.random(using: &rng) ? [Int.random(in: 1...1000, using: &rng)] : [1, 28, 28]
    return RunConfig(
        model: ModelConfig(input: input, layers: randomLayers(&rng, depth: 0)),
        loss: LossKind.allCases.randomElement(using: &rng)!,
        optimizer: optimizer,
        data: DataConfig(source: sources.randomElement(using: &rng)!, normalize: DataConfig.Normalization.allCases.randomElement(using: &rng)!),
        training: TrainingConfig(epochs: .random(in: 1...100, using: &rng), batchSize: .random(in: 1...4096, using: &rng),
                                 seed: rng.next(), shards: Bool.random(using: &rng) ? .random(in: 1...64, using: &rng) : nil,
                                 maxSteps: Bool.random(using: &rng) ? .random(in: 1...1_000_000, using: &rng) : nil),
        monitor: MonitorConfig(policy: MonitorConfig.Policy.allCases.randomElement(using: &rng)!, interval: .random(in: 1...100, using: &rng),
                               thresholds: Bool.random(using: &rng) ? [:] : ["a": Double.random(in: -1e300...1e300, using: &rng), "b": 1e-320]))
}
