/// Geometry of a 2-D convolution or pooling window over [N, C, H, W] inputs.
public struct ConvolutionGeometry: Equatable, Sendable {
    public let kernelHeight: Int, kernelWidth: Int, stride: Int
    public let padTop: Int, padLeft: Int
    public let inputHeight: Int, inputWidth: Int
    public let outputHeight: Int, outputWidth: Int

    /// `same` padding follows TensorFlow: the output is ⌈input / stride⌉, with the padding
    /// split evenly and any odd pixel on the bottom/right (with stride 1 and an odd kernel
    /// this equals PyTorch's `padding="same"`). `valid` pads nothing.
    public init(inputHeight: Int, inputWidth: Int, kernelHeight: Int, kernelWidth: Int, stride: Int, same: Bool) {
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth; self.stride = stride
        self.inputHeight = inputHeight; self.inputWidth = inputWidth
        if same {
            let oh = (inputHeight + stride - 1) / stride, ow = (inputWidth + stride - 1) / stride
            let padH = Swift.max((oh - 1) * stride + kernelHeight - inputHeight, 0)
            let padW = Swift.max((ow - 1) * stride + kernelWidth - inputWidth, 0)
            padTop = padH / 2; padLeft = padW / 2
            outputHeight = oh; outputWidth = ow
        } else {
            padTop = 0; padLeft = 0
            outputHeight = (inputHeight - kernelHeight) / stride + 1
            outputWidth = (inputWidth - kernelWidth) / stride + 1
        }
    }
}

