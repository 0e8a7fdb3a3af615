import Testing
@testable import TensorCore

@Suite struct ElementwiseGradients {
    @Test func addWithRowBroadcast() {
        checkGradients([randomTensor([3, 4], seed: 1), randomTensor([4], seed: 2)]) { t, x in t.add(x[0], x[1]) }
    }
    @Test func subtractSameShape() {
        checkGradients([randomTensor([2, 5], seed: 3), randomTensor([2, 5], seed: 4)]) { t, x in t.subtract(x[0], x[1]) }
    }
    @Test func subtractWithBroadcastOnTheLeft() {
        checkGradients([randomTensor([5], seed: 3), randomTensor([2, 5], seed: 4)]) { t, x in t.subtract(x[0], x[1]) }
    }
    @Test func multiplyWithScalarBroadcast() {
        checkGradients([randomTensor([3, 3], seed: 5), randomTensor([1], seed: 6)]) { t, x in t.multiply(x[0], x[1]) }
    }
    @Test func divideWithRowBroadcast() {
        checkGradients([randomTensor([3, 4], seed: 7), randomTensor([4], seed: 8, scale: 1, margin: 0.5)]) { t, x in t.divide(x[0], x[1]) }
    }
    @Test func expLogSqrt() {
        checkGradients([randomTensor([6], seed: 9)]) { t, x in t.exp(x[0]) }
        checkGradients([randomTensor([6], seed: 10, scale: 1, margin: 0.5)]) { t, x in t.log(t.multiply(x[0], x[0])) }
        checkGradients([randomTensor([6], seed: 11, scale: 1, margin: 0.5)]) { t, x in t.sqrt(t.multiply(x[0], x[0])) }
    }
    @Test func scaleAndShift() {
        checkGradients([randomTensor([4], seed: 12)]) { t, x in t.shift(t.scale(x[0], by: -3), by: 2) }
    }
    @Test func tensorUsedTwiceAccumulates() {
        checkGradients([randomTensor([4], seed: 13)]) { t, x in t.multiply(x[0], t.add(x[0], x[0])) }
    }
}

@Suite struct ActivationGradients {
    @Test func relu() { checkGradients([randomTensor([3, 5], seed: 20, margin: 0.05)]) { t, x in t.relu(x[0]) } }
    @Test func leakyRelu() { checkGradients([randomTensor([3, 5], seed: 21, margin: 0.05)]) { t, x in t.leakyRelu(x[0], alpha: 0.2) } }
    @Test func preluShared() {
        checkGradients([randomTensor([3, 4], seed: 22, margin: 0.05), Tensor([0.25], shape: [1])]) { t, x in t.prelu(x[0], alpha: x[1]) }
    }
    @Test func preluPerChannel() {
        checkGradients([randomTensor([2, 3, 2, 2], seed: 23, margin: 0.05), Tensor([0.1, 0.2, 0.3], shape: [3])]) { t, x in t.prelu(x[0], alpha: x[1]) }
    }
    @Test func tanh() { checkGradients([randomTensor([8], seed: 24, scale: 2)]) { t, x in t.tanh(x[0]) } }
    @Test func sigmoid() { checkGradients([randomTensor([8], seed: 25, scale: 4)]) { t, x in t.sigmoid(x[0]) } }
    @Test func gelu() { checkGradients([randomTensor([8], seed: 26, scale: 3)]) { t, x in t.gelu(x[0]) } }
    @Test func sigmoidIsStableForLargeInputs() {
        let tape = Tape(recording: false)
        let y = tape.sigmoid(Tensor([-1000, 1000, 0], shape: [3]))
        #expect(y.values == [0, 1, 0.5])
    }
}

