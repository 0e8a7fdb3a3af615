import Config
import Foundation
import Optimizers
import Testing

/// The update rules against PyTorch's formulas, and the vectorized Adam kernel against the same
/// expression evaluated in Swift, bit for bit.
struct OptimizerTests {
    /// PyTorch's Adam per element, in Float, in the order the kernel promises.
    static func referenceAdam(p: inout [Float], g: [Float], m: inout [Float], v: inout [Float], lr: Float, t: Int,
                              weightDecay: Float, decoupled: Bool) {
        let b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8
        let correction1 = 1 - Float(pow(Double(b1), Double(t)))
        let root = Float((1 - pow(Double(b2), Double(t))).squareRoot())
        let step = lr / correction1
        let shrink: Float = decoupled ? 1 - lr * weightDecay : 1
        let l2: Float = decoupled ? 0 : weightDecay
        let one1: Float = 1 - b1, one2: Float = 1 - b2
        for i in p.indices {
            let d = g[i] + l2 * p[i]
            let mi = b1 * m[i] + one1 * d
            let vi = b2 * v[i] + one2 * d * d
            m[i] = mi; v[i] = vi
            let denominator = vi.squareRoot() / root + eps
            p[i] = p[i] * shrink - step * mi / denominator
        }
    }

    @Test(arguments: [(Float(0), false), (Float(0.01), false), (Float(0.01), true)])
    func adamKernelMatchesTheScalarExpressionBitForBit(weightDecay: Float, decoupled: Bool) {
        var rng = SystemRandomNumberGenerator()
        let count = 1003  // not a multiple of any vector width: the tail runs too
        var p = (0..<count).map { _ in Float.random(in: -1...1, using: &rng) }
        var expected = p, m = [Float](repeating: 0, count: count), v = m
        let rule = Adam(weightDecay: weightDecay, decoupled: decoupled)
        let mState = UnsafeMutablePointer<Float>.allocate(capacity: count), vState = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { mState.deallocate(); vState.deallocate() }
        mState.initialize(repeating: 0, count: count); vState.initialize(repeating: 0, count: count)
        for t in 1...6 {
            let g = (0..<count).map { _ in Float.random(in: -3...3, using: &rng) * (t == 3 ? 1e-20 : 1) }
            p.withUnsafeMutableBufferPointer { pp in
                rule.apply(parameters: pp.baseAddress!, gradients: g, count: count, state: [mState, vState], lr: 0.001, t: t)
            }
            Self.referenceAdam(p: &expected, g: g, m: &m, v: &v, lr: 0.001, t: t, weightDecay: weightDecay, decoupled: decoupled)
            #expect(p.map(\.bitPattern) == expected.map(\.bitPattern), "step \(t)")
            #expect(Array(UnsafeBufferPointer(start: mState, count: count)).map(\.bitPattern) == m.map(\.bitPattern))
            #expect(Array(UnsafeBufferPointer(start: vState, count: count)).map(\.bitPattern) == v.map(\.bitPattern))
        }
    }

    @Test func adamsFirstStepMovesEveryParameterByTheLearningRate() {
        // At t = 1 the bias-corrected moments are g and g², so the step is lr·g/(|g| + eps).
        let optimizer = Optimizer(config: OptimizerConfig(name: .adam, lr: 0.01), parameterCount: 3, totalSteps: 10)
        var p: [Float] = [1, 1, 1]
        var g: [Float] = [0.5, -2, 1e-3]
        p.withUnsafeMutableBufferPointer { pp in
            g.withUnsafeMutableBufferPointer { gg in
                _ = optimizer.update(parameters: pp.baseAddress!, gradients: gg.baseAddress!, tensorRanges: [0..<3])
            }
        }
        #expect(abs(p[0] - 0.99) < 1e-6 && abs(p[1] - 1.01) < 1e-6 && abs(p[2] - 0.99) < 1e-5)
    }

