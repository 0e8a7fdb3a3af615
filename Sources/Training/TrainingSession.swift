import Cluster
import CollapseMonitor
import Coordination
import Config
import Data
import Foundation
import NeuralNet
import Optimizers
import Signals
import TensorCore

/// Loads the data a config names and normalizes it with training statistics.
public func loadData(_ config: DataConfig) throws -> (split: DataSplit, normalization: NormalizationStatistics) {
    let source: DataSource
    switch config.source {
    case .named(let name):
        guard name == "fashion-mnist" else { throw RuntimeError.invalidSetting("data.name: unknown data set \"\(name)\" (expected fashion-mnist)") }
        source = .fashionMNIST()
    case let .idx(trainImages, trainLabels, testImages, testLabels):
        source = .idx(trainImages: trainImages, trainLabels: trainLabels, testImages: testImages, testLabels: testLabels)
    case let .csv(train, test, labelColumn):
        source = .csv(train: train, test: test, labelColumn: labelColumn)
    case let .npy(trainFeatures, trainLabels, testFeatures, testLabels):
        source = .npy(trainFeatures: trainFeatures, trainLabels: trainLabels, testFeatures: testFeatures, testLabels: testLabels)
    case let .npz(path, trainFeatures, trainLabels, testFeatures, testLabels):
        source = .npz(path: path, trainFeatures: trainFeatures, trainLabels: trainLabels, testFeatures: testFeatures, testLabels: testLabels)
    }
    var split = try source.load()
    let method = Normalization(rawValue: config.normalize.rawValue) ?? .none
    let statistics = split.normalize(method)
    return (split, statistics)
}

/// Checks that a model and a data split fit together before anything reads it: the feature
/// width, and for cross-entropy every label a class index the model has (a label indexes the
/// model's outputs, and release builds do not check bounds). `split` names it in the error.
public func validate(model: Model, loss: LossKind, data: Dataset, split: String) throws {
    let width = model.config.input.reduce(1, *)
    guard width == data.featureCount else {
        throw RuntimeError.dataMismatch("\(split) data: model.input \(model.config.input) has \(width) features but the data has \(data.featureCount) per example (shape \(data.exampleShape))")
    }
    if loss == .crossEntropy {
        let units = model.outputUnits
        for (index, label) in data.labels.enumerated() {
            guard label >= 0, label == label.rounded(), label < Float(units) else {
                let place = data.sourceLines.map { "\(data.source):\($0[index])" } ?? "\(split) data, example \(index) (0-based, in file order, of \(data.source))"
                throw RuntimeError.dataMismatch("\(place): label \(label) is not a class index of a model with \(units) output unit\(units == 1 ? "" : "s") (loss cross_entropy needs 0…\(units - 1))")
            }
        }
    }
}

/// Computes shards: gathers a shard's examples from the local data and runs the model's
/// forward/backward on them. Used in-process and by every worker, so both compute the
/// same bits for the same (parameters, seed, epoch, step, shard).
public final class ShardComputer {
    public let model: Model
    public let train: Dataset
    public let plan: BatchPlan
    public let loss: LossKind
    public let seed: UInt64
    private var features: [Float] = []
    private var labels: [Float] = []

    public init(model: Model, train: Dataset, plan: BatchPlan, loss: LossKind, seed: UInt64) {
        self.model = model; self.train = train; self.plan = plan; self.loss = loss; self.seed = seed
    }

    /// Computes shard `shard` of `shards` of global step `globalStep` into `contribution`
    /// (`model.contributionCount` floats).
    public func compute(globalStep: Int, shard: Int, shards: Int, into contribution: UnsafeMutablePointer<Float>,
                        collector: SignalCollector? = nil) -> (ShardOutcome, ShardSignals?) {
        let (epoch, step) = plan.position(globalStep: globalStep)
        let indices = plan.shardIndices(epoch: epoch, step: step, shard: shard, shards: shards)
        let width = train.featureCount
        if features.count < indices.count * width { features = [Float](repeating: 0, count: indices.count * width) }
        if labels.count < indices.count { labels = [Float](repeating: 0, count: indices.count) }
        let key: [UInt64] = [seed, UInt64(globalStep), UInt64(shard)]
        return features.withUnsafeMutableBufferPointer { f in
            labels.withUnsafeMutableBufferPointer { l in
                train.gather(indices: indices, features: f.baseAddress!, labels: l.baseAddress!)
                collector?.begin(features: f.baseAddress!, featureCount: width, count: indices.count)
                let outcome = model.computeShard(features: f.baseAddress!, labels: l.baseAddress!, count: indices.count, loss: loss,
                                                 randomKey: key, into: contribution, observer: collector)
                return (outcome, collector?.finish(lossSum: outcome.lossSum, count: outcome.count))
            }
        }
    }
}