@Suite struct ReductionGradients {
    @Test func sumOverEachAxis() {
        for axis in 0..<3 { checkGradients([randomTensor([2, 3, 4], seed: 30)]) { t, x in t.sum(x[0], axis: axis) } }
    }
    @Test func meanOverAxis() { checkGradients([randomTensor([3, 4], seed: 31)]) { t, x in t.mean(x[0], axis: 1) } }
    @Test func maxOverAxis() {
        // Distinct values: no ties, so max is differentiable at the sample point.
        let values: [Float] = [0.1, 0.9, -0.5, 0.4, 1.3, -1.1, 0.7, 0.2, -0.3, 0.55, 0.8, -0.9]
        checkGradients([Tensor(values, shape: [3, 4])]) { t, x in t.max(x[0], axis: 1) }
        checkGradients([Tensor(values, shape: [3, 4])]) { t, x in t.max(x[0], axis: 0) }
    }
    @Test func sumAllAndMeanAll() {
        checkGradients([randomTensor([3, 2], seed: 32)]) { t, x in t.sumAll(x[0]) }
        checkGradients([randomTensor([3, 2], seed: 33)]) { t, x in t.meanAll(x[0]) }
    }
    @Test func sumMatchesNaiveLoop() {
        let x = randomTensor([2, 3, 4], seed: 34)
        let y = Tape(recording: false).sum(x, axis: 1)
        for a in 0..<2 {
            for c in 0..<4 {
                var expected: Float = 0
                for b in 0..<3 { expected += x.data[(a * 3 + b) * 4 + c] }
                #expect(abs(y.data[a * 4 + c] - expected) < 1e-6)
            }
        }
    }
}

@Suite struct MatrixGradients {
    @Test func matmulAllTransposes() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomTensor(ta ? [4, 3] : [3, 4], seed: 40)
            let b = randomTensor(tb ? [5, 4] : [4, 5], seed: 41)
            checkGradients([a, b]) { t, x in t.matmul(x[0], x[1], transposeA: ta, transposeB: tb) }
        }
    }
    @Test func matmulMatchesNaiveProduct() {
        let a = randomTensor([3, 4], seed: 42), b = randomTensor([4, 2], seed: 43)
        let c = Tape(recording: false).matmul(a, b)
        for i in 0..<3 {
            for j in 0..<2 {
                var expected: Float = 0
                for k in 0..<4 { expected += a.data[i * 4 + k] * b.data[k * 2 + j] }
                #expect(abs(c.data[i * 2 + j] - expected) < 1e-5)
            }
        }
    }
    @Test func linearWithBias() {
        checkGradients([randomTensor([3, 4], seed: 44), randomTensor([5, 4], seed: 45), randomTensor([5], seed: 46)]) { t, x in
            t.linear(x[0], weight: x[1], bias: x[2])
        }
    }
    @Test func blasKernelAgreesWithNaiveLoops() {
        #expect(BLAS.verifyKernel() == nil)
    }
}

@Suite struct ShapeGradients {
    @Test func reshapeAndFlatten() {
        checkGradients([randomTensor([2, 3, 2], seed: 50)]) { t, x in t.multiply(t.flatten(x[0]), t.flatten(x[0])) }
    }
    @Test func gatherRowsWithRepeats() {
        checkGradients([randomTensor([4, 3], seed: 51)]) { t, x in t.gatherRows(x[0], [2, 0, 2]) }
    }
}

@Suite struct SoftmaxAndLossGradients {
    @Test func softmax() { checkGradients([randomTensor([3, 4], seed: 60, scale: 2)]) { t, x in t.softmax(x[0]) } }
    @Test func logSoftmax() { checkGradients([randomTensor([3, 4], seed: 61, scale: 2)]) { t, x in t.logSoftmax(x[0]) } }
    @Test func logSoftmaxIsStable() {
        let y = Tape(recording: false).logSoftmax(Tensor([1000, 0, -1000], shape: [1, 3]))
        #expect(abs(y.data[0]) < 1e-6 && abs(y.data[1] + 1000) < 1e-3 && y.data[2].isFinite)
    }
    @Test func crossEntropyFromLogits() {
        let labels: [Float] = [2, 0, 3]
        for reduction in [LossReduction.sum, .mean] {
            checkGradients([randomTensor([3, 4], seed: 62, scale: 2)]) { t, x in
                labels.withUnsafeBufferPointer { t.crossEntropy(logits: x[0], labels: $0.baseAddress!, reduction: reduction) }
            }
        }
    }
    @Test func crossEntropyMatchesLogSoftmax() {
        let logits = randomTensor([2, 3], seed: 63, scale: 3)
        let labels: [Float] = [1, 2]
        let tape = Tape(recording: false)
        let loss = labels.withUnsafeBufferPointer { tape.crossEntropy(logits: logits, labels: $0.baseAddress!, reduction: .mean) }
        let logp = tape.logSoftmax(logits)
        let expected = -(logp.data[1] + logp.data[3 + 2]) / 2
        #expect(abs(loss.scalar - expected) < 1e-5)
    }
    @Test func meanSquaredError() {
        let targets: [Float] = [0.5, -1, 2, 0, 1, 1]
        checkGradients([randomTensor([2, 3], seed: 64)]) { t, x in
            targets.withUnsafeBufferPointer { t.meanSquaredError(x[0], targets: $0.baseAddress!, reduction: .mean) }
        }
    }
    @Test func binaryCrossEntropyFromLogits() {
        let targets: [Float] = [1, 0, 1, 1, 0, 0]
        checkGradients([randomTensor([3, 2], seed: 65, scale: 3)]) { t, x in
            targets.withUnsafeBufferPointer { t.binaryCrossEntropy(logits: x[0], targets: $0.baseAddress!, reduction: .sum) }
        }
    }
}