    @Test func sgdMomentumIsPyTorchs() {
        // v₁ = g₁; p −= lr·v₁; v₂ = μ·v₁ + g₂; p −= lr·v₂ (PyTorch, dampening 0).
        let optimizer = Optimizer(config: OptimizerConfig(name: .sgd, lr: 0.1, momentum: 0.9), parameterCount: 1, totalSteps: 10)
        var p: [Float] = [1]
        for gradient: Float in [1, 2] {
            var g = [gradient]
            p.withUnsafeMutableBufferPointer { pp in
                g.withUnsafeMutableBufferPointer { _ = optimizer.update(parameters: pp.baseAddress!, gradients: $0.baseAddress!, tensorRanges: [0..<1]) }
            }
        }
        // 1 − 0.1·1 − 0.1·(0.9·1 + 2) = 0.61
        #expect(abs(p[0] - 0.61) < 1e-6)
    }

    @Test func globalNormClippingScalesByClipOverNormPlusEpsilon() {
        var g: [Float] = [3, 4]
        let clipped = g.withUnsafeMutableBufferPointer { GradientClipping.clipGlobalNorm($0.baseAddress!, count: 2, maxNorm: 1, norm: 5) }
        #expect(clipped)
        let scale = Float(1.0 / (5.0 + 1e-6))
        #expect(g == [3 * scale, 4 * scale])
        var small: [Float] = [0.3, 0.4]
        #expect(!small.withUnsafeMutableBufferPointer { GradientClipping.clipGlobalNorm($0.baseAddress!, count: 2, maxNorm: 1, norm: 0.5) })
    }
}

/// The session's one-pass averaging, global norm and per-tensor Σg² (`GradientClipping.scaleAndNorm`).
struct ScaleAndNormTests {
    func values(_ n: Int) -> [Float] { (0..<n).map { Float(sin(Double($0) * 0.37)) * Float(1 + $0 % 7) } }

    /// Σx² as the collapse monitor's `sumOfSquares`: eight Float lanes from the start, the tail in Double.
    func laneSquares(_ x: ArraySlice<Float>) -> Double {
        var acc = SIMD8<Float>(), i = x.startIndex
        while i + 8 <= x.endIndex { let v = SIMD8<Float>(x[i..<(i + 8)]); acc += v * v; i += 8 }
        var total = Double(acc.sum())
        while i < x.endIndex { total += Double(x[i] * x[i]); i += 1 }
        return total
    }

    @Test(arguments: [[0..<200704, 200704..<200960, 200960..<201090], [0..<16, 16..<21], [0..<8, 8..<13, 13..<40]])
    func sameBitsAsScalingThenTheNorm(tensors: [Range<Int>]) {
        let count = tensors.last!.upperBound
        var expected = values(count)
        let scale: Float = 1 / 128
        for i in expected.indices { expected[i] *= scale }
        let norm = expected.withUnsafeBufferPointer { GradientClipping.globalNorm($0.baseAddress!, count: count) }
        var fused = values(count)
        var squares = [Double](repeating: -1, count: tensors.count)
        let result = fused.withUnsafeMutableBufferPointer { g in
            squares.withUnsafeMutableBufferPointer { GradientClipping.scaleAndNorm(g.baseAddress!, count: count, scale: scale, tensors: tensors, squares: $0.baseAddress) }
        }
        #expect(fused.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(result.norm.bitPattern == norm.bitPattern)
        // Aligned layouts also give each tensor's Σx², the monitor's bits; others leave it alone.
        let aligned = tensors.dropLast().allSatisfy { $0.lowerBound % 8 == 0 && $0.count % 8 == 0 }
        #expect(result.fused == aligned)
        if aligned {
            #expect(squares.map(\.bitPattern) == tensors.map { laneSquares(expected[$0]).bitPattern })
        } else {
            #expect(squares.allSatisfy { $0 == -1 })
        }
    }
}
