/// Conversions between fp32 and the 16-bit wire formats fp16 (IEEE binary16) and bf16.
///
/// Float → 16-bit rounds to nearest, ties to even; overflow goes to ±infinity; NaNs stay NaN
/// (quiet, sign kept); fp16 subnormals are produced and read exactly. Written with integer bit
/// operations so results do not depend on the CPU having F16C.
public enum HalfPrecision {
    /// fp16 bit pattern nearest to `value`.
    @inline(__always)
    public static func floatToHalf(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let magnitude = bits & 0x7FFF_FFFF
        if magnitude >= 0x7F80_0000 {  // infinity or NaN
            if magnitude == 0x7F80_0000 { return sign | 0x7C00 }
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: (magnitude >> 13) & 0x3FF)
        }
        if magnitude >= 0x477F_F000 { return sign | 0x7C00 }  // ≥ 65520 rounds past 65504
        if magnitude >= 0x3880_0000 {  // normal in fp16 (≥ 2^-14)
            // Rebias the exponent (127 → 15) and round the 13 dropped mantissa bits to even;
            // a carry out of the mantissa correctly bumps the exponent.
            let rebiased = magnitude &- 0x3800_0000
            let rounded = rebiased &+ 0x0FFF &+ ((rebiased >> 13) & 1)
            return sign | UInt16(truncatingIfNeeded: rounded >> 13)
        }
        // Subnormal or zero: adding 0.5 (whose ulp is 2^-24, the fp16 subnormal step) makes the
        // FPU round to a multiple of 2^-24, nearest-even; the low mantissa bits are then the
        // fp16 mantissa (1024 = 0x400 is the smallest normal, also correct).
        let shifted = Float(bitPattern: magnitude) + 0.5
        return sign | UInt16(truncatingIfNeeded: shifted.bitPattern &- 0x3F00_0000)
    }

    /// fp32 value of the fp16 bit pattern `half` (exact).
    @inline(__always)
    public static func halfToFloat(_ half: UInt16) -> Float {
        let sign = UInt32(half & 0x8000) << 16
        let exponent = UInt32(half >> 10) & 0x1F
        let mantissa = UInt32(half & 0x3FF)
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // Subnormal: mantissa · 2^-24, exact in fp32.
            return Float(bitPattern: sign | (Float(mantissa) * 0x1p-24).bitPattern)
        }
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// bf16 bit pattern nearest to `value`.
    @inline(__always)
    public static func floatToBFloat16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if bits & 0x7FFF_FFFF > 0x7F80_0000 {  // NaN: keep sign and top payload, force quiet
            return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// fp32 value of the bf16 bit pattern `bfloat` (exact).
    @inline(__always)
    public static func bfloat16ToFloat(_ bfloat: UInt16) -> Float {
        Float(bitPattern: UInt32(bfloat) << 16)
    }

    /// Converts `source` to fp16 bit patterns in `destination` (same length).
    public static func floatToHalf(_ source: UnsafeBufferPointer<Float>,
                                   into destination: UnsafeMutableBufferPointer<UInt16>) {
        precondition(source.count == destination.count, "floatToHalf: length mismatch")
        for index in 0..<source.count { destination[index] = floatToHalf(source[index]) }
    }

    /// Converts fp16 bit patterns in `source` to fp32 in `destination` (same length).
    public static func halfToFloat(_ source: UnsafeBufferPointer<UInt16>,
                                   into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(source.count == destination.count, "halfToFloat: length mismatch")
        for index in 0..<source.count { destination[index] = halfToFloat(source[index]) }
    }

    /// Converts `source` to bf16 bit patterns in `destination` (same length).
    public static func floatToBFloat16(_ source: UnsafeBufferPointer<Float>,
                                       into destination: UnsafeMutableBufferPointer<UInt16>) {
        precondition(source.count == destination.count, "floatToBFloat16: length mismatch")
        for index in 0..<source.count { destination[index] = floatToBFloat16(source[index]) }
    }

    /// Converts bf16 bit patterns in `source` to fp32 in `destination` (same length).
    public static func bfloat16ToFloat(_ source: UnsafeBufferPointer<UInt16>,
                                       into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(source.count == destination.count, "bfloat16ToFloat: length mismatch")
        for index in 0..<source.count { destination[index] = bfloat16ToFloat(source[index]) }
    }

    /// fp16 bit patterns of `values`.
    public static func floatToHalf(_ values: [Float]) -> [UInt16] {
        convert(values) { floatToHalf($0, into: $1) }
    }

    /// fp32 values of fp16 bit patterns.
    public static func halfToFloat(_ values: [UInt16]) -> [Float] {
        convert(values) { halfToFloat($0, into: $1) }
    }

    /// bf16 bit patterns of `values`.
    public static func floatToBFloat16(_ values: [Float]) -> [UInt16] {
        convert(values) { floatToBFloat16($0, into: $1) }
    }

    /// fp32 values of bf16 bit patterns.
    public static func bfloat16ToFloat(_ values: [UInt16]) -> [Float] {
        convert(values) { bfloat16ToFloat($0, into: $1) }
    }

    private static func convert<A, B>(
        _ values: [A], _ body: (UnsafeBufferPointer<A>, UnsafeMutableBufferPointer<B>) -> Void
    ) -> [B] {
        values.withUnsafeBufferPointer { source in
            [B](unsafeUninitializedCapacity: values.count) { destination, initialized in
                body(source, destination)
                initialized = values.count
            }
        }
    }
}
