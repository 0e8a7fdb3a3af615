/// A named Float32 tensor: the usual content of a checkpoint (parameters, optimizer moments).
public struct NamedTensor: Equatable, Sendable {
    /// The name in the file, e.g. `layers.0.weight`.
    public var name: String
    /// The dimensions, outermost first (PyTorch layout: dense weight `[out, in]`).
    public var shape: [Int]
    /// The elements in row-major order; `values.count` equals the product of `shape`.
    public var values: [Float]

    /// Creates a named Float32 tensor.
    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// A named tensor of any safetensors dtype, held as its little-endian bytes.
public struct StoredTensor: Equatable, Sendable {
    /// The name in the file.
    public var name: String
    /// The element type.
    public var dtype: TensorDType
    /// The dimensions, outermost first; `[]` is a scalar.
    public var shape: [Int]
    /// The raw little-endian data, `elementCount · dtype.byteSize` bytes.
    public var bytes: [UInt8]

    /// Creates a tensor from raw little-endian bytes.
    public init(name: String, dtype: TensorDType, shape: [Int], bytes: [UInt8]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Creates a tensor from typed values (`Float` → F32, `Double` → F64, `Int64` → I64, `UInt8` → U8, ...).
    public init<T: SafetensorsElement>(name: String, shape: [Int], values: [T]) {
        self.init(name: name, dtype: T.dtype, shape: shape, bytes: encodeLittleEndian(values))
    }

    /// Creates an F32 tensor from a `NamedTensor`.
    public init(_ tensor: NamedTensor) {
        self.init(name: tensor.name, shape: tensor.shape, values: tensor.values)
    }

    /// The number of elements: the product of `shape` (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }

    /// The elements decoded as `T`; throws when the tensor's dtype is not `T.dtype`.
    public func values<T: SafetensorsElement>(as type: T.Type, file: String = "") throws -> [T] {
        guard dtype == T.dtype else {
            throw CheckpointError.dtypeMismatch(path: file, tensor: name, expected: T.dtype.rawValue, actual: dtype.rawValue)
        }
        return decodeLittleEndian(bytes[...], as: T.self)
    }

    /// This tensor as a `NamedTensor`; throws unless it is F32.
    public func namedTensor(file: String = "") throws -> NamedTensor {
        NamedTensor(name: name, shape: shape, values: try values(as: Float.self, file: file))
    }
}