@Suite struct ConvolutionGradients {
    @Test func conv2dValid() {
        checkGradients([randomTensor([2, 2, 5, 5], seed: 70), randomTensor([3, 2, 3, 3], seed: 71), randomTensor([3], seed: 72)]) { t, x in
            t.conv2d(x[0], weight: x[1], bias: x[2])
        }
    }
    @Test func conv2dSameStrideTwo() {
        checkGradients([randomTensor([1, 2, 5, 4], seed: 73), randomTensor([2, 2, 3, 3], seed: 74), randomTensor([2], seed: 75)]) { t, x in
            t.conv2d(x[0], weight: x[1], bias: x[2], stride: 2, same: true)
        }
    }
    @Test func conv2dMatchesNaiveLoops() {
        let x = randomTensor([1, 2, 4, 4], seed: 76), w = randomTensor([2, 2, 3, 3], seed: 77)
        let y = Tape(recording: false).conv2d(x, weight: w, bias: nil, stride: 1, same: true)
        #expect(y.shape == [1, 2, 4, 4])
        for f in 0..<2 {
            for i in 0..<4 {
                for j in 0..<4 {
                    var expected: Float = 0
                    for c in 0..<2 {
                        for ki in 0..<3 {
                            for kj in 0..<3 {
                                let ii = i + ki - 1, jj = j + kj - 1
                                if ii < 0 || ii >= 4 || jj < 0 || jj >= 4 { continue }
                                expected += x.data[(c * 4 + ii) * 4 + jj] * w.data[((f * 2 + c) * 3 + ki) * 3 + kj]
                            }
                        }
                    }
                    #expect(abs(y.data[(f * 4 + i) * 4 + j] - expected) < 1e-5)
                }
            }
        }
    }
    @Test func maxPool() {
        // A permutation of distinct values avoids ties inside a window.
        var rng = DeterministicRNG(78)
        let values = rng.permutation(2 * 2 * 4 * 4).map { Float($0) * 0.1 }
        checkGradients([Tensor(values, shape: [2, 2, 4, 4])]) { t, x in t.maxPool2d(x[0], size: 2, stride: 2) }
    }
    @Test func maxPoolWhoseWindowsDoNotTileTheInput() {
        // 5×5 with 2×2 windows: the last row and column belong to no window (a zero-filled
        // gradient), and 3×3 windows with stride 2 overlap (gradients add).
        var rng = DeterministicRNG(79)
        let values = rng.permutation(2 * 5 * 5).map { Float($0) * 0.1 }
        checkGradients([Tensor(values, shape: [1, 2, 5, 5])]) { t, x in t.maxPool2d(x[0], size: 2, stride: 2) }
        checkGradients([Tensor(values, shape: [1, 2, 5, 5])]) { t, x in t.maxPool2d(x[0], size: 3, stride: 2) }
    }
    @Test func aTensorUsedTwiceGetsBothGradientsWhenTheFirstWriteOverwrites() {
        // The first backward to reach x writes its gradient buffer (no zero-fill); the second adds.
        var rng = DeterministicRNG(80)
        let values = rng.permutation(2 * 4 * 4).map { Float($0) * 0.1 - 1.55 }
        checkGradients([Tensor(values, shape: [1, 2, 4, 4])]) { t, x in
            t.add(t.reshape(t.maxPool2d(x[0], size: 2, stride: 2), [1, 8]), t.reshape(t.maxPool2d(t.relu(x[0]), size: 2, stride: 2), [1, 8]))
        }
        checkGradients([randomTensor([2, 3], seed: 81, margin: 0.05), randomTensor([4, 3], seed: 82)]) { t, x in
            t.add(t.linear(t.relu(x[0]), weight: x[1], bias: nil), t.linear(x[0], weight: x[1], bias: nil))
        }
    }
    @Test func conv2dWithFusedReLUGivesTheBitsOfConvThenReLU() {
        for (stride, same, withBias) in [(1, true, true), (2, false, false), (1, false, true)] {
            let x = randomTensor([3, 2, 7, 6], seed: 83), w = randomTensor([4, 2, 3, 3], seed: 84), b = randomTensor([4], seed: 85)
            let upstream = randomTensor([3, 4, same ? 7 : (7 - 3) / stride + 1, same ? 6 : (6 - 3) / stride + 1], seed: 86)
            func run(fused: Bool) -> (out: [Float], dx: [Float], dw: [Float], db: [Float]) {
                for t in [x, w, b] { t.requiresGrad = true; t.clearGradient() }
                let tape = Tape()
                let out = fused
                    ? tape.conv2d(x, weight: w, bias: withBias ? b : nil, stride: stride, same: same, relu: true)
                    : tape.relu(tape.conv2d(x, weight: w, bias: withBias ? b : nil, stride: stride, same: same))
                #expect(out.shape == upstream.shape)
                let loss = tape.sumAll(tape.multiply(out, upstream))
                tape.backward(loss)
                return (out.values, x.gradient ?? [], w.gradient ?? [], b.gradient ?? [])
            }
            let fused = run(fused: true), separate = run(fused: false)
            #expect(fused.out.map(\.bitPattern) == separate.out.map(\.bitPattern))
            #expect(fused.dx.map(\.bitPattern) == separate.dx.map(\.bitPattern))
            #expect(fused.dw.map(\.bitPattern) == separate.dw.map(\.bitPattern))
            #expect(fused.db.map(\.bitPattern) == separate.db.map(\.bitPattern))
            #expect(fused.out.contains(0) && fused.out.contains { $0 > 0 }, "the ReLU clips some outputs and keeps others")
        }
        // (No finite-difference check of its own: outputs near the kink make it flaky; conv2d and
        // relu each have one, and the fused op is bit-equal to them.)
    }
}

