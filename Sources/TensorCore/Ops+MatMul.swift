extension Tape {
    /// op(a) · op(b) for matrices, op(x) = xᵀ when the flag is set; transposes are BLAS
    /// flags, never copies. Backward: dA = dC·op(B)ᵀ, dB = op(A)ᵀ·dC (mapped back through the
    /// transposes).
    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(a.shape.count == 2 && b.shape.count == 2, "matmul takes matrices, got \(a.shape) and \(b.shape)")
        let m = transposeA ? a.shape[1] : a.shape[0]
        let k = transposeA ? a.shape[0] : a.shape[1]
        let kb = transposeB ? b.shape[1] : b.shape[0]
        let n = transposeB ? b.shape[0] : b.shape[1]
        precondition(k == kb, "matmul inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let out = Tensor(uninitialized: [m, n])
        BLAS.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                  a: a.data, lda: a.shape[1], b: b.data, ldb: b.shape[1], c: out.data, ldc: n)
        record(out, [a, b]) {
            let g = out.gradientPointer()
            if a.requiresGrad {
                // A is m×k (or k×m when transposed): dA = g·op(B)ᵀ, or (g·op(B)ᵀ)ᵀ = op(B)·gᵀ.
                if transposeA {
                    BLAS.gemm(transposeA: transposeB, transposeB: true, m: k, n: m, k: n,
                              a: b.data, lda: b.shape[1], b: g, ldb: n, beta: 1, c: a.gradientPointer(), ldc: m)
                } else {
                    BLAS.gemm(transposeA: false, transposeB: !transposeB, m: m, n: k, k: n,
                              a: g, lda: n, b: b.data, ldb: b.shape[1], beta: 1, c: a.gradientPointer(), ldc: k)
                }
            }
            if b.requiresGrad {
                // B is k×n (or n×k): dB = op(A)ᵀ·g, or gᵀ·op(A).
                if transposeB {
                    BLAS.gemm(transposeA: true, transposeB: transposeA, m: n, n: k, k: m,
                              a: g, lda: n, b: a.data, ldb: a.shape[1], beta: 1, c: b.gradientPointer(), ldc: k)
                } else {
                    BLAS.gemm(transposeA: !transposeA, transposeB: false, m: k, n: n, k: m,
                              a: a.data, lda: a.shape[1], b: g, ldb: n, beta: 1, c: b.gradientPointer(), ldc: n)
                }
            }
        }
        return out
    }

    /// The affine map x·Wᵀ + b of a dense layer, fused: W is [out, in] (PyTorch's layout), b is
    /// [out] or nil; x is [batch, in]. The input gradient is skipped when x needs none (the
    /// first layer), which saves a third of its backward work.
    public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(x.shape.count == 2 && weight.shape.count == 2 && x.shape[1] == weight.shape[1],
                     "linear: input \(x.shape) does not match weight \(weight.shape)")
        let batch = x.shape[0], inputs = x.shape[1], outputs = weight.shape[0]
        let out = Tensor(uninitialized: [batch, outputs])
        let y = out.data
        var beta: Float = 0
        if let bias {
            let pb = bias.data
            for r in 0..<batch { (y + r * outputs).update(from: pb, count: outputs) }
            beta = 1
        }
        BLAS.gemm(transposeA: false, transposeB: true, m: batch, n: outputs, k: inputs,
                  a: x.data, lda: inputs, b: weight.data, ldb: inputs, beta: beta, c: y, ldc: outputs)
        var inputs_ = [x, weight]
        if let bias { inputs_.append(bias) }
        record(out, inputs_) {
            let g = out.gradientPointer()
            if weight.requiresGrad {
                // dW[out, in] += gᵀ[out, batch] · x[batch, in]
                BLAS.gemm(transposeA: true, transposeB: false, m: outputs, n: inputs, k: batch,
                          a: g, lda: outputs, b: x.data, ldb: inputs, beta: 1, c: weight.gradientPointer(), ldc: inputs)
            }
            if let bias, bias.requiresGrad {
                let gb = bias.gradientPointer()
                for r in 0..<batch {
                    let row = g + r * outputs
                    for j in 0..<outputs { gb[j] += row[j] }
                }
            }
            if x.requiresGrad {
                // dx[batch, in] += g[batch, out] · W[out, in] (= on a new gradient buffer: no zero-fill)
                let (gx, fresh) = x.gradientForOverwrite()
                BLAS.gemm(transposeA: false, transposeB: false, m: batch, n: inputs, k: outputs,
                          a: g, lda: outputs, b: weight.data, ldb: inputs, beta: fresh ? 0 : 1, c: gx, ldc: inputs)
            }
        }
        return out
    }
}