/// What the coordinator did with one step's aggregate.
public struct StepResult: Sendable {
    public var globalStep: Int
    public var epoch: Int
    public var examples: Int
    public var loss: Double
    public var accuracy: Double
    public var gradNorm: Double
    public var clipped: Bool
    public var learningRate: Float
}

/// The coordinator's side of training: the model whose parameters are authoritative, the
/// optimizer state, the batch plan, and the step's aggregate, summed along the shard tree.
public final class TrainingSession {
    /// Settings that differ from the checkpoint this run resumed from (`--resume-changed`).
    public var resumeChanges: [String] = []
    public let config: RunConfig
    public let data: DataSplit
    public let normalization: NormalizationStatistics
    public let model: Model
    public let optimizer: Optimizer
    public let plan: BatchPlan
    public let shards: Int
    public let totalSteps: Int
    /// Steps completed (the next step's index).
    public var globalStep = 0
    /// The order of the step's sum: fixed by the shard count alone.
    public let tree: ShardTree
    /// Σ of shard contributions along `tree`.
    let aggregate: ContributionSum
    public let tensorRanges: [Range<Int>]
    /// Called with the averaged gradient (before clipping and the update), its global norm,
    /// the step's mean loss and its index: where the collapse monitor looks at every step.
    public var beforeUpdate: ((UnsafeMutablePointer<Float>, Double, Double, Int) -> Void)?
    /// The parameter vector's chunks: the clipping norm is summed per chunk, in chunk order.
    public let chunks: ParameterChunks
    /// Each chunk's Σg² of this step's averaged gradient.
    private var chunkSquares: [Double]
    /// Each parameter tensor's Σg² of the averaged gradient of the step in `beforeUpdate` (from its chunks).
    public var tensorSquares: [Double] {
        chunkSquares.withUnsafeBufferPointer { chunks.tensorSquares($0, tensorCount: tensorRanges.count) }
    }
    /// Nanoseconds spent averaging, clipping and applying the optimizer, summed over the run.
    public private(set) var updateNanos: UInt64 = 0
    /// The training set's summary for the collapse monitor (a pass over every example):
    /// `Launch.makeSession` takes it before any worker joins, since a coordinator does not
    /// heartbeat while it computes it.
    public private(set) lazy var trainSummary = DataSummary(data.train)

    public init(config: RunConfig, shards: Int, data: DataSplit? = nil, normalization: NormalizationStatistics? = nil) throws {
        guard shards >= 1 else { throw RuntimeError.invalidSetting("--shards must be at least 1, got \(shards)") }
        self.config = config
        if let data, let normalization {
            self.data = data; self.normalization = normalization
        } else {
            (self.data, self.normalization) = try loadData(config.data)
        }
        model = try Model(config: config.model, seed: config.training.seed)
        try validate(model: model, loss: config.loss, data: self.data.train, split: "training")
        try validate(model: model, loss: config.loss, data: self.data.test, split: "test")
        plan = BatchPlan(exampleCount: self.data.train.count, batchSize: config.training.batchSize, seed: config.training.seed)
        let epochSteps = plan.stepsPerEpoch * config.training.epochs
        totalSteps = min(epochSteps, config.training.maxSteps ?? epochSteps)
        // The schedule's horizon is the planned run (epochs × steps per epoch): `max_steps` stops a
        // run early without bending its learning-rate curve, so a run resumed with a later
        // `max_steps` continues exactly where the longer run would have been.
        optimizer = Optimizer(config: config.optimizer, parameterCount: model.parameters.count, totalSteps: epochSteps)
        self.shards = shards
        tree = ShardTree(count: shards)
        aggregate = ContributionSum(count: model.contributionCount, tree: tree)
        tensorRanges = model.parameters.tensorRanges
        chunks = ParameterChunks(tensors: tensorRanges)
        chunkSquares = Array(repeating: 0, count: chunks.count)
    }

    /// Examples in global step `step`'s batch.
    public func examples(inStep step: Int) -> Int {
        let (epoch, inEpoch) = plan.position(globalStep: step)
        return plan.batchIndices(epoch: epoch, step: inEpoch).count
    }

