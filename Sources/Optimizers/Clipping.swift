/// What gradient clipping did in one step.
public struct ClipReport: Equatable, Sendable {
    /// Global L2 norm of the gradient before clipping (NaN/Inf when the gradient holds them).
    public var normBeforeClipping: Double
    /// Whether any scaling or clamping changed the gradient.
    public var clipped: Bool
}

/// Gradient clipping, applied once to the averaged gradient.
public enum GradientClipping {
    /// The global L2 norm, accumulated in Float64 in index order (deterministic).
    public static func globalNorm(_ g: UnsafePointer<Float>, count: Int) -> Double {
        // Eight Float64 lanes in a fixed order: fast and reproducible.
        var lanes = SIMD8<Double>(), i = 0
        let raw = UnsafeRawPointer(g)
        while i + 8 <= count {
            let x = SIMD8<Double>(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            lanes += x * x
            i += 8
        }
        var total = lanes.sum()
        while i < count { let x = Double(g[i]); total += x * x; i += 1 }
        return total.squareRoot()
    }

    /// PyTorch `clip_grad_norm_`: scales every gradient by clip/(norm + 1e-6) when that is below 1.
    public static func clipGlobalNorm(_ g: UnsafeMutablePointer<Float>, count: Int, maxNorm: Float, norm: Double) -> Bool {
        let coefficient = Double(maxNorm) / (norm + 1e-6)
        guard coefficient < 1 else { return false }
        let c = Float(coefficient)
        for i in 0..<count { g[i] *= c }
        return true
    }

    /// Keras `clipnorm`: each tensor (a range of the flat buffer) is scaled to L2 norm ≤ maxNorm.
    public static func clipPerTensorNorm(_ g: UnsafeMutablePointer<Float>, ranges: [Range<Int>], maxNorm: Float) -> Bool {
        var any = false
        for range in ranges {
            let norm = globalNorm(g + range.lowerBound, count: range.count)
            if norm > Double(maxNorm) {
                let c = Float(Double(maxNorm) / norm)
                for i in range { g[i] *= c }
                any = true
            }
        }
        return any
    }

    /// Clamps every gradient element to [−limit, limit] (PyTorch `clip_grad_value_`).
    public static func clipValue(_ g: UnsafeMutablePointer<Float>, count: Int, limit: Float) -> Bool {
        var any = false
        for i in 0..<count {
            if g[i] > limit { g[i] = limit; any = true } else if g[i] < -limit { g[i] = -limit; any = true }
        }
        return any
    }
}