extension Tape {
    /// 2-D convolution (cross-correlation, as PyTorch): x [N, C, H, W], weight [F, C, kh, kw],
    /// bias [F] → [N, F, Ho, Wo]. The whole batch is unfolded (im2col) into one
    /// [C·kh·kw, N·Ho·Wo] matrix and multiplied by the weight matrix [F, C·kh·kw] with a single
    /// SGEMM; the result is then laid out per example. Backward uses two more SGEMMs
    /// (dW = dY·colsᵀ, dcols = Wᵀ·dY) and folds dcols back (col2im).
    ///
    /// `relu: true` fuses max(·, 0) into the pass that lays the product out per example (with the
    /// bias), and its mask into the pass that lays the gradient back: the same bits as
    /// `relu(conv2d(…))` without the second tensor and its two passes.
    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, same: Bool = false, relu: Bool = false) -> Tensor {
        precondition(x.shape.count == 4 && weight.shape.count == 4 && x.shape[1] == weight.shape[1],
                     "conv2d: input \(x.shape) does not match weight \(weight.shape)")
        let n = x.shape[0], c = x.shape[1], filters = weight.shape[0]
        let geometry = ConvolutionGeometry(inputHeight: x.shape[2], inputWidth: x.shape[3],
                                           kernelHeight: weight.shape[2], kernelWidth: weight.shape[3], stride: stride, same: same)
        precondition(geometry.outputHeight > 0 && geometry.outputWidth > 0, "conv2d: kernel larger than input \(x.shape)")
        let patch = c * geometry.kernelHeight * geometry.kernelWidth
        let positions = geometry.outputHeight * geometry.outputWidth
        let width = n * positions  // columns of the batched matrices
        let inputPlane = c * geometry.inputHeight * geometry.inputWidth
        let columns = TensorStorage(count: patch * width, zeroed: false)
        for example in 0..<n {
            im2col(x.data + example * inputPlane, channels: c, geometry, into: columns.pointer + example * positions, rowStride: width)
        }
        // Y' [F, N·P] = W [F, patch] · cols [patch, N·P], then Y[n, f, :] = Y'[f, n·P ..< (n+1)·P] + b[f].
        let product = TensorStorage(count: filters * width, zeroed: false)
        BLAS.gemm(transposeA: false, transposeB: false, m: filters, n: width, k: patch,
                  a: weight.data, lda: patch, b: columns.pointer, ldb: width, c: product.pointer, ldc: width)
        let out = Tensor(uninitialized: [n, filters, geometry.outputHeight, geometry.outputWidth])
        for example in 0..<n {
            for f in 0..<filters {
                let target = out.data + (example * filters + f) * positions
                let source = product.pointer + f * width + example * positions
                if relu {
                    biasReLU(source, bias?.data[f] ?? 0, target, positions)
                } else if let bias {
                    let b = bias.data[f]
                    for p in 0..<positions { target[p] = source[p] + b }
                } else {
                    target.update(from: source, count: positions)
                }
            }
        }
        var inputs = [x, weight]
        if let bias { inputs.append(bias) }
        record(out, inputs) {
            let g = out.gradientPointer()
            // dY' [F, N·P]: the output gradient in the batched layout (reusing `product`).
            let gy = product.pointer
            for example in 0..<n {
                for f in 0..<filters {
                    let plane = (example * filters + f) * positions
                    if relu {
                        Tape.reluBackward(out.data + plane, g + plane, gy + f * width + example * positions, positions, add: false)
                    } else {
                        (gy + f * width + example * positions).update(from: g + plane, count: positions)
                    }
                }
            }
            if weight.requiresGrad {
                BLAS.gemm(transposeA: false, transposeB: true, m: filters, n: patch, k: width,
                          a: gy, lda: width, b: columns.pointer, ldb: width, beta: 1, c: weight.gradientPointer(), ldc: patch)
            }
            if let bias, bias.requiresGrad {
                let gb = bias.gradientPointer()
                for f in 0..<filters { gb[f] += laneSum(gy + f * width, width) }
            }
            if x.requiresGrad {
                // dcols [patch, N·P] = Wᵀ · dY' (reusing `columns`), folded back per example.
                BLAS.gemm(transposeA: true, transposeB: false, m: patch, n: width, k: filters,
                          a: weight.data, lda: patch, b: gy, ldb: width, c: columns.pointer, ldc: width)
                let gx = x.gradientPointer()
                for example in 0..<n {
                    col2imAdd(columns.pointer + example * positions, channels: c, geometry, into: gx + example * inputPlane, rowStride: width)
                }
            }
        }
        return out
    }

    /// Max pooling over `size`×`size` windows moved by `stride` (no padding): [N, C, H, W] →
    /// [N, C, Ho, Wo]; the gradient goes to the first maximal element of each window.
    public func maxPool2d(_ x: Tensor, size: Int, stride: Int) -> Tensor {
        precondition(x.shape.count == 4, "maxPool2d takes [N, C, H, W], got \(x.shape)")
        let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
        let oh = (h - size) / stride + 1, ow = (w - size) / stride + 1
        precondition(oh > 0 && ow > 0, "maxPool2d: window \(size) larger than input \(x.shape)")
        let out = Tensor(uninitialized: [x.shape[0], x.shape[1], oh, ow])
        var argmax = [Int32](repeating: 0, count: out.count)
        let input = x.data, output = out.data
        argmax.withUnsafeMutableBufferPointer { best in
            if size == 2 && stride == 2 {
                // The common 2×2 window, unrolled: the same comparisons in the same order.
                for plane in 0..<planes {
                    let source = input + plane * h * w
                    for i in 0..<oh {
                        let top = 2 * i * w, o = (plane * oh + i) * ow
                        for j in 0..<ow {
                            let first = top + 2 * j
                            var bestValue = -Float.infinity, bestIndex = first
                            // (The literal is promoted to the stack and unrolled: measured faster than four
                            // written-out comparisons or an offset loop.)
                            for index in [first, first + 1, first + w, first + w + 1] where source[index] > bestValue {
                                bestValue = source[index]; bestIndex = index
                            }
                            output[o + j] = bestValue
                            best[o + j] = Int32(bestIndex)
                        }
                    }
                }
                return
            }
            for plane in 0..<planes {
                let source = input + plane * h * w
                for i in 0..<oh {
                    for j in 0..<ow {
                        var bestValue = -Float.infinity, bestIndex = (i * stride) * w + j * stride
                        for di in 0..<size {
                            let row = (i * stride + di) * w + j * stride
                            for dj in 0..<size where source[row + dj] > bestValue {
                                bestValue = source[row + dj]; bestIndex = row + dj
                            }
                        }
                        let o = (plane * oh + i) * ow + j
                        output[o] = bestValue
                        best[o] = Int32(bestIndex)
                    }
                }
            }
        }
        record(out, [x]) {
            let g = out.gradientPointer()
            let (gx, fresh) = x.gradientForOverwrite()
            if fresh && stride == size && h == oh * size && w == ow * size {
                // The windows tile the input: every element is written once, 0 + g at each
                // window's maximum and 0 elsewhere (no zero-fill first; the same bits).
                argmax.withUnsafeBufferPointer { best in
                    for plane in 0..<planes {
                        let target = gx + plane * h * w
                        for i in 0..<oh {
                            for di in 0..<size { (target + (i * size + di) * w).update(repeating: 0, count: w) }
                            for j in 0..<ow {
                                let o = (plane * oh + i) * ow + j
                                target[Int(best[o])] = 0 + g[o]
                            }
                        }
                    }
                }
                return
            }
            if fresh { gx.update(repeating: 0, count: x.count) }
            argmax.withUnsafeBufferPointer { best in
                for plane in 0..<planes {
                    for k in 0..<(oh * ow) {
                        let o = plane * oh * ow + k
                        gx[plane * h * w + Int(best[o])] += g[o]
                    }
                }
            }
        }
        return out
    }
}

/// target[i] += source[i] for i < n, eight at a time (element-wise: the same bits as the scalar
/// loop, which the compiler cannot vectorize while the two pointers might overlap).
@inline(__always)
func addInto(_ target: UnsafeMutablePointer<Float>, _ source: UnsafePointer<Float>, _ n: Int) {
    let from = UnsafeRawPointer(source), to = UnsafeMutableRawPointer(target)
    var i = 0
    while i + 8 <= n {
        let sum = to.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) + from.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        to.storeBytes(of: sum, toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { target[i] += source[i]; i += 1 }
}

/// Σ x[0..<n] in 32 lanes (four vectors of eight, added in a fixed order: reproducible), then
/// the tail. A plain loop is one dependent add per element (the compiler keeps its order): on
/// the CNN's 100,352-column rows the bias gradients took about a tenth of a step.
@inline(__always)
func laneSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    let raw = UnsafeRawPointer(x)
    var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
    var i = 0
    while i + 32 <= n {
        a += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        b += raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
        c += raw.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD8<Float>.self)
        d += raw.loadUnaligned(fromByteOffset: (i + 24) * 4, as: SIMD8<Float>.self)
        i += 32
    }
    var total = ((a + b) + (c + d)).sum()
    while i < n { total += x[i]; i += 1 }
    return total
}

