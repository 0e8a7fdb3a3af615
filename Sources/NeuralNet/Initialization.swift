import Config
import TensorCore

/// Fills a weight tensor by an initializer, PyTorch's conventions for fan-in and fan-out:
/// dense weight [out, in] has fanIn = in, fanOut = out; conv weight [F, C, kh, kw] has
/// fanIn = C·kh·kw, fanOut = F·kh·kw.
///
/// - He/Kaiming (He et al. 2015): uniform bound √(6/fanIn), normal std √(2/fanIn).
/// - Xavier/Glorot (Glorot & Bengio 2010): uniform bound √(6/(fanIn+fanOut)), normal std √(2/(fanIn+fanOut)).
/// - LeCun normal: std √(1/fanIn).
/// - Orthogonal (Saxe et al. 2014): the Q factor of a Gaussian matrix, sign-corrected.
public enum WeightInitialization {
    public static func fill(_ target: UnsafeMutablePointer<Float>, shape: [Int], initializer: Initializer, rng: inout DeterministicRNG) {
        let count = shape.reduce(1, *)
        let receptive = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        let fanIn = (shape.count > 1 ? shape[1] : shape[0]) * receptive
        let fanOut = shape[0] * receptive
        func uniform(_ bound: Float) { for i in 0..<count { target[i] = (rng.nextUnitFloat() * 2 - 1) * bound } }
        func normal(_ std: Float) { for i in 0..<count { target[i] = rng.nextNormal() * std } }
        switch initializer {
        case .zeros: target.update(repeating: 0, count: count)
        case .ones: target.update(repeating: 1, count: count)
        case .constant(let value): target.update(repeating: value, count: count)
        case .uniform(let limit): uniform(limit)
        case .normal(let std): normal(std)
        case .xavierUniform: uniform((6 / Float(fanIn + fanOut)).squareRoot())
        case .xavierNormal: normal((2 / Float(fanIn + fanOut)).squareRoot())
        case .heUniform: uniform((6 / Float(fanIn)).squareRoot())
        case .heNormal: normal((2 / Float(fanIn)).squareRoot())
        case .lecunNormal: normal((1 / Float(fanIn)).squareRoot())
        case .orthogonal: orthogonal(target, rows: shape[0], columns: count / max(shape[0], 1), rng: &rng)
        }
    }

    /// Orthonormal rows (or columns, whichever are fewer) by modified Gram–Schmidt in Float64.
    static func orthogonal(_ target: UnsafeMutablePointer<Float>, rows: Int, columns: Int, rng: inout DeterministicRNG) {
        let transposed = rows < columns
        let (n, m) = transposed ? (columns, rows) : (rows, columns)  // n ≥ m: orthonormalize m columns of length n
        var q = [[Double]](repeating: [], count: m)
        for j in 0..<m {
            var v = (0..<n).map { _ in Double(rng.nextNormal()) }
            for k in 0..<j {
                let dot = zip(v, q[k]).reduce(0) { $0 + $1.0 * $1.1 }
                for i in 0..<n { v[i] -= dot * q[k][i] }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            q[j] = v.map { $0 / max(norm, 1e-12) }
        }
        for r in 0..<rows {
            for c in 0..<columns {
                target[r * columns + c] = Float(transposed ? q[r][c] : q[c][r])
            }
        }
    }
}
