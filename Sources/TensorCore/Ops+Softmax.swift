#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a loss combines per-example values.
public enum LossReduction: Sendable {
    /// Σ over examples (each example's loss itself being a mean over its output elements for
    /// `mse`/`bce`); shards send sums so the coordinator can weight them exactly.
    case sum
    /// Mean over examples (and output elements): PyTorch's default.
    case mean
}

/// Writes e^(x − max) for one row into `p` and returns the row's max and the sum of the
/// exponentials: the stable core every softmax-family op shares.
@inline(__always)
func shiftedExponentials(_ x: UnsafePointer<Float>, into p: UnsafeMutablePointer<Float>, count: Int) -> (maximum: Float, sum: Float) {
    var maximum = -Float.infinity
    for j in 0..<count where x[j] > maximum { maximum = x[j] }
    var sum: Float = 0
    for j in 0..<count { p[j] = expf(x[j] - maximum); sum += p[j] }
    return (maximum, sum)
}

extension Tape {
    /// Numerically stable log-softmax over the last axis: x − max − log Σ exp(x − max).
    public func logSoftmax(_ a: Tensor) -> Tensor {
        let rows = a.rows, columns = a.columns
        let out = Tensor(uninitialized: a.shape)
        let x = a.data, y = out.data
        for r in 0..<rows {
            let xr = x + r * columns, yr = y + r * columns
            let (maximum, total) = shiftedExponentials(xr, into: yr, count: columns)
            let shift = maximum + logf(total)
            for j in 0..<columns { yr[j] = xr[j] - shift }
        }
        record(out, [a]) {
            // dx = g − softmax · Σ g
            let g = out.gradientPointer(), ga = a.gradientPointer()
            for r in 0..<rows {
                let gr = g + r * columns, yr = y + r * columns, gar = ga + r * columns
                var total: Float = 0
                for j in 0..<columns { total += gr[j] }
                for j in 0..<columns { gar[j] += gr[j] - expf(yr[j]) * total }
            }
        }
        return out
    }

    /// Softmax over the last axis, computed stably (subtracting the row maximum).
    public func softmax(_ a: Tensor) -> Tensor {
        let rows = a.rows, columns = a.columns
        let out = Tensor(uninitialized: a.shape)
        let x = a.data, y = out.data
        for r in 0..<rows {
            let xr = x + r * columns, yr = y + r * columns
            let (_, total) = shiftedExponentials(xr, into: yr, count: columns)
            let inverse = 1 / total
            for j in 0..<columns { yr[j] *= inverse }
        }
        record(out, [a]) {
            // dx = y ⊙ (g − Σ g·y)
            let g = out.gradientPointer(), ga = a.gradientPointer()
            for r in 0..<rows {
                let gr = g + r * columns, yr = y + r * columns, gar = ga + r * columns
                var dot: Float = 0
                for j in 0..<columns { dot += gr[j] * yr[j] }
                for j in 0..<columns { gar[j] += yr[j] * (gr[j] - dot) }
            }
        }
        return out
    }

    /// Cross-entropy from logits [N, C] against class indices (`labels`, one per row, as
    /// Float): −log softmax(x)[label], fused and stable. Labels outside 0..<C are a
    /// precondition failure (the data layer validates them first).
    public func crossEntropy(logits: Tensor, labels: UnsafePointer<Float>, reduction: LossReduction) -> Tensor {
        let rows = logits.rows, columns = logits.columns
        let out = Tensor(zeros: [])
        let x = logits.data
        let probabilities = TensorStorage(count: rows * columns, zeroed: false)
        let p = probabilities.pointer
        var total: Double = 0
        for r in 0..<rows {
            let xr = x + r * columns, pr = p + r * columns
            let (maximum, sum) = shiftedExponentials(xr, into: pr, count: columns)
            // Compared as a Float before the conversion (release builds do not check it); callers
            // validate labels where they enter, so this is a last line, not the check.
            guard labels[r] >= 0, labels[r] < Float(columns) else { fatalError("label \(labels[r]) out of range for \(columns) classes") }
            let label = Int(labels[r])
            total += Double(maximum + logf(sum) - xr[label])
            let inverse = 1 / sum
            for j in 0..<columns { pr[j] *= inverse }
        }
        let scale: Float = reduction == .mean ? 1 / Float(Swift.max(rows, 1)) : 1
        out.data[0] = Float(total) * scale
        let labelCopy = Array(UnsafeBufferPointer(start: labels, count: rows))
        record(out, [logits]) {
            let g = out.gradientPointer()[0] * scale, ga = logits.gradientPointer()
            for r in 0..<rows {
                let pr = p + r * columns, gr = ga + r * columns
                for j in 0..<columns { gr[j] += g * pr[j] }
                gr[Int(labelCopy[r])] -= g
            }
            _ = probabilities
        }
        return out
    }

    /// Mean squared error between `predictions` [N, C] and `targets` (same count), averaged over
    /// the C outputs of each example, then summed or averaged over examples.
    public func meanSquaredError(_ predictions: Tensor, targets: UnsafePointer<Float>, reduction: LossReduction) -> Tensor {
        let rows = predictions.rows, columns = predictions.columns
        let out = Tensor(zeros: [])
        let x = predictions.data
        var total: Double = 0
        for i in 0..<predictions.count {
            let d = x[i] - targets[i]
            total += Double(d * d)
        }
        let scale: Float = (reduction == .mean ? 1 / Float(Swift.max(rows, 1)) : 1) / Float(Swift.max(columns, 1))
        out.data[0] = Float(total) * scale
        let targetCopy = Array(UnsafeBufferPointer(start: targets, count: predictions.count))
        record(out, [predictions]) {
            let g = out.gradientPointer()[0] * scale * 2, ga = predictions.gradientPointer()
            for i in 0..<predictions.count { ga[i] += g * (x[i] - targetCopy[i]) }
        }
        return out
    }

    /// Binary cross-entropy from logits: max(x, 0) − x·t + log(1 + e^−|x|) per element (stable),
    /// averaged over the C outputs of each example, then summed or averaged over examples.
    public func binaryCrossEntropy(logits: Tensor, targets: UnsafePointer<Float>, reduction: LossReduction) -> Tensor {
        let rows = logits.rows, columns = logits.columns
        let out = Tensor(zeros: [])
        let x = logits.data
        var total: Double = 0
        for i in 0..<logits.count {
            let v = x[i]
            total += Double(Swift.max(v, 0) - v * targets[i] + log1pf(expf(-abs(v))))
        }
        let scale: Float = (reduction == .mean ? 1 / Float(Swift.max(rows, 1)) : 1) / Float(Swift.max(columns, 1))
        out.data[0] = Float(total) * scale
        let targetCopy = Array(UnsafeBufferPointer(start: targets, count: logits.count))
        record(out, [logits]) {
            let g = out.gradientPointer()[0] * scale, ga = logits.gradientPointer()
            for i in 0..<logits.count {
                let v = x[i]
                let s = v >= 0 ? 1 / (1 + expf(-v)) : expf(v) / (1 + expf(v))
                ga[i] += g * (s - targetCopy[i])
            }
        }
        return out
    }
}
