import TensorCore

/// One named tensor inside a flat parameter buffer.
public struct ParameterEntry: Equatable, Sendable {
    /// Checkpoint name, e.g. `layers.0.weight` or `layers.2.running_mean`.
    public let name: String
    /// Shape, in PyTorch's layout (dense weight [out, in]; conv weight [out, in, kh, kw]).
    public let shape: [Int]
    /// Offset of the first element in the flat buffer.
    public let offset: Int
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// Every trainable parameter of a model in one contiguous Float32 buffer, with a gradient
/// buffer of the same layout.
///
/// One flat buffer makes the distributed path simple and fast: a shard's gradient is a
/// single payload, aggregation is one loop, the optimizer walks one array, and
/// `params_sha256` hashes the bytes in order. Layers get views (`tensor(_:)`) whose gradients
/// alias the flat gradient buffer, so backward accumulates straight into it.
public final class ParameterStore {
    /// The tensors, in registration (checkpoint) order.
    public private(set) var entries: [ParameterEntry] = []
    /// Total element count.
    public private(set) var count = 0
    /// Each tensor's range of the flat buffer, in order.
    public var tensorRanges: [Range<Int>] { entries.map { $0.offset..<($0.offset + $0.count) } }
    /// Values; allocated by `allocate()`.
    public private(set) var values = TensorStorage(count: 0)
    /// Gradients; allocated by `allocate()`.
    public private(set) var gradients = TensorStorage(count: 0)
    private var views: [Tensor] = []
    private var allocated = false

    public init() {}

    /// Registers a tensor before allocation and returns its index.
    public func register(name: String, shape: [Int]) -> Int {
        precondition(!allocated, "register parameters before allocate()")
        entries.append(ParameterEntry(name: name, shape: shape, offset: count))
        count += shape.reduce(1, *)
        return entries.count - 1
    }

    /// Allocates zeroed value and gradient buffers and the per-entry views.
    public func allocate() {
        values = TensorStorage(count: count)
        gradients = TensorStorage(count: count)
        views = entries.map { entry in
            let view = Tensor(shape: entry.shape, storage: values, offset: entry.offset, requiresGrad: true)
            view.gradientStorage = gradients
            view.gradientOffset = entry.offset
            return view
        }
        allocated = true
    }

    /// The view of entry `index` (its gradient aliases the flat gradient buffer).
    @inline(__always) public func tensor(_ index: Int) -> Tensor { views[index] }

    /// Zeroes the gradient buffer.
    public func zeroGradients() { gradients.pointer.update(repeating: 0, count: count) }

    /// The values as an array (a copy).
    public var valueArray: [Float] { Array(UnsafeBufferPointer(start: values.pointer, count: count)) }

    /// Replaces all values (count must match).
    public func load(_ source: UnsafePointer<Float>) { values.pointer.update(from: source, count: count) }
}
