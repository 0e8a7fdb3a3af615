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

/// The session's one-pass averaging and per-chunk Σg² (`GradientClipping.scaleAndChunkSquares`),
/// the chunk layout, and the norm's independence from who computes which chunk.
struct ChunkedNormTests {
    func values(_ n: Int) -> [Float] { (0..<n).map { Float(sin(Double($0) * 0.37)) * Float(1 + $0 % 7) } }

    @Test func chunksAreTensorPiecesFixedBySize() {
        let chunks = ParameterChunks(tensors: [0..<40_000, 40_000..<40_010, 40_010..<40_010, 40_010..<56_394], size: 16_384)
        #expect(chunks.ranges == [0..<16_384, 16_384..<32_768, 32_768..<40_000, 40_000..<40_010, 40_010..<56_394])
        #expect(chunks.tensorOfChunk == [0, 0, 0, 1, 3])
        #expect(ParameterChunks(tensors: []).count == 0)
        // The default MLP (784-256-128-10): its big weight matrix is 13 chunks, every bias one.
        let mlp = ParameterChunks(tensors: [0..<200_704, 200_704..<200_960, 200_960..<233_728, 233_728..<233_856, 233_856..<235_136, 235_136..<235_146])
        #expect(mlp.count == 13 + 1 + 2 + 1 + 1 + 1)
        #expect(mlp.ranges.allSatisfy { $0.count <= ParameterChunks.defaultSize })
    }

    @Test(arguments: [[0..<200_704, 200_704..<200_960, 200_960..<201_090], [0..<16, 16..<21], [0..<8, 8..<13, 13..<40], [0..<3]])
    func scalingAndChunkSquaresInOnePass(tensors: [Range<Int>]) {
        let count = tensors.last!.upperBound
        let chunks = ParameterChunks(tensors: tensors, size: 1000)
        var expected = values(count)
        let scale: Float = 1 / 128
        for i in expected.indices { expected[i] *= scale }
        var fused = values(count)
        var squares = [Double](repeating: -1, count: chunks.count)
        let norm = fused.withUnsafeMutableBufferPointer { g in
            squares.withUnsafeMutableBufferPointer {
                GradientClipping.scaleAndChunkSquares(g.baseAddress!, count: count, scale: scale, chunks: chunks, squares: $0.baseAddress!)
            }
        }
        #expect(fused.map(\.bitPattern) == expected.map(\.bitPattern))
        let own = expected.withUnsafeBufferPointer { g in chunks.ranges.map { GradientClipping.chunkSquares(g.baseAddress!, $0) } }
        #expect(squares.map(\.bitPattern) == own.map(\.bitPattern))
        #expect(norm.bitPattern == expected.withUnsafeBufferPointer { GradientClipping.chunkedNorm($0.baseAddress!, chunks: chunks) }.bitPattern)
        // Close to the plain norm (a different summation order, so not the same bits).
        let plain = expected.withUnsafeBufferPointer { GradientClipping.globalNorm($0.baseAddress!, count: count) }
        #expect(abs(norm - plain) <= 1e-12 * plain)
        // Each tensor's Σx² is its chunks' sum.
        let perTensor = squares.withUnsafeBufferPointer { chunks.tensorSquares($0, tensorCount: tensors.count) }
        for (t, tensor) in tensors.enumerated() {
            let parts = chunks.ranges.indices.filter { chunks.tensorOfChunk[$0] == t }.map { squares[$0] }
            #expect(perTensor[t] == parts.reduce(0, +), "tensor \(tensor)")
        }
    }

    /// Chunk sums computed apart (as owners on different hosts would, each from its own copy of
    /// its chunks) and added in chunk order give the one-pass norm's bits.
    @Test func ownersComputingChunksApartGiveTheSameNorm() {
        let tensors = [0..<50_000, 50_000..<50_100, 50_100..<70_000]
        let chunks = ParameterChunks(tensors: tensors, size: 4096)
        let g = values(70_000)
        let whole = g.withUnsafeBufferPointer { GradientClipping.chunkedNorm($0.baseAddress!, chunks: chunks) }
        for owners in [2, 3, 5] {
            var squares = [Double](repeating: .nan, count: chunks.count)
            for owner in 0..<owners {
                for c in chunks.ranges.indices where c % owners == owner {
                    let piece = Array(g[chunks.ranges[c]])  // the owner's copy, indexed from 0
                    squares[c] = piece.withUnsafeBufferPointer { GradientClipping.chunkSquares($0.baseAddress!, 0..<piece.count) }
                }
            }
            let combined = squares.withUnsafeBufferPointer { GradientClipping.combinedNorm($0) }
            #expect(combined.bitPattern == whole.bitPattern, "\(owners) owners")
        }
    }
}
