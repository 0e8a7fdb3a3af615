/// A small, fast, seedable random number generator (xoshiro256**, Blackman & Vigna 2018),
/// keyed by a tuple of integers so that every random stream in a run is a pure function of
/// its key: `(seed, epoch)` for shuffling, `(seed, step, shard)` for dropout masks, and so on.
public struct DeterministicRNG: RandomNumberGenerator {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Creates the stream for `key` (for example `[seed, epoch]`); equal keys give equal streams.
    public init(key: [UInt64]) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for part in key { state = DeterministicRNG.splitMix(state ^ DeterministicRNG.splitMix(part &+ 0x632B_E59B_D9B4_E019)) }
        var x = state
        s0 = DeterministicRNG.splitMixNext(&x); s1 = DeterministicRNG.splitMixNext(&x)
        s2 = DeterministicRNG.splitMixNext(&x); s3 = DeterministicRNG.splitMixNext(&x)
    }

    /// Convenience: `DeterministicRNG(seed, 3, 7)`.
    public init(_ key: UInt64...) { self.init(key: key) }

    @inline(__always) static func splitMix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) static func splitMixNext(_ state: inout UInt64) -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        return splitMix(state &- 0x9E37_79B9_7F4A_7C15)
    }

    @inline(__always) public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A uniform Float in [0, 1) with 24 random bits.
    @inline(__always) public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A uniform Double in [0, 1) with 53 random bits.
    @inline(__always) public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A standard normal sample (Box–Muller; one of the pair is discarded for simplicity).
    public mutating func nextNormal() -> Float {
        var u1 = nextUnitDouble()
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = nextUnitDouble()
        return Float((-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2))
    }

    /// A uniform integer in `0..<bound` (Lemire's nearly-divisionless method via multiply-high).
    @inline(__always) public mutating func nextIndex(below bound: Int) -> Int {
        Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// The Fisher–Yates permutation of `0..<count` drawn from this stream.
    public mutating func permutation(_ count: Int) -> [Int] {
        var result = Array(0..<count)
        if count < 2 { return result }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = nextIndex(below: i + 1)
            result.swapAt(i, j)
        }
        return result
    }
}

@inline(__always) func _log(_ x: Double) -> Double { Foundation_log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Foundation_cos(x) }
