extension Tape {
    /// The same elements with another shape (a view: no copy); the gradient flows back unchanged.
    public func reshape(_ a: Tensor, _ shape: [Int]) -> Tensor {
        precondition(shape.reduce(1, *) == a.count, "cannot reshape \(a.shape) to \(shape)")
        let out = Tensor(shape: shape, storage: a.storage, offset: a.offset)
        if isRecording && a.requiresGrad {
            // Share the gradient buffer too, so nothing needs copying on the way back.
            _ = a.gradientPointer()
            out.gradientStorage = a.gradientStorage
            out.gradientOffset = a.gradientOffset
            out.requiresGrad = true
        }
        return out
    }

    /// [batch, …] → [batch, features].
    public func flatten(_ a: Tensor) -> Tensor {
        let batch = a.shape.first ?? 1
        return reshape(a, [batch, a.count / Swift.max(batch, 1)])
    }

    /// Rows `indices` of a matrix-like tensor (dimension 0), in order; the backward pass
    /// scatter-adds into the selected rows (a row picked twice gets both gradients).
    public func gatherRows(_ a: Tensor, _ indices: [Int]) -> Tensor {
        let width = a.count / Swift.max(a.shape.first ?? 1, 1)
        var shape = a.shape
        shape[0] = indices.count
        let out = Tensor(uninitialized: shape)
        let x = a.data, y = out.data
        for (row, index) in indices.enumerated() {
            precondition(index >= 0 && index < a.shape[0], "gather index \(index) out of range 0..<\(a.shape[0])")
            (y + row * width).update(from: x + index * width, count: width)
        }
        record(out, [a]) {
            let g = out.gradientPointer(), ga = a.gradientPointer()
            for (row, index) in indices.enumerated() {
                let source = g + row * width, target = ga + index * width
                for j in 0..<width { target[j] += source[j] }
            }
        }
        return out
    }
}
