/// The element type of a tensor on the wire.
///
/// Gradients may travel as fp16 or bf16 to halve the bytes; parameters always travel as fp32.
public enum WireDType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// IEEE 754 binary32.
    case fp32 = 0
    /// IEEE 754 binary16 (5-bit exponent, 10-bit mantissa; largest finite 65504).
    case fp16 = 1
    /// bfloat16: the top 16 bits of an fp32 (8-bit exponent, 7-bit mantissa).
    case bf16 = 2

    /// Bytes per element.
    public var byteWidth: Int { self == .fp32 ? 4 : 2 }

    /// The name used in configs and logs: `fp32`, `fp16`, `bf16`.
    public var description: String {
        switch self {
        case .fp32: return "fp32"
        case .fp16: return "fp16"
        case .bf16: return "bf16"
        }
    }
}

extension PayloadBuffer {
    /// A new payload holding `values` encoded as `dtype` (round to nearest, ties to even).
    public static func encoding(_ values: UnsafeBufferPointer<Float>, as dtype: WireDType) -> PayloadBuffer {
        let payload = PayloadBuffer(byteCount: values.count * dtype.byteWidth)
        switch dtype {
        case .fp32:
            if let source = values.baseAddress, values.count > 0 {
                payload.baseAddress.copyMemory(from: source, byteCount: values.count * 4)
            }
        case .fp16:
            HalfPrecision.floatToHalf(values, into: payload.mutableUInt16)
        case .bf16:
            HalfPrecision.floatToBFloat16(values, into: payload.mutableUInt16)
        }
        return payload
    }

    /// A new payload holding `values` encoded as `dtype`.
    public static func encoding(_ values: [Float], as dtype: WireDType) -> PayloadBuffer {
        values.withUnsafeBufferPointer { encoding($0, as: dtype) }
    }

    /// Number of elements when the payload is read as `dtype`.
    public func elementCount(as dtype: WireDType) -> Int { byteCount / dtype.byteWidth }

    /// Decodes the payload, read as `dtype`, into `destination` (exactly `elementCount(as:)` long).
    public func decode(as dtype: WireDType, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count == elementCount(as: dtype),
                     "decode: destination holds \(destination.count) floats, payload \(elementCount(as: dtype))")
        switch dtype {
        case .fp32:
            if destination.count > 0 {
                UnsafeMutableRawPointer(destination.baseAddress!)
                    .copyMemory(from: baseAddress, byteCount: destination.count * 4)
            }
        case .fp16:
            HalfPrecision.halfToFloat(asUInt16, into: destination)
        case .bf16:
            HalfPrecision.bfloat16ToFloat(asUInt16, into: destination)
        }
    }

    /// The payload, read as `dtype`, as a new fp32 array.
    public func decodedFloats(as dtype: WireDType) -> [Float] {
        [Float](unsafeUninitializedCapacity: elementCount(as: dtype)) { buffer, initialized in
            decode(as: dtype, into: buffer)
            initialized = buffer.count
        }
    }

    var mutableUInt16: UnsafeMutableBufferPointer<UInt16> {
        UnsafeMutableBufferPointer(mutating: asUInt16)
    }
}
