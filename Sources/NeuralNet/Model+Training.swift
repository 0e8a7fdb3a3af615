import Config
import TensorCore

/// What one shard's forward/backward pass produced besides its gradient.
public struct ShardOutcome: Equatable, Sendable {
    /// Σ of per-example losses.
    public var lossSum: Double
    /// Examples whose prediction equals the label.
    public var correct: Int
    /// Examples in the shard.
    public var count: Int

    public init(lossSum: Double = 0, correct: Int = 0, count: Int = 0) {
        self.lossSum = lossSum; self.correct = correct; self.count = count
    }
}

extension Model {
    /// Length of a shard's contribution vector: the gradient of the summed loss for every
    /// parameter, then, for every running statistic, the shard's batch statistic times its
    /// example count. Contributions add up (in shard order) and divide by the batch size.
    public var contributionCount: Int { parameters.count + buffers.count }

    /// Computes one shard: forward in training mode, the loss summed over its examples,
    /// backward, and writes the contribution vector (see `contributionCount`).
    ///
    /// The result is a pure function of the parameters, the examples and `randomKey`
    /// (dropout masks), so any process computing this shard gets the same bits.
    public func computeShard(
        features: UnsafePointer<Float>, labels: UnsafePointer<Float>, count: Int, loss: LossKind,
        randomKey: [UInt64], into contribution: UnsafeMutablePointer<Float>, observer: ActivationObserver? = nil
    ) -> ShardOutcome {
        contribution.update(repeating: 0, count: contributionCount)
        guard count > 0 else { return ShardOutcome() }
        parameters.zeroGradients()
        let tape = Tape()
        var context = ForwardContext(tape: tape, training: true, randomKey: randomKey, observer: observer)
        let input = Tensor.copying(features, shape: [count] + config.input)
        let output = forward(input, &context)
        observer?.observeOutput(output, labels: labels)
        let lossTensor = LossFunction.compute(tape, output: output, labels: labels, kind: loss, reduction: .sum)
        let correct = LossFunction.countCorrect(output: output, labels: labels, kind: loss)
        tape.backward(lossTensor)
        contribution.update(from: parameters.gradients.pointer, count: parameters.count)
        let scale = Float(count)
        for layer in batchNormLayers {
            guard let statistics = context.batchStatistics[layer.ordinal] else { continue }
            let mean = contribution + parameters.count + buffers.entries[layer.runningMean].offset
            let variance = contribution + parameters.count + buffers.entries[layer.runningVariance].offset
            for c in 0..<statistics.mean.count {
                mean[c] = statistics.mean[c] * scale
                variance[c] = statistics.unbiasedVariance[c] * scale
            }
        }
        return ShardOutcome(lossSum: Double(lossTensor.scalar), correct: correct, count: count)
    }

    /// Folds the merged batch statistics (the buffer part of an aggregated contribution,
    /// already divided by the batch size) into the running statistics:
    /// running ← (1 − momentum)·running + momentum·batch (PyTorch's rule).
    public func updateRunningStatistics(merged: UnsafePointer<Float>) {
        for layer in batchNormLayers {
            for index in [layer.runningMean, layer.runningVariance] {
                let entry = buffers.entries[index]
                let running = buffers.values.pointer + entry.offset
                let batch = merged + entry.offset
                for c in 0..<entry.count { running[c] = (1 - layer.momentum) * running[c] + layer.momentum * batch[c] }
            }
        }
    }

    /// Mean loss and accuracy over a data set in evaluation mode (running statistics, no dropout),
    /// `batchSize` examples at a time. 256 keeps the CNNs' largest buffers (the im2col columns, 58 MB
    /// for benchmarks/configs/cnn.json) under the buffer pool's 64 MB limit for reuse: at 1000 each
    /// batch mapped and faulted in ≈ 400 MB afresh, and a 10,000-example evaluation took 4.9 s (2.5 s
    /// of it in the kernel) against 2.6–2.8 s now. The loss sums per batch, so its last digits
    /// depend on the batch size; the accuracy does not.
    public func evaluate(features: UnsafePointer<Float>, labels: UnsafePointer<Float>, count: Int, loss: LossKind, batchSize: Int = 256) -> (loss: Double, accuracy: Double) {
        let width = config.input.reduce(1, *)
        var lossSum = 0.0, correct = 0, start = 0
        let tape = Tape(recording: false)
        while start < count {
            let n = min(batchSize, count - start)
            var context = ForwardContext(tape: tape, training: false, randomKey: [])
            let input = Tensor.copying(features + start * width, shape: [n] + config.input)
            let output = forward(input, &context)
            lossSum += Double(LossFunction.compute(tape, output: output, labels: labels + start, kind: loss, reduction: .sum).scalar)
            correct += LossFunction.countCorrect(output: output, labels: labels + start, kind: loss)
            start += n
        }
        return (lossSum / Double(max(count, 1)), Double(correct) / Double(max(count, 1)))
    }
}

extension Tensor {
    /// A new tensor of `shape` holding a copy of the external values at `source`.
    static func copying(_ source: UnsafePointer<Float>, shape: [Int]) -> Tensor {
        let tensor = Tensor(uninitialized: shape)
        tensor.data.update(from: source, count: tensor.count)
        return tensor
    }
}

/// The configured losses, with the contract's target encoding: cross-entropy takes class
/// indices; `mse`/`bce` regress the label itself with one output unit and a one-hot
/// encoding of the class index with C units.
public enum LossFunction {
    public static func compute(_ tape: Tape, output: Tensor, labels: UnsafePointer<Float>, kind: LossKind, reduction: LossReduction) -> Tensor {
        let rows = output.shape[0], columns = output.count / max(rows, 1)
        let logits = output.shape.count == 2 ? output : tape.flatten(output)
        switch kind {
        case .crossEntropy:
            return tape.crossEntropy(logits: logits, labels: labels, reduction: reduction)
        case .mse, .bce:
            var targets = [Float](repeating: 0, count: rows * columns)
            for r in 0..<rows {
                if columns == 1 { targets[r] = labels[r] } else {
                    // Compared as a Float first: the conversion is unchecked in release builds.
                    if labels[r] >= 0 && labels[r] < Float(columns) { targets[r * columns + Int(labels[r])] = 1 }
                }
            }
            return targets.withUnsafeBufferPointer { t in
                kind == .mse
                    ? tape.meanSquaredError(logits, targets: t.baseAddress!, reduction: reduction)
                    : tape.binaryCrossEntropy(logits: logits, targets: t.baseAddress!, reduction: reduction)
            }
        }
    }

    /// Examples predicted right: argmax = label with several outputs; with one output the
    /// rounded output (for `bce`, logit > 0) equals the label.
    public static func countCorrect(output: Tensor, labels: UnsafePointer<Float>, kind: LossKind) -> Int {
        let rows = output.shape[0], columns = output.count / max(rows, 1)
        let y = output.data
        var correct = 0
        for r in 0..<rows {
            let row = y + r * columns
            let predicted: Float
            if columns == 1 {
                predicted = kind == .bce ? (row[0] > 0 ? 1 : 0) : row[0].rounded()
            } else {
                var best = 0
                for j in 1..<columns where row[j] > row[best] { best = j }
                predicted = Float(best)
            }
            if predicted == labels[r] { correct += 1 }
        }
        return correct
    }
}