@Suite struct NormalizationGradients {
    @Test func batchNormTrainingDense() {
        var stats: BatchStatistics?
        let zeros = [Float](repeating: 0, count: 3), ones = [Float](repeating: 1, count: 3)
        checkGradients([randomTensor([4, 3], seed: 80, scale: 2), Tensor([1, 0.5, 2], shape: [3]), Tensor([0, 0.1, -0.2], shape: [3])]) { t, x in
            t.batchNorm(x[0], gamma: x[1], beta: x[2], epsilon: 1e-5, training: true, runningMean: zeros, runningVariance: ones, statistics: &stats)
        }
    }
    @Test func batchNormTrainingConvolutional() {
        var stats: BatchStatistics?
        let zeros = [Float](repeating: 0, count: 2), ones = [Float](repeating: 1, count: 2)
        checkGradients([randomTensor([2, 2, 2, 3], seed: 81, scale: 2), Tensor([1, 0.5], shape: [2]), Tensor([0, 0.1], shape: [2])]) { t, x in
            t.batchNorm(x[0], gamma: x[1], beta: x[2], epsilon: 1e-5, training: true, runningMean: zeros, runningVariance: ones, statistics: &stats)
        }
    }
    @Test func batchNormStatistics() {
        var stats: BatchStatistics?
        let x = Tensor([1, 10, 2, 20, 3, 30, 4, 40], shape: [4, 2])
        _ = Tape(recording: false).batchNorm(x, gamma: Tensor([1, 1], shape: [2]), beta: Tensor([0, 0], shape: [2]), epsilon: 0,
                                             training: true, runningMean: [0, 0], runningVariance: [1, 1], statistics: &stats)
        #expect(stats?.mean == [2.5, 25])
        #expect(abs((stats?.unbiasedVariance[0] ?? 0) - 5.0 / 3.0) < 1e-6)
    }
    @Test func batchNormEvaluation() {
        var stats: BatchStatistics?
        checkGradients([randomTensor([3, 2], seed: 82), Tensor([1.5, 0.5], shape: [2]), Tensor([0.3, 0.1], shape: [2])]) { t, x in
            t.batchNorm(x[0], gamma: x[1], beta: x[2], epsilon: 1e-5, training: false, runningMean: [0.1, -0.2], runningVariance: [2, 0.5], statistics: &stats)
        }
    }
    @Test func dropoutMaskIsDeterministicAndScaled() {
        let x = Tensor([Float](repeating: 1, count: 1000), shape: [1000])
        var a = DeterministicRNG(5, 1, 2), b = DeterministicRNG(5, 1, 2)
        let tape = Tape(recording: false)
        let y1 = tape.dropout(x, rate: 0.25, rng: &a), y2 = tape.dropout(x, rate: 0.25, rng: &b)
        #expect(y1.values == y2.values)
        let kept = y1.values.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 4.0 / 3.0) < 1e-6 })
        #expect(kept.count > 700 && kept.count < 800)
    }
    @Test func dropoutGradient() {
        checkGradients([randomTensor([10], seed: 83)]) { t, x in
            var rng = DeterministicRNG(1)
            return t.dropout(x[0], rate: 0.5, rng: &rng)
        }
    }
}

