import CollapseMonitor
import Config
import Data
import NeuralNet
import TensorCore

/// The run's fixed probe batch: `size` training examples chosen by the seed, evaluated by
/// every replica every K steps (see `ProbeSignals`).
public final class ProbeBatch {
    let features: [Float]
    let labels: [Float]
    public let count: Int

    /// Picks `size` distinct examples with a stream keyed by (seed, "PROB").
    public init(train: Dataset, seed: UInt64, size: Int = 64) {
        var rng = DeterministicRNG(key: [seed, 0x5052_4F42])
        var chosen: [Int] = [], seen = Set<Int>()
        let target = min(size, train.count)
        while chosen.count < target {
            let index = rng.nextIndex(below: train.count)
            if seen.insert(index).inserted { chosen.append(index) }
        }
        (features, labels) = train.gather(indices: chosen)
        count = target
    }

    /// Runs `model` forward on the probe batch: output variance across examples, distinct
    /// predictions, and a checksum of the output bits.
    public func evaluate(_ model: Model, loss: LossKind) -> ProbeSignals {
        guard count > 0 else { return ProbeSignals(examples: 0, meanVariance: 0, distinctPredictions: 0, outputChecksum: 0) }
        let tape = Tape(recording: false)
        // Training mode with a fixed random key: batch norm uses the probe batch's own
        // statistics (workers hold no running statistics), dropout a fixed mask — the result
        // is a pure function of the parameters, identical on every healthy replica.
        var context = ForwardContext(tape: tape, training: true, randomKey: [0x5052_4F42])
        let output: Tensor = features.withUnsafeBufferPointer { f in
            let input = Tensor(uninitialized: [count] + model.config.input)
            input.data.update(from: f.baseAddress!, count: input.count)
            return model.forward(input, &context)
        }
        let units = output.count / count
        let y = output.data
        var varianceSum = 0.0
        for u in 0..<units {
            var sum = 0.0, squares = 0.0
            for r in 0..<count { let v = Double(y[r * units + u]); sum += v; squares += v * v }
            let mean = sum / Double(count)
            varianceSum += max(0, squares / Double(count) - mean * mean)
        }
        var predictions = Set<Int>()
        for r in 0..<count {
            let row = y + r * units
            if units == 1 {
                predictions.insert(loss == .bce ? (row[0] > 0 ? 1 : 0) : (row[0].isFinite ? Int(max(-1e9, min(1e9, row[0].rounded()))) : -1))
            } else {
                var best = 0
                for u in 1..<units where row[u] > row[best] { best = u }
                predictions.insert(best)
            }
        }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for i in 0..<output.count {
            var bits = y[i].bitPattern
            for _ in 0..<4 { hash = (hash ^ UInt64(bits & 0xFF)) &* 0x0000_0100_0000_01B3; bits >>= 8 }
        }
        return ProbeSignals(examples: count, meanVariance: varianceSum / Double(max(units, 1)),
                            distinctPredictions: predictions.count, outputChecksum: hash)
    }
}