    /// Starts a step's aggregation.
    public func beginStep() {
        aggregate.reset()
    }

    /// A buffer for one contribution (`model.contributionCount` floats), to hand to `add`.
    public func contributionBuffer() -> TensorStorage { aggregate.buffer() }

    /// Adds the contribution of `shards` (one shard, or a node of the shard tree summed by a
    /// worker); nodes must arrive in shard order. The session owns `contribution` now.
    public func add(shards: Range<Int>, contribution: TensorStorage, outcome: ShardOutcome) {
        aggregate.add(shards: shards, values: contribution, outcome: outcome)
    }

    /// Averages the aggregate, clips it once, applies the optimizer and the running
    /// statistics, and advances the step.
    public func finishStep() -> StepResult {
        guard let (total, outcome) = aggregate.result else {
            preconditionFailure("step finished with \(aggregate.covered) of \(shards) shards")
        }
        let updateStarted = DispatchTime.now().uptimeNanoseconds
        defer {
            aggregate.reset(recycling: total)
            updateNanos += DispatchTime.now().uptimeNanoseconds - updateStarted
        }
        let (epoch, _) = plan.position(globalStep: globalStep)
        let stepLoss = outcome.lossSum, stepCorrect = outcome.correct, stepExamples = outcome.count
        let n = max(stepExamples, 1)
        let inverse = 1 / Float(n)
        let sum = total.pointer
        // The averaging and each chunk's Σg² (the clipping norm, and each tensor's for the monitor)
        // in one pass; the contribution's tail (batch-norm statistics) is averaged after.
        let parameterCount = model.parameters.count
        let norm = chunkSquares.withUnsafeMutableBufferPointer {
            GradientClipping.scaleAndChunkSquares(sum, count: parameterCount, scale: inverse, chunks: chunks, squares: $0.baseAddress!)
        }
        for i in parameterCount..<total.count { sum[i] *= inverse }
        beforeUpdate?(sum, norm, stepLoss / Double(n), globalStep)
        let lr = optimizer.currentLearningRate
        let report = optimizer.update(parameters: model.parameters.values.pointer, gradients: sum, tensorRanges: tensorRanges, norm: norm)
        model.updateRunningStatistics(merged: sum + model.parameters.count)
        let result = StepResult(globalStep: globalStep, epoch: epoch, examples: stepExamples, loss: stepLoss / Double(n),
                                accuracy: Double(stepCorrect) / Double(n), gradNorm: report.normBeforeClipping,
                                clipped: report.clipped, learningRate: lr)
        globalStep += 1
        return result
    }

    /// Everything the coordinator's next step depends on: parameters, running statistics,
    /// optimizer state and step, the monitor's changes to the learning rate and clipping, and
    /// the step count. What a rewind restores (the batches are a function of the step).
    public struct State {
        public let globalStep: Int
        let parameters: [Float], buffers: [Float], optimizer: [[Float]], optimizerStep: Int
        let learningRateScale: Float, clipNorm: Float?
    }

    /// A copy of the current state.
    public func captureState() -> State {
        State(globalStep: globalStep, parameters: model.parameters.valueArray, buffers: model.buffers.valueArray,
              optimizer: optimizer.stateArrays, optimizerStep: optimizer.step,
              learningRateScale: optimizer.learningRateScale, clipNorm: optimizer.config.clipNorm)
    }

    /// Puts `state` back (and drops any partial aggregate): the next step is `state.globalStep`.
    public func restore(_ state: State) {
        aggregate.reset()
        state.parameters.withUnsafeBufferPointer { model.parameters.load($0.baseAddress!) }
        state.buffers.withUnsafeBufferPointer { if let base = $0.baseAddress { model.buffers.load(base) } }
        optimizer.restore(state: state.optimizer, step: state.optimizerStep)
        optimizer.learningRateScale = state.learningRateScale
        optimizer.config.clipNorm = state.clipNorm
        globalStep = state.globalStep
    }

    /// Test-set loss and accuracy with the current parameters.
    public func evaluate() -> (loss: Double, accuracy: Double) {
        data.test.features.withUnsafeBufferPointer { f in
            data.test.labels.withUnsafeBufferPointer { l in
                model.evaluate(features: f.baseAddress!, labels: l.baseAddress!, count: data.test.count, loss: config.loss)
            }
        }
    }
}
