#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How two operand shapes broadcast: either equal, or one is a suffix of the other (a bias
/// row broadcast over rows, say), or one holds a single element.
struct Broadcast {
    let outputShape: [Int]
    let outer: Int   // repetitions of the smaller operand
    let inner: Int   // elements of the smaller operand
    let aIsSmall: Bool
    let bIsSmall: Bool

    init(_ a: [Int], _ b: [Int]) {
        let ac = a.reduce(1, *), bc = b.reduce(1, *)
        if a == b {
            outputShape = a; outer = 1; inner = ac; aIsSmall = false; bIsSmall = false
        } else if bc == 1 || (b.count <= a.count && Array(a.suffix(b.count)) == b) {
            outputShape = a; inner = bc; outer = ac / max(bc, 1); aIsSmall = false; bIsSmall = true
        } else if ac == 1 || (a.count <= b.count && Array(b.suffix(a.count)) == a) {
            outputShape = b; inner = ac; outer = bc / max(ac, 1); aIsSmall = true; bIsSmall = false
        } else {
            preconditionFailure("shapes \(a) and \(b) do not broadcast (one must be a suffix of the other)")
        }
    }
}

extension Tape {
    private enum Binary { case add, subtract, multiply, divide }

    private func binary(_ a: Tensor, _ b: Tensor, _ kind: Binary) -> Tensor {
        let plan = Broadcast(a.shape, b.shape)
        let out = Tensor(uninitialized: plan.outputShape)
        let pa = a.data, pb = b.data, po = out.data
        let outer = plan.outer, inner = plan.inner
        // Index helpers: the small operand repeats every `inner` elements.
        @inline(__always) func ia(_ o: Int, _ i: Int) -> Int { plan.aIsSmall ? i : o * inner + i }
        @inline(__always) func ib(_ o: Int, _ i: Int) -> Int { plan.bIsSmall ? i : o * inner + i }
        for o in 0..<outer {
            let base = o * inner
            switch kind {
            case .add: for i in 0..<inner { po[base + i] = pa[ia(o, i)] + pb[ib(o, i)] }
            case .subtract: for i in 0..<inner { po[base + i] = pa[ia(o, i)] - pb[ib(o, i)] }
            case .multiply: for i in 0..<inner { po[base + i] = pa[ia(o, i)] * pb[ib(o, i)] }
            case .divide: for i in 0..<inner { po[base + i] = pa[ia(o, i)] / pb[ib(o, i)] }
            }
        }
        record(out, [a, b]) {
            let g = out.gradientPointer()
            if a.requiresGrad {
                let ga = a.gradientPointer()
                for o in 0..<outer {
                    for i in 0..<inner {
                        let go = g[o * inner + i]
                        let d: Float
                        switch kind {
                        case .add, .subtract: d = go
                        case .multiply: d = go * pb[ib(o, i)]
                        case .divide: d = go / pb[ib(o, i)]
                        }
                        ga[ia(o, i)] += d
                    }
                }
            }
            if b.requiresGrad {
                let gb = b.gradientPointer()
                for o in 0..<outer {
                    for i in 0..<inner {
                        let go = g[o * inner + i]
                        let d: Float
                        switch kind {
                        case .add: d = go
                        case .subtract: d = -go
                        case .multiply: d = go * pa[ia(o, i)]
                        case .divide:
                            let y = pb[ib(o, i)]
                            d = -go * pa[ia(o, i)] / (y * y)
                        }
                        gb[ib(o, i)] += d
                    }
                }
            }
        }
        return out
    }

    /// a + b, with suffix broadcasting (a bias row added to every row, say).
    public func add(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .add) }
    /// a − b, with suffix broadcasting.
    public func subtract(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .subtract) }
    /// a ⊙ b (element-wise), with suffix broadcasting.
    public func multiply(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .multiply) }
    /// a ⊘ b (element-wise), with suffix broadcasting.
    public func divide(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .divide) }

    /// a · s for a constant scalar s.
    public func scale(_ a: Tensor, by s: Float) -> Tensor {
        unary(a, forward: { $0 * s }, derivative: { _, _ in s })
    }

    /// a + s for a constant scalar s.
    public func shift(_ a: Tensor, by s: Float) -> Tensor {
        unary(a, forward: { $0 + s }, derivative: { _, _ in 1 })
    }

    /// Applies `forward` element-wise; `derivative(x, y)` gives dy/dx from input and output.
    @inline(__always)
    func unary(_ a: Tensor, forward: (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        let x = a.data, y = out.data, n = a.count
        for i in 0..<n { y[i] = forward(x[i]) }
        record(out, [a]) {
            let g = out.gradientPointer(), ga = a.gradientPointer()
            for i in 0..<n { ga[i] += g[i] * derivative(x[i], y[i]) }
        }
        return out
    }

    /// eˣ element-wise.
    public func exp(_ a: Tensor) -> Tensor { unary(a, forward: { expf($0) }, derivative: { _, y in y }) }
    /// ln x element-wise.
    public func log(_ a: Tensor) -> Tensor { unary(a, forward: { logf($0) }, derivative: { x, _ in 1 / x }) }
    /// √x element-wise.
    public func sqrt(_ a: Tensor) -> Tensor { unary(a, forward: { sqrtf($0) }, derivative: { _, y in 0.5 / y }) }
}