/// im2col and its adjoint, checked element by element against the direct definition over many
/// geometries (the fast versions copy and add whole in-image runs of a row).
@Suite struct Im2colGeometry {
    static let cases: [(h: Int, w: Int, k: Int, stride: Int, same: Bool)] = [
        (5, 5, 3, 1, true), (5, 5, 3, 1, false), (7, 6, 3, 2, true), (7, 6, 3, 2, false), (4, 9, 5, 1, true),
        (4, 9, 5, 3, true), (3, 3, 5, 1, true), (8, 8, 1, 1, false), (8, 8, 2, 2, false), (6, 7, 4, 3, true), (2, 2, 3, 2, true),
    ]

    @Test(arguments: 0..<cases.count) func unfoldAndFoldMatchTheDefinition(_ index: Int) {
        let (h, w, k, stride, same) = Self.cases[index]
        let g = ConvolutionGeometry(inputHeight: h, inputWidth: w, kernelHeight: k, kernelWidth: k, stride: stride, same: same)
        guard g.outputHeight > 0, g.outputWidth > 0 else { return }
        let channels = 2, positions = g.outputHeight * g.outputWidth, rows = channels * k * k, rowStride = positions + 3
        let x = (0..<(channels * h * w)).map { Float($0) * 0.25 - 3 }
        var cols = [Float](repeating: .nan, count: rows * rowStride)
        x.withUnsafeBufferPointer { xs in cols.withUnsafeMutableBufferPointer { im2col(xs.baseAddress!, channels: channels, g, into: $0.baseAddress!, rowStride: rowStride) } }
        var folded = [Float](repeating: 0.5, count: x.count), expectedFold = folded
        for c in 0..<channels {
            for ki in 0..<k {
                for kj in 0..<k {
                    let row = (c * k + ki) * k + kj
                    for oi in 0..<g.outputHeight {
                        for oj in 0..<g.outputWidth {
                            let ii = oi * stride + ki - g.padTop, jj = oj * stride + kj - g.padLeft
                            let inside = ii >= 0 && ii < h && jj >= 0 && jj < w
                            let value = cols[row * rowStride + oi * g.outputWidth + oj]
                            #expect(value.bitPattern == (inside ? x[(c * h + ii) * w + jj] : 0).bitPattern, "row \(row) (\(oi), \(oj))")
                            if inside { expectedFold[(c * h + ii) * w + jj] += value }
                        }
                    }
                }
            }
        }
        cols.withUnsafeBufferPointer { cs in folded.withUnsafeMutableBufferPointer { col2imAdd(cs.baseAddress!, channels: channels, g, into: $0.baseAddress!, rowStride: rowStride) } }
        #expect(folded.map(\.bitPattern) == expectedFold.map(\.bitPattern))
    }
}
