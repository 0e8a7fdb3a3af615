#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An owned, 64-byte aligned buffer of Float32 values that tensors view.
///
/// Storage is reference-counted (a class) so that views — parameter slices of one flat
/// parameter buffer, reshapes — share it without copying.
public final class TensorStorage {
    /// The first element.
    public let pointer: UnsafeMutablePointer<Float>
    /// Number of elements.
    public let count: Int

    /// Allocates `count` elements, zero-filled when `zeroed` (the default). Large buffers come
    /// from `BufferPool.shared` (page-aligned, reused across steps), small ones from malloc.
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative storage size")
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if bytes >= BufferPool.minimumBytes {
            pointer = BufferPool.shared.allocate(bytes: bytes, zeroed: zeroed).bindMemory(to: Float.self, capacity: max(count, 1))
        } else {
            var raw: UnsafeMutableRawPointer?
            guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory allocating \(bytes) bytes") }
            if zeroed { memset(raw, 0, bytes) }
            pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        }
        self.count = count
    }

    /// Allocates storage holding a copy of `values`.
    public convenience init(copying values: [Float]) {
        self.init(count: values.count, zeroed: false)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if bytes >= BufferPool.minimumBytes { BufferPool.shared.release(UnsafeMutableRawPointer(pointer), bytes: bytes) } else { free(pointer) }
    }
}

/// A row-major Float32 tensor: a shape and a view into a `TensorStorage`.
///
/// Tensors that take part in automatic differentiation carry `requiresGrad` and, after
/// `Tape.backward`, a gradient of the same shape in `gradient`.
public final class Tensor {
    /// Extent of each dimension, outermost first.
    public let shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int
    /// The storage this tensor views.
    public let storage: TensorStorage
    /// Offset of the first element within `storage`.
    public let offset: Int
    /// Whether gradients flow to this tensor.
    public var requiresGrad: Bool
    /// Gradient storage view, created on demand (zero-filled) during backward.
    public var gradientStorage: TensorStorage?
    /// Offset of the gradient within `gradientStorage`.
    public var gradientOffset: Int = 0

    /// A view of `storage` at `offset` with the given shape.
    public init(shape: [Int], storage: TensorStorage, offset: Int = 0, requiresGrad: Bool = false) {
        let count = shape.reduce(1, *)
        precondition(offset >= 0 && offset + count <= storage.count, "tensor view \(shape) at \(offset) exceeds storage of \(storage.count)")
        self.shape = shape
        self.count = count
        self.storage = storage
        self.offset = offset
        self.requiresGrad = requiresGrad
    }

    /// A new zero-filled tensor.
    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.init(shape: shape, storage: TensorStorage(count: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }

    /// A new tensor whose contents the caller will overwrite entirely.
    public convenience init(uninitialized shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(count: shape.reduce(1, *), zeroed: false))
    }

    /// A new tensor holding `values` (row-major) with the given shape.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values do not fill shape \(shape)")
        self.init(shape: shape, storage: TensorStorage(copying: values), requiresGrad: requiresGrad)
    }

    /// The first element.
    @inline(__always) public var data: UnsafeMutablePointer<Float> { storage.pointer + offset }

    /// The elements as an array (a copy).
    public var values: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// The single value of a one-element tensor.
    public var scalar: Float { precondition(count == 1); return data[0] }

    /// Number of rows when viewed as a matrix whose columns are the last dimension.
    @inline(__always) public var rows: Int { shape.count <= 1 ? 1 : count / max(shape[shape.count - 1], 1) }
    /// The last dimension (1 for a scalar).
    @inline(__always) public var columns: Int { shape.last ?? 1 }

    /// The gradient buffer, allocating a zeroed one when absent.
    @inline(__always) public func gradientPointer() -> UnsafeMutablePointer<Float> {
        if gradientStorage == nil {
            gradientStorage = TensorStorage(count: count)
            gradientOffset = 0
        }
        return gradientStorage!.pointer + gradientOffset
    }

    /// The gradient buffer for an op whose backward writes every element: when none exists yet
    /// (no contribution so far) a new, uninitialized one and `fresh` — write the values, don't add
    /// them, and skip the zero-fill `gradientPointer` would do (0 + x is x, so the bits are the
    /// same). Otherwise the existing buffer and `fresh == false`: add.
    @inline(__always) public func gradientForOverwrite() -> (pointer: UnsafeMutablePointer<Float>, fresh: Bool) {
        if gradientStorage == nil {
            gradientStorage = TensorStorage(count: count, zeroed: false)
            gradientOffset = 0
            return (gradientStorage!.pointer, true)
        }
        return (gradientStorage!.pointer + gradientOffset, false)
    }

    /// The gradient as an array, or nil before backward reached this tensor.
    public var gradient: [Float]? {
        guard let g = gradientStorage else { return nil }
        return Array(UnsafeBufferPointer(start: g.pointer + gradientOffset, count: count))
    }

    /// Drops the gradient (for tensors that own their gradient storage).
    public func clearGradient() { gradientStorage = nil }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = values.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(\(shape): [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
