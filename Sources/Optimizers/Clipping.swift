/// What gradient clipping did in one step.
public struct ClipReport: Equatable, Sendable {
    /// Global L2 norm of the gradient before clipping (NaN/Inf when the gradient holds them).
    public var normBeforeClipping: Double
    /// Whether any scaling or clamping changed the gradient.
    public var clipped: Bool
}

/// Gradient clipping, applied once to the averaged gradient.
public enum GradientClipping {
    /// The global L2 norm, accumulated in Float64 in index order (deterministic): eight Float64
    /// lanes in a fixed order, fast and reproducible (``chunkSquares(_:_:)`` over the whole vector).
    public static func globalNorm(_ g: UnsafePointer<Float>, count: Int) -> Double {
        chunkSquares(g, 0..<count).squareRoot()
    }

    /// Scales the first `count` values by `scale` in place and measures the clipping norm chunk by
    /// chunk (see ``ParameterChunks``): `squares[c]` gets chunk c's Σx² (eight Float64 lanes from
    /// the chunk's start, summed, then its tail), and the global norm is the square root of those
    /// sums added in chunk order. So the norm is a function of the chunks' sums alone, whoever
    /// computed each chunk; `chunks` must cover `0..<count` in order.
    public static func scaleAndChunkSquares(_ g: UnsafeMutablePointer<Float>, count: Int, scale: Float, chunks: ParameterChunks,
                                            squares: UnsafeMutablePointer<Double>) -> Double {
        precondition(chunks.ranges.first?.lowerBound ?? 0 == 0 && chunks.ranges.last?.upperBound ?? 0 == count,
                     "GradientClipping: chunks cover \(chunks.ranges.first?.lowerBound ?? 0)..<\(chunks.ranges.last?.upperBound ?? 0), not 0..<\(count)")
        let raw = UnsafeMutableRawPointer(g)
        let s8 = SIMD8<Float>(repeating: scale)
        for (c, range) in chunks.ranges.enumerated() {
            var lanes = SIMD8<Double>(), i = range.lowerBound
            while i + 8 <= range.upperBound {
                let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * s8
                raw.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
                let x = SIMD8<Double>(v)
                lanes += x * x
                i += 8
            }
            var total = lanes.sum()
            while i < range.upperBound { g[i] *= scale; let x = Double(g[i]); total += x * x; i += 1 }
            squares[c] = total
        }
        return combinedNorm(UnsafeBufferPointer(start: squares, count: chunks.ranges.count))
    }

    /// Σx² of one chunk, as ``scaleAndChunkSquares(_:count:scale:chunks:squares:)`` measures it (scale 1).
    public static func chunkSquares(_ g: UnsafePointer<Float>, _ range: Range<Int>) -> Double {
        var lanes = SIMD8<Double>(), i = range.lowerBound
        let raw = UnsafeRawPointer(g)
        while i + 8 <= range.upperBound {
            let x = SIMD8<Double>(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            lanes += x * x
            i += 8
        }
        var total = lanes.sum()
        while i < range.upperBound { let x = Double(g[i]); total += x * x; i += 1 }
        return total
    }

    /// The global norm from each chunk's Σx², added in chunk order.
    public static func combinedNorm(_ squares: UnsafeBufferPointer<Double>) -> Double {
        var total = 0.0
        for value in squares { total += value }
        return total.squareRoot()
    }

    /// The clipping norm of `g` over `chunks` (no scaling): what a step's update clips by.
    public static func chunkedNorm(_ g: UnsafePointer<Float>, chunks: ParameterChunks) -> Double {
        let squares = chunks.ranges.map { chunkSquares(g, $0) }
        return squares.withUnsafeBufferPointer { combinedNorm($0) }
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

/// The flat parameter vector cut into chunks fixed by the model alone: each tensor, in order, in
/// pieces of `size` values (the last piece of a tensor shorter). The clipping norm is summed per
/// chunk and the chunks' sums added in chunk order, so the same chunk sums give the same norm
/// bits wherever they were computed.
public struct ParameterChunks: Equatable, Sendable {
    /// Values per chunk at most (64 KiB of Float).
    public static let defaultSize = 16_384
    /// The chunks, contiguous and in order.
    public let ranges: [Range<Int>]
    /// The tensor each chunk belongs to (an index into the tensor ranges it was made from).
    public let tensorOfChunk: [Int]

    /// Chunks of `tensors` (contiguous ranges in order).
    public init(tensors: [Range<Int>], size: Int = ParameterChunks.defaultSize) {
        precondition(size > 0, "ParameterChunks: size must be positive")
        var ranges: [Range<Int>] = [], owners: [Int] = []
        for (t, tensor) in tensors.enumerated() {
            var start = tensor.lowerBound
            while start < tensor.upperBound {
                let end = min(start + size, tensor.upperBound)
                ranges.append(start..<end); owners.append(t)
                start = end
            }
        }
        self.ranges = ranges
        tensorOfChunk = owners
    }

    public var count: Int { ranges.count }

    /// Chunks of a whole contribution: the parameter tensors' chunks, then chunks of the
    /// `contributionCount − parameterCount` values after them (batch-norm statistics).
    public static func ofContribution(tensors: [Range<Int>], contributionCount: Int, size: Int = ParameterChunks.defaultSize) -> ParameterChunks {
        let end = tensors.last?.upperBound ?? 0
        return ParameterChunks(tensors: end < contributionCount ? tensors + [end..<contributionCount] : tensors, size: size)
    }

    /// Each tensor's Σx² from its chunks' (added in chunk order), for `tensorCount` tensors.
    public func tensorSquares(_ chunkSquares: UnsafeBufferPointer<Double>, tensorCount: Int) -> [Double] {
        var totals = [Double](repeating: 0, count: tensorCount)
        for (c, t) in tensorOfChunk.enumerated() { totals[t] += chunkSquares[c] }
        return totals
    }
}
