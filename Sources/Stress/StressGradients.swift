import Cluster
import TensorCore
import WireProtocol

/// The synthetic gradients of `chorus stress`: a pure, cheap function of (seed, step, shard).
///
/// A base block of `blockLength` (65,536) fp32 values is drawn once from
/// `DeterministicRNG(key: [seed, 0x5354_5245_5353])`: uniform in ±[0.5, 1) scaled by 2^e,
/// e ∈ −6…6, so sums of them round and the order of addition matters. Element `i` of shard
/// `s`'s gradient at step `n` is
///
///     bits(g[i]) = base[(i mod L + r) mod L] XOR (mask ⊕ blockMix(i / L))
///
/// where `r` (a rotation) and `mask` (16 low mantissa bits, never zero) come from
/// `splitMix(seed, n, s)`. XOR on low mantissa bits keeps every value finite and normal, and
/// every element of every (step, shard) differs from the others', so a lost, duplicated, stale
/// or misrouted contribution changes every element of the aggregate. Generating a gradient is
/// two contiguous passes over a 256 KiB table per 64 Ki elements: memory speed, not RNG speed.
public struct StressGradients: Sendable {
    /// Length of the base block (a power of two).
    public static let blockLength = 1 << 16
    /// The run seed.
    public let seed: UInt64
    /// Elements per gradient (P).
    public let count: Int
    let base: [UInt32]

    /// Draws the base block for `seed`; gradients have `count` elements.
    public init(seed: UInt64, count: Int) {
        self.seed = seed
        self.count = count
        var rng = DeterministicRNG(key: [seed, 0x5354_5245_5353])
        base = (0..<StressGradients.blockLength).map { _ in
            let magnitude = 0.5 + 0.5 * rng.nextUnitFloat()
            let exponent = Int(rng.next() % 13) - 6
            let sign: Float = rng.next() & 1 == 0 ? 1 : -1
            return (sign * magnitude * Float(sign: .plus, exponent: exponent, significand: 1)).bitPattern
        }
    }

    /// A fingerprint of what this generator produces (seed, count, base block), for the join check.
    public var fingerprint: UInt64 {
        var hash = StressGradients.mix(seed ^ UInt64(count) &* 0x9E37_79B9_7F4A_7C15)
        for index in stride(from: 0, to: base.count, by: 997) { hash = StressGradients.mix(hash ^ UInt64(base[index])) }
        return hash
    }

    @inline(__always) static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Rotation and XOR mask of (step, shard).
    @inline(__always) func key(step: Int, shard: Int) -> (rotation: Int, mask: UInt32) {
        let h = StressGradients.mix(StressGradients.mix(seed ^ UInt64(step) &* 0xD6E8_FEB8_6659_FD93) ^ UInt64(shard) &* 0xA076_1D64_78BD_642F)
        return (Int(h & UInt64(StressGradients.blockLength - 1)), UInt32(truncatingIfNeeded: h >> 32) & 0xFFFF | 1)
    }

    @inline(__always) static func blockMask(_ mask: UInt32, block: Int) -> UInt32 {
        let mixed = (mask ^ ((UInt32(truncatingIfNeeded: block) &* 0x9E37_79B1) >> 16)) & 0xFFFF
        return mixed == 0 ? 1 : mixed
    }

    /// Writes elements `start ..< start + output.count` of (step, shard)'s gradient to `output`;
    /// `start` must be a multiple of `blockLength`.
    public func fill(step: Int, shard: Int, start: Int = 0, into output: UnsafeMutableBufferPointer<Float>) {
        precondition(start % StressGradients.blockLength == 0, "fill: start \(start) is not block-aligned")
        let (rotation, mask) = key(step: step, shard: shard)
        let length = StressGradients.blockLength
        base.withUnsafeBufferPointer { table in
            let source = table.baseAddress!
            let destination = UnsafeMutableRawPointer(output.baseAddress!).assumingMemoryBound(to: UInt32.self)
            var offset = 0
            while offset < output.count {
                let m = StressGradients.blockMask(mask, block: (start + offset) / length)
                let n = min(length, output.count - offset)
                let first = min(n, length - rotation)
                let out = destination + offset
                for j in 0..<first { out[j] = source[rotation + j] ^ m }
                if first < n {
                    let rest = out + first
                    for j in 0..<(n - first) { rest[j] = source[j] ^ m }
                }
                offset += n
            }
        }
    }

    /// The whole gradient of (step, shard) as a new array (tests and small P).
    public func gradient(step: Int, shard: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(step: step, shard: shard, into: buffer)
            initialized = count
        }
    }
}
