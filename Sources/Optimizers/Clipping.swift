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

    /// Scales the first `count` values by `scale` in place and returns their global norm: the same
    /// bits as the scaling loop followed by ``globalNorm(_:count:)``, in one pass. When `tensors`
    /// (contiguous ranges from 0 to `count`) all start at multiples of 8 and all but the last
    /// hold a multiple of 8 values, it also writes each tensor's Σx² into `squares`, accumulated
    /// as eight Float lanes from the tensor's start then its tail in Double (the collapse
    /// monitor's `sumOfSquares`, bit for bit), and returns true in `fused`; otherwise `squares`
    /// is left alone.
    public static func scaleAndNorm(_ g: UnsafeMutablePointer<Float>, count: Int, scale: Float,
                                    tensors: [Range<Int>] = [], squares: UnsafeMutablePointer<Double>? = nil) -> (norm: Double, fused: Bool) {
        let aligned = squares != nil && !tensors.isEmpty && tensors.first?.lowerBound == 0 && tensors.last?.upperBound == count
            && tensors.indices.allSatisfy { tensors[$0].lowerBound % 8 == 0 && ($0 == tensors.count - 1 || tensors[$0].count % 8 == 0) }
            && zip(tensors, tensors.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }
        let raw = UnsafeMutableRawPointer(g)
        let s8 = SIMD8<Float>(repeating: scale)
        var lanes = SIMD8<Double>(), i = 0
        guard aligned, let squares else {
            while i + 8 <= count {
                let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * s8
                raw.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
                let x = SIMD8<Double>(v)
                lanes += x * x
                i += 8
            }
            var total = lanes.sum()
            while i < count { g[i] *= scale; let x = Double(g[i]); total += x * x; i += 1 }
            return (total.squareRoot(), false)
        }
        var total = 0.0
        for (t, range) in tensors.enumerated() {
            var acc = SIMD8<Float>()
            i = range.lowerBound
            while i + 8 <= range.upperBound {
                let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * s8
                raw.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
                let x = SIMD8<Double>(v)
                lanes += x * x
                acc += v * v
                i += 8
            }
            var own = Double(acc.sum())
            if i < range.upperBound {
                // Only the last tensor has a tail: the global tail comes after every lane.
                total = lanes.sum()
                while i < range.upperBound { g[i] *= scale; let x = g[i]; total += Double(x) * Double(x); own += Double(x * x); i += 1 }
            }
            squares[t] = own
        }
        if tensors.last.map({ $0.count % 8 == 0 }) ?? true { total = lanes.sum() }
        return (total.squareRoot(), true)
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
