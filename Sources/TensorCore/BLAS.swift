import CBLAS

/// Matrix products through OpenBLAS's CBLAS, and facts about the kernel the library runs.
public enum BLAS {
    /// C = alpha · op(A) · op(B) + beta · C, row-major; op(X) is Xᵀ when the flag is set.
    /// `m`×`k` is op(A)'s shape, `k`×`n` op(B)'s; `lda`, `ldb`, `ldc` are the row strides
    /// of A, B and C as stored.
    @inline(__always)
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS leaves C scaled by beta; do the same explicitly.
            // (beta 0 writes zeros: C may be an uninitialized buffer, as BLAS allows.)
            for row in 0..<m { for column in 0..<n { c[row * ldc + column] = beta == 0 ? 0 : c[row * ldc + column] * beta } }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The name of the kernel OpenBLAS picked for this CPU (for example "Prescott", "SkylakeX").
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Sets the number of threads OpenBLAS uses (Chorus uses 1 per process).
    public static func setThreads(_ count: Int) { openblas_set_num_threads(Int32(count)) }

    /// The number of threads OpenBLAS uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Checks the live kernel against a naive triple loop on shapes that exercise edge tiles;
    /// returns the largest relative error (nil when every product agrees within `tolerance`).
    public static func verifyKernel(tolerance: Float = 1e-4) -> Float? {
        var rng = DeterministicRNG(0xB1A5)
        var worst: Float = 0
        for (m, n, k) in [(1, 1, 1), (7, 5, 3), (33, 17, 65), (64, 128, 96), (130, 10, 257)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = (0..<(m * k)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                let b = (0..<(k * n)).map { _ in rng.nextUnitFloat() * 2 - 1 }
                var c = [Float](repeating: 0.5, count: m * n)
                var reference = [Double](repeating: 0, count: m * n)
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0
                        for p in 0..<k {
                            let x = ta ? a[p * m + i] : a[i * k + p]
                            let y = tb ? b[j * k + p] : b[p * n + j]
                            sum += Double(x) * Double(y)
                        }
                        reference[i * n + j] = 2 * sum + 0.25 * 0.5
                    }
                }
                a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        c.withUnsafeMutableBufferPointer { pc in
                            gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 2,
                                 a: pa.baseAddress!, lda: ta ? m : k, b: pb.baseAddress!, ldb: tb ? k : n,
                                 beta: 0.25, c: pc.baseAddress!, ldc: n)
                        }
                    }
                }
                for index in 0..<(m * n) {
                    let error = Float(abs(Double(c[index]) - reference[index]) / max(1, abs(reference[index])))
                    if !(error <= worst) { worst = error.isNaN ? .infinity : error }
                }
            }
        }
        return worst <= tolerance ? nil : worst
    }
}
