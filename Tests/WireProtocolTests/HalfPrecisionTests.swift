import Testing
@testable import WireProtocol
import struct TensorCore.DeterministicRNG

@Suite struct HalfPrecisionTests {
    @Test(arguments: [
        (Float(1.0), UInt16(0x3C00)), (-2.0, 0xC000), (0.5, 0x3800), (65504, 0x7BFF),
        (65519.99, 0x7BFF),            // just below the halfway point to 65536: stays finite
        (65520, 0x7C00),               // tie between 65504 (odd mantissa) and 65536: to even → ∞
        (1e6, 0x7C00), (-.infinity, 0xFC00), (0, 0x0000), (-0.0, 0x8000),
        (0x1p-14, 0x0400),             // smallest normal
        (0x1p-24, 0x0001),             // smallest subnormal
        (0x1p-25, 0x0000),             // tie between 0 and 2^-24: to even → 0
        (0x1.8p-24, 0x0002),           // tie between 1 and 2 subnormal steps → 2
        (0x1.4p-23, 0x0002),           // 2.5 steps: tie between 2 and 3 → 2
        (0x1.ffcp-15, 0x0400),         // 1023.5 steps: tie between 1023 and 1024 → 1024 (normal)
        (1 + 0x1p-11, 0x3C00),         // tie between 0x3C00 and 0x3C01 → even 0x3C00
        (1 + 0x1.8p-10, 0x3C02),       // tie between 0x3C01 and 0x3C02 → even 0x3C02
        (1 + 0x1.1p-11, 0x3C01),       // just above the tie → up
        (0.1, 0x2E66),                 // 0.0999755859375
    ] as [(Float, UInt16)])
    func floatToHalfHandComputed(value: Float, expected: UInt16) {
        #expect(HalfPrecision.floatToHalf(value) == expected)
    }

    @Test func nanStaysQuietNaNWithItsSign() {
        #expect(HalfPrecision.floatToHalf(.nan) == 0x7E00)
        #expect(HalfPrecision.floatToHalf(-Float.nan) == 0xFE00)
        #expect(HalfPrecision.halfToFloat(0x7E00).isNaN)
        #expect(HalfPrecision.halfToFloat(0x7C01).isNaN)
        #expect(HalfPrecision.floatToBFloat16(Float(bitPattern: 0x7F80_0001)) & 0x7FC0 == 0x7FC0)
        #expect(HalfPrecision.bfloat16ToFloat(0x7FC0).isNaN)
    }

    @Test func halfToFloatHandComputed() {
        #expect(HalfPrecision.halfToFloat(0x3C00) == 1)
        #expect(HalfPrecision.halfToFloat(0x7BFF) == 65504)
        #expect(HalfPrecision.halfToFloat(0x0001) == 0x1p-24)
        #expect(HalfPrecision.halfToFloat(0x03FF) == 1023 * 0x1p-24)
        #expect(HalfPrecision.halfToFloat(0x8000).sign == .minus)
        #expect(HalfPrecision.halfToFloat(0x7C00) == .infinity)
    }

    @Test func everyHalfRoundTripsExactly() {
        for bits in 0...UInt16.max {
            let value = HalfPrecision.halfToFloat(bits)
            if value.isNaN { continue }
            #expect(HalfPrecision.floatToHalf(value) == bits)
        }
    }

    #if !(os(macOS) && arch(x86_64))
    @Test func agreesWithTheStandardLibraryFloat16() {
        // Swift's Float16 conversion (compiler-rt __truncsfhf2 or F16C) as independent reference.
        for bits in 0...UInt16.max where !Float16(bitPattern: bits).isNaN {
            #expect(HalfPrecision.halfToFloat(bits) == Float(Float16(bitPattern: bits)))
        }
        var rng = DeterministicRNG(12345)
        for _ in 0..<200_000 {
            let value = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            if value.isNaN { continue }
            #expect(HalfPrecision.floatToHalf(value) == Float16(value).bitPattern, "value \(value)")
        }
    }
    #endif

    @Test(arguments: [
        (Float(1.0), UInt16(0x3F80)), (-2.0, 0xC000), (0, 0), (.infinity, 0x7F80),
        (1 + 0x1p-8, 0x3F80),          // tie → even
        (1 + 0x1.8p-7, 0x3F82),        // tie between 0x3F81 and 0x3F82 → even
        (1 + 0x1.01p-8, 0x3F81),       // just above the tie → up
        (.greatestFiniteMagnitude, 0x7F80),  // rounds past the largest bf16 → ∞
        (0x1p-140, 0x0000 | UInt16(Float(0x1p-140).bitPattern >> 16)),  // fp32 subnormal keeps its top bits
    ] as [(Float, UInt16)])
    func floatToBFloat16HandComputed(value: Float, expected: UInt16) {
        #expect(HalfPrecision.floatToBFloat16(value) == expected)
    }

    @Test func bfloat16RoundsToNearestAgainstADoubleReference() {
        var rng = DeterministicRNG(777)
        for _ in 0..<100_000 {
            let bits = UInt32(truncatingIfNeeded: rng.next())
            let value = Float(bitPattern: bits)
            guard value.isFinite, abs(value) < 0x1p127 else { continue }
            let low = UInt16(bits >> 16)
            let high = low &+ 1
            let dLow = abs(Double(value) - Double(HalfPrecision.bfloat16ToFloat(low)))
            let dHigh = abs(Double(value) - Double(HalfPrecision.bfloat16ToFloat(high)))
            let expected = dLow < dHigh ? low : dHigh < dLow ? high : (low & 1 == 0 ? low : high)
            #expect(HalfPrecision.floatToBFloat16(value) == expected)
        }
    }

    @Test func bulkConversionsMatchScalarOnes() {
        let values = MessageFixtures.floats(1000, seed: 9) + [65504, 1e-7, -0.0]
        #expect(HalfPrecision.floatToHalf(values) == values.map { HalfPrecision.floatToHalf($0) })
        #expect(HalfPrecision.floatToBFloat16(values) == values.map { HalfPrecision.floatToBFloat16($0) })
        let halves = HalfPrecision.floatToHalf(values)
        #expect(HalfPrecision.halfToFloat(halves) == halves.map { HalfPrecision.halfToFloat($0) })
    }

    @Test(arguments: WireDType.allCases)
    func payloadEncodingDecodesToTheRoundedValues(dtype: WireDType) {
        let values = MessageFixtures.floats(513, seed: 4)
        let payload = PayloadBuffer.encoding(values, as: dtype)
        #expect(payload.byteCount == values.count * dtype.byteWidth)
        let expected: [Float]
        switch dtype {
        case .fp32: expected = values
        case .fp16: expected = values.map { HalfPrecision.halfToFloat(HalfPrecision.floatToHalf($0)) }
        case .bf16: expected = values.map { HalfPrecision.bfloat16ToFloat(HalfPrecision.floatToBFloat16($0)) }
        }
        #expect(payload.decodedFloats(as: dtype) == expected)
    }
}
