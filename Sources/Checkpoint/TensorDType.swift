/// The element types of the safetensors format, spelled as in its header.
public enum TensorDType: String, CaseIterable, Equatable, Sendable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }
}

/// A Swift type whose values are stored as one safetensors dtype, little-endian.
public protocol SafetensorsElement {
    /// The unsigned integer type of the same width.
    associatedtype Bits: FixedWidthInteger & UnsignedInteger
    /// The dtype this type is stored as.
    static var dtype: TensorDType { get }
    /// The value's bits, in host order.
    var storageBits: Bits { get }
    /// The value with these bits, in host order.
    init(storageBits: Bits)
}

extension Float: SafetensorsElement {
    public static var dtype: TensorDType { .f32 }
    public var storageBits: UInt32 { bitPattern }
    public init(storageBits: UInt32) { self.init(bitPattern: storageBits) }
}

extension Double: SafetensorsElement {
    public static var dtype: TensorDType { .f64 }
    public var storageBits: UInt64 { bitPattern }
    public init(storageBits: UInt64) { self.init(bitPattern: storageBits) }
}

extension Int64: SafetensorsElement {
    public static var dtype: TensorDType { .i64 }
    public var storageBits: UInt64 { UInt64(bitPattern: self) }
    public init(storageBits: UInt64) { self.init(bitPattern: storageBits) }
}

extension Int32: SafetensorsElement {
    public static var dtype: TensorDType { .i32 }
    public var storageBits: UInt32 { UInt32(bitPattern: self) }
    public init(storageBits: UInt32) { self.init(bitPattern: storageBits) }
}

extension UInt64: SafetensorsElement {
    public static var dtype: TensorDType { .u64 }
    public var storageBits: UInt64 { self }
    public init(storageBits: UInt64) { self = storageBits }
}

extension UInt8: SafetensorsElement {
    public static var dtype: TensorDType { .u8 }
    public var storageBits: UInt8 { self }
    public init(storageBits: UInt8) { self = storageBits }
}

/// The little-endian bytes of `values`.
func encodeLittleEndian<T: SafetensorsElement>(_ values: [T]) -> [UInt8] {
    let size = MemoryLayout<T.Bits>.size
    var bytes = [UInt8](repeating: 0, count: values.count * size)
    bytes.withUnsafeMutableBytes { raw in
        #if _endian(little)
        values.withUnsafeBytes { raw.copyMemory(from: $0) }
        #else
        for (i, value) in values.enumerated() {
            raw.storeBytes(of: value.storageBits.littleEndian, toByteOffset: i * size, as: T.Bits.self)
        }
        #endif
    }
    return bytes
}

/// Values decoded from little-endian `bytes` (whose count must be a multiple of the element size).
func decodeLittleEndian<T: SafetensorsElement>(_ bytes: ArraySlice<UInt8>, as: T.Type) -> [T] {
    let size = MemoryLayout<T.Bits>.size
    let count = bytes.count / size
    return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
        bytes.withUnsafeBytes { raw in
            for i in 0..<count {
                let bits = raw.loadUnaligned(fromByteOffset: i * size, as: T.Bits.self)
                buffer[i] = T(storageBits: T.Bits(littleEndian: bits))
            }
        }
        initialized = count
    }
}

/// The bytes a tensor of `shape` and `dtype` occupies, or nil when that overflows `Int`.
func byteCount(shape: [Int], dtype: TensorDType) -> Int? {
    var total = dtype.byteSize
    for dimension in shape {
        guard dimension >= 0 else { return nil }
        let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
        if overflow { return nil }
        total = product
    }
    return total
}