/// target = max(source + bias, 0), eight lanes at a time; NaN passes through. With bias 0 it is
/// `Tape.relu`'s forward pass bit for bit (x + 0 is x except −0, which max(·, 0) makes +0 anyway).
@inline(__always)
func biasReLU(_ source: UnsafePointer<Float>, _ bias: Float, _ target: UnsafeMutablePointer<Float>, _ count: Int) {
    let zero = SIMD8<Float>(), b = SIMD8<Float>(repeating: bias)
    let raw = UnsafeRawPointer(source), out = UnsafeMutableRawPointer(target)
    var p = 0
    while p + 8 <= count {
        let v = raw.loadUnaligned(fromByteOffset: p * 4, as: SIMD8<Float>.self) + b
        out.storeBytes(of: v.replacing(with: zero, where: v .<= zero), toByteOffset: p * 4, as: SIMD8<Float>.self)
        p += 8
    }
    while p < count { let v = source[p] + bias; target[p] = v <= 0 ? 0 : v; p += 1 }
}

/// The output columns `oj` whose input column `oj·stride + kj − padLeft` lies inside the image.
@inline(__always)
func validColumns(_ g: ConvolutionGeometry, kj: Int) -> Range<Int> {
    let offset = kj - g.padLeft  // jj = oj·stride + offset must be in 0..<inputWidth
    let low = offset >= 0 ? 0 : (-offset + g.stride - 1) / g.stride
    let high = g.inputWidth - 1 - offset < 0 ? 0 : (g.inputWidth - 1 - offset) / g.stride + 1
    return Swift.min(low, g.outputWidth)..<Swift.max(Swift.min(high, g.outputWidth), Swift.min(low, g.outputWidth))
}

/// Unfolds one example [C, H, W] into columns [C·kh·kw, Ho·Wo] (zero outside the image), whose
/// rows lie `rowStride` elements apart (the batch's columns are side by side).
@inline(__always)
func im2col(_ x: UnsafePointer<Float>, channels: Int, _ g: ConvolutionGeometry, into cols: UnsafeMutablePointer<Float>, rowStride: Int) {
    var row = 0
    for c in 0..<channels {
        let plane = x + c * g.inputHeight * g.inputWidth
        for ki in 0..<g.kernelHeight {
            for kj in 0..<g.kernelWidth {
                let target = cols + row * rowStride
                let valid = validColumns(g, kj: kj), offset = kj - g.padLeft
                for oi in 0..<g.outputHeight {
                    let ii = oi * g.stride + ki - g.padTop
                    let line = target + oi * g.outputWidth
                    if ii < 0 || ii >= g.inputHeight {
                        line.update(repeating: 0, count: g.outputWidth)
                        continue
                    }
                    // Zero margins, the image in between (a straight copy with stride 1).
                    line.update(repeating: 0, count: valid.lowerBound)
                    (line + valid.upperBound).update(repeating: 0, count: g.outputWidth - valid.upperBound)
                    let source = plane + ii * g.inputWidth + offset
                    if g.stride == 1 {
                        (line + valid.lowerBound).update(from: source + valid.lowerBound, count: valid.count)
                    } else {
                        for oj in valid { line[oj] = source[oj * g.stride] }
                    }
                }
                row += 1
            }
        }
    }
}

/// The adjoint of `im2col`: adds columns back into the image positions they came from.
@inline(__always)
func col2imAdd(_ cols: UnsafePointer<Float>, channels: Int, _ g: ConvolutionGeometry, into x: UnsafeMutablePointer<Float>, rowStride: Int) {
    var row = 0
    for c in 0..<channels {
        let plane = x + c * g.inputHeight * g.inputWidth
        for ki in 0..<g.kernelHeight {
            for kj in 0..<g.kernelWidth {
                let source = cols + row * rowStride
                let valid = validColumns(g, kj: kj), offset = kj - g.padLeft
                for oi in 0..<g.outputHeight {
                    let ii = oi * g.stride + ki - g.padTop
                    if ii < 0 || ii >= g.inputHeight { continue }
                    // Same additions in the same order as element by element: each target
                    // element gets its terms in (c, ki, kj, oi) order.
                    let target = plane + ii * g.inputWidth + offset, line = source + oi * g.outputWidth
                    if g.stride == 1 {
                        addInto(target + valid.lowerBound, line + valid.lowerBound, valid.count)
                    } else {
                        for oj in valid { target[oj * g.stride] += line[oj] }
                    }
                }
                row += 1
            }
        }
    }
}
