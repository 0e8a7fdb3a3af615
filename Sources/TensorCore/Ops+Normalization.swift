/// Per-channel statistics of one batch-norm forward pass in training mode.
public struct BatchStatistics {
    /// Mean of each channel over the batch (and spatial positions).
    public var mean: [Float]
    /// Unbiased variance of each channel (what PyTorch folds into `running_var`).
    public var unbiasedVariance: [Float]
    /// Elements per channel that the statistics cover.
    public var elements: Int
}

extension Tape {
    /// Batch normalization (Ioffe & Szegedy 2015) over channels: x is [N, C] or [N, C, H, W];
    /// y = γ·(x − μ)/√(σ² + ε) + β per channel. In training mode μ, σ² are the batch's
    /// (biased variance for normalizing) and returned in `statistics`; otherwise the given
    /// running statistics are used.
    public func batchNorm(
        _ x: Tensor, gamma: Tensor, beta: Tensor, epsilon: Float,
        training: Bool, runningMean: UnsafePointer<Float>, runningVariance: UnsafePointer<Float>,
        statistics: inout BatchStatistics?
    ) -> Tensor {
        let n = x.shape[0], channels = x.shape[1]
        let spatial = x.count / Swift.max(n * channels, 1)
        let m = n * spatial
        let out = Tensor(uninitialized: x.shape)
        let input = x.data, output = out.data, scale = gamma.data, shift = beta.data
        var mean = [Float](repeating: 0, count: channels)
        var inverseStd = [Float](repeating: 0, count: channels)
        var unbiased = [Float](repeating: 0, count: channels)
        @inline(__always) func index(_ e: Int, _ c: Int, _ s: Int) -> Int { (e * channels + c) * spatial + s }
        for c in 0..<channels {
            if training {
                var total: Double = 0
                for e in 0..<n { for s in 0..<spatial { total += Double(input[index(e, c, s)]) } }
                let mu = total / Double(Swift.max(m, 1))
                var squares: Double = 0
                for e in 0..<n { for s in 0..<spatial { let d = Double(input[index(e, c, s)]) - mu; squares += d * d } }
                let variance = squares / Double(Swift.max(m, 1))
                mean[c] = Float(mu)
                inverseStd[c] = Float(1 / (variance + Double(epsilon)).squareRoot())
                unbiased[c] = Float(m > 1 ? squares / Double(m - 1) : 0)
            } else {
                mean[c] = runningMean[c]
                inverseStd[c] = 1 / (runningVariance[c] + epsilon).squareRoot()
            }
            let a = scale[c] * inverseStd[c], b = shift[c] - mean[c] * a
            for e in 0..<n { for s in 0..<spatial { let i = index(e, c, s); output[i] = input[i] * a + b } }
        }
        if training { statistics = BatchStatistics(mean: mean, unbiasedVariance: unbiased, elements: m) }
        record(out, [x, gamma, beta]) {
            let g = out.gradientPointer()
            let (gradientX, fresh) = x.requiresGrad ? x.gradientForOverwrite() : (g, false)
            for c in 0..<channels {
                var sumG: Float = 0, sumGX: Float = 0
                for e in 0..<n {
                    for s in 0..<spatial {
                        let i = index(e, c, s)
                        let xhat = (input[i] - mean[c]) * inverseStd[c]
                        sumG += g[i]; sumGX += g[i] * xhat
                    }
                }
                if gamma.requiresGrad { gamma.gradientPointer()[c] += sumGX }
                if beta.requiresGrad { beta.gradientPointer()[c] += sumG }
                if x.requiresGrad {
                    // Each channel writes its own elements, so a new buffer is written (0 + v), not zeroed first.
                    let gx = gradientX
                    let k = scale[c] * inverseStd[c]
                    if training {
                        // dx = γ/σ · (g − mean(g) − x̂·mean(g·x̂))
                        let meanG = sumG / Float(m), meanGX = sumGX / Float(m)
                        for e in 0..<n {
                            for s in 0..<spatial {
                                let i = index(e, c, s)
                                let xhat = (input[i] - mean[c]) * inverseStd[c]
                                gx[i] = (fresh ? 0 : gx[i]) + k * (g[i] - meanG - xhat * meanGX)
                            }
                        }
                    } else {
                        for e in 0..<n { for s in 0..<spatial { let i = index(e, c, s); gx[i] = (fresh ? 0 : gx[i]) + k * g[i] } }
                    }
                }
            }
        }
        return out
    }

    /// Inverted dropout: zeroes each element with probability `rate` and scales the rest by
    /// 1/(1 − rate); the mask comes from `rng`, so it is a pure function of the stream's key.
    public func dropout(_ x: Tensor, rate: Float, rng: inout DeterministicRNG) -> Tensor {
        if rate <= 0 { return x }
        let keep = 1 / (1 - rate)
        let mask = TensorStorage(count: x.count, zeroed: false)
        for i in 0..<x.count { mask.pointer[i] = rng.nextUnitFloat() >= rate ? keep : 0 }
        let out = Tensor(uninitialized: x.shape)
        let input = x.data, output = out.data, m = mask.pointer
        for i in 0..<x.count { output[i] = input[i] * m[i] }
        record(out, [x]) {
            let g = out.gradientPointer(), (gx, fresh) = x.gradientForOverwrite()
            if fresh {
                for i in 0..<x.count { gx[i] = 0 + g[i] * m[i] }
            } else {
                for i in 0..<x.count { gx[i] += g[i] * m[i] }
            }
            _ = mask
        }
        return out
    }
}
