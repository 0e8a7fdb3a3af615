extension Tape {
    /// Splits `shape` around `axis` into (outer, extent, inner) element counts.
    @inline(__always) func split(_ shape: [Int], _ axis: Int) -> (Int, Int, Int) {
        precondition(axis >= 0 && axis < shape.count, "axis \(axis) out of range for \(shape)")
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        return (outer, shape[axis], inner)
    }

    /// Σ over `axis`; the axis is removed from the shape.
    public func sum(_ a: Tensor, axis: Int) -> Tensor { reduceSum(a, axis: axis, scale: 1) }

    /// Mean over `axis`; the axis is removed from the shape.
    public func mean(_ a: Tensor, axis: Int) -> Tensor { reduceSum(a, axis: axis, scale: 1 / Float(Swift.max(a.shape[axis], 1))) }

    private func reduceSum(_ a: Tensor, axis: Int, scale: Float) -> Tensor {
        let (outer, extent, inner) = split(a.shape, axis)
        var shape = a.shape
        shape.remove(at: axis)
        let out = Tensor(zeros: shape)
        let x = a.data, y = out.data
        for o in 0..<outer {
            for e in 0..<extent {
                let source = x + (o * extent + e) * inner, target = y + o * inner
                for i in 0..<inner { target[i] += source[i] }
            }
            for i in 0..<inner { y[o * inner + i] *= scale }
        }
        record(out, [a]) {
            let g = out.gradientPointer(), ga = a.gradientPointer()
            for o in 0..<outer {
                for e in 0..<extent {
                    let target = ga + (o * extent + e) * inner, source = g + o * inner
                    for i in 0..<inner { target[i] += scale * source[i] }
                }
            }
        }
        return out
    }

    /// Σ of every element, as a one-element tensor of shape [].
    public func sumAll(_ a: Tensor) -> Tensor {
        let out = Tensor(zeros: [])
        var total: Float = 0
        let x = a.data
        for i in 0..<a.count { total += x[i] }
        out.data[0] = total
        record(out, [a]) {
            let g = out.gradientPointer()[0], ga = a.gradientPointer()
            for i in 0..<a.count { ga[i] += g }
        }
        return out
    }

    /// Mean of every element, as a one-element tensor of shape [].
    public func meanAll(_ a: Tensor) -> Tensor { scale(sumAll(a), by: 1 / Float(Swift.max(a.count, 1))) }

    /// Maximum over `axis` (the gradient goes to the first maximal element).
    public func max(_ a: Tensor, axis: Int) -> Tensor {
        let (outer, extent, inner) = split(a.shape, axis)
        var shape = a.shape
        shape.remove(at: axis)
        let out = Tensor(uninitialized: shape)
        var argmax = [Int](repeating: 0, count: outer * inner)
        let x = a.data, y = out.data
        for o in 0..<outer {
            for i in 0..<inner {
                var best = x[o * extent * inner + i], bestIndex = 0
                for e in 1..<Swift.max(extent, 1) {
                    let v = x[(o * extent + e) * inner + i]
                    if v > best { best = v; bestIndex = e }
                }
                y[o * inner + i] = best
                argmax[o * inner + i] = bestIndex
            }
        }
        record(out, [a]) {
            let g = out.gradientPointer(), ga = a.gradientPointer()
            for o in 0..<outer {
                for i in 0..<inner { ga[(o * extent + argmax[o * inner + i]) * inner + i] += g[o * inner + i] }
            }
        }
        return out
    }
}
