#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tape {
    /// max(x, 0).
    public func relu(_ a: Tensor) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        let x = a.data, y = out.data, n = a.count
        biasReLU(x, 0, y, n)
        record(out, [a]) {
            let g = out.gradientPointer(), (ga, fresh) = a.gradientForOverwrite()
            Tape.reluBackward(x, g, ga, n, add: !fresh)
        }
        return out
    }

    /// ga (+)= g where x > 0, 0 elsewhere; `add: false` overwrites ga, as 0 + (masked g): the
    /// same bits as adding into a zeroed buffer (−0 becomes +0).
    @inline(__always) static func reluBackward(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ ga: UnsafeMutablePointer<Float>, _ n: Int, add: Bool) {
        let zero = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(x).loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let gv = UnsafeRawPointer(g).loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let old = add ? UnsafeRawPointer(ga).loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) : zero
            UnsafeMutableRawPointer(ga).storeBytes(of: old + gv.replacing(with: zero, where: v .<= zero), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { ga[i] = (add ? ga[i] : 0) + (x[i] <= 0 ? 0 : g[i]); i += 1 }
    }

    /// x for x > 0, αx otherwise (PyTorch's default α is 0.01).
    public func leakyRelu(_ a: Tensor, alpha: Float = 0.01) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        let x = a.data, y = out.data, n = a.count
        for i in 0..<n { y[i] = x[i] > 0 ? x[i] : alpha * x[i] }
        record(out, [a]) {
            let g = out.gradientPointer(), ga = a.gradientPointer()
            for i in 0..<n { ga[i] += x[i] > 0 ? g[i] : alpha * g[i] }
        }
        return out
    }

    /// Parametric ReLU: x for x > 0, αₖ·x otherwise, with a learned slope `alpha` of one
    /// element (shared) or one per channel, channel being dimension 1 of `a` (PyTorch's PReLU).
    public func prelu(_ a: Tensor, alpha: Tensor) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        let x = a.data, y = out.data, p = alpha.data
        let channels = alpha.count
        let batch = a.shape.first ?? 1
        precondition(channels == 1 || (a.shape.count >= 2 && a.shape[1] == channels), "prelu slope count \(channels) does not match \(a.shape)")
        let spatial = channels == 1 ? a.count / Swift.max(batch, 1) : a.count / Swift.max(batch * channels, 1)
        let perExample = channels == 1 ? spatial : channels * spatial
        @inline(__always) func channel(_ i: Int) -> Int { channels == 1 ? 0 : (i % perExample) / spatial }
        for i in 0..<a.count { y[i] = x[i] > 0 ? x[i] : p[channel(i)] * x[i] }
        record(out, [a, alpha]) {
            let g = out.gradientPointer()
            if a.requiresGrad {
                let ga = a.gradientPointer()
                for i in 0..<a.count { ga[i] += x[i] > 0 ? g[i] : p[channel(i)] * g[i] }
            }
            if alpha.requiresGrad {
                let gp = alpha.gradientPointer()
                for i in 0..<a.count where x[i] <= 0 { gp[channel(i)] += g[i] * x[i] }
            }
        }
        return out
    }

    /// tanh x.
    public func tanh(_ a: Tensor) -> Tensor {
        unary(a, forward: { tanhf($0) }, derivative: { _, y in 1 - y * y })
    }

    /// The logistic function 1 / (1 + e⁻ˣ), computed without overflow for large |x|.
    public func sigmoid(_ a: Tensor) -> Tensor {
        unary(a, forward: { x in x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x)) },
              derivative: { _, y in y * (1 - y) })
    }

    /// GELU, the exact form x·Φ(x) = x/2·(1 + erf(x/√2)) (PyTorch's default).
    public func gelu(_ a: Tensor) -> Tensor {
        unary(a, forward: { x in 0.5 * x * (1 + erff(x * 0.70710678)) },
              derivative: { x, _ in
                  let cdf = 0.5 * (1 + erff(x * 0.70710678))
                  let pdf = expf(-0.5 * x * x) * 0.39894228
                  return cdf + x * pdf
              })
    }
}
