import Cluster
import Config
import Coordination
import NeuralNet
import Optimizers

extension ParameterChunks {
    /// The chunks of `model`'s whole contribution: its parameter tensors', then its batch-norm
    /// statistics' (what an agent sends and the coordinator sums, `--chunk-owners`).
    static func ofContribution(_ model: Model) -> ParameterChunks {
        .ofContribution(tensors: model.parameters.tensorRanges, contributionCount: model.contributionCount)
    }

    /// How many of the chunks hold parameters (they come first).
    func parameterChunkCount(_ model: Model) -> Int { ranges.prefix { $0.upperBound <= model.parameters.count }.count }
}

/// Which owner holds which parameter chunk (issue 12, `--chunk-owners`): at the start chunk c
/// belongs to `owners[c mod H]`, the owners in ascending id order; when an owner goes, only its
/// chunks move, dealt in turn to the survivors (so only their optimizer state has to be
/// restored). The chunks are fixed by the model (``ParameterChunks``); only this table depends
/// on the cluster, and the sums and updates do not depend on it at all, so any table gives the
/// same bits.
public struct ChunkOwnership: Equatable, Sendable {
    /// Owner ids, ascending, without repeats.
    public let owners: [UInt32]
    /// The owner of each chunk.
    public let ownerOfChunk: [UInt32]

    public init(owners: [UInt32], chunkCount: Int) {
        precondition(!owners.isEmpty, "ChunkOwnership: no owners")
        let sorted = Array(Set(owners)).sorted()
        self.owners = sorted
        ownerOfChunk = (0..<chunkCount).map { sorted[$0 % sorted.count] }
    }

    /// A table as a coordinator sent it: `ownerOfChunk[c]` among `owners`.
    public init(owners: [UInt32], ownerOfChunk: [UInt32]) {
        self.owners = Array(Set(owners)).sorted()
        self.ownerOfChunk = ownerOfChunk
    }

    public var chunkCount: Int { ownerOfChunk.count }

    public func owner(ofChunk chunk: Int) -> UInt32 { ownerOfChunk[chunk] }

    /// The chunks `owner` holds, ascending (none when it is not an owner).
    public func chunks(ownedBy owner: UInt32) -> [Int] { ownerOfChunk.indices.filter { ownerOfChunk[$0] == owner } }

    /// The table after `owner` is gone: its chunks, in order, dealt to the survivors in turn;
    /// the others stay where they are. Nil when it was the last owner.
    public func removing(_ owner: UInt32) -> ChunkOwnership? {
        let rest = owners.filter { $0 != owner }
        guard !rest.isEmpty else { return nil }
        var table = ownerOfChunk, dealt = 0
        for chunk in table.indices where table[chunk] == owner {
            table[chunk] = rest[dealt % rest.count]
            dealt += 1
        }
        return ChunkOwnership(owners: rest, ownerOfChunk: table)
    }
}

/// Why an owner refused a piece (a message from a confused or hostile peer: the step goes on
/// without it, and the piece is asked for again or recomputed).
public enum ChunkPieceError: Error, Equatable, CustomStringConvertible {
    case notOwned(chunk: Int)
    case badLength(chunk: Int, got: Int, expected: Int)
    case notANode(shards: Range<Int>, shardCount: Int)
    case duplicate(chunk: Int, shards: Range<Int>)
    case wrongStep(got: Int, expected: Int)

    public var description: String {
        switch self {
        case .notOwned(let chunk): return "chunk \(chunk) is not owned here"
        case .badLength(let chunk, let got, let expected): return "chunk \(chunk): \(got) values, expected \(expected)"
        case .notANode(let shards, let count): return "shards \(shards) are not a node of the \(count)-shard tree"
        case .duplicate(let chunk, let shards): return "chunk \(chunk): shards \(shards) overlap shards already received"
        case .wrongStep(let got, let expected): return "a piece of step \(got) during step \(expected)"
        }
    }
}

/// One owner's part of a step, for the chunks it owns: the pieces of each chunk (the chunk's
/// values of one node sum of the shard tree, from whichever agent computed that node) folded in
/// shard order — the same grouping the coordinator uses for the whole vector, so the same bits —
/// then averaged and measured (each chunk's Σg², for the coordinator's clipping norm), then
/// clipped with the norm the coordinator sends back and updated with the optimizer's rule, chunk
/// by chunk. The rules are elementwise (`UpdateRule`), so a chunk's update is the whole vector's
/// restricted to the chunk.
///
/// An owner keeps the whole parameter vector (it receives every other owner's updated chunks,
/// as every agent does) and full-size optimizer state buffers, of which only its chunks are
/// current: re-owning a chunk after an owner's death loads that chunk's state from the last
/// snapshot the coordinator holds (docs/coordination.md).
/// The pieces of the chunks one owner holds, folded along the shard tree in shard order
/// whatever order they arrive in (a piece that comes early waits for the ones before it): each
/// chunk's sum is the same grouping as the coordinator's fold of the whole vector, so the same bits.
public final class ChunkReducer {
    public let chunks: ParameterChunks
    public private(set) var owned: [Int]
    public private(set) var step = -1
    var tree = ShardTree(count: 1)
    var folds: [Int: TreeFold<[Float]>] = [:]
    /// Pieces that arrived before the ones ahead of them in shard order, by chunk and first shard.
    var waiting: [Int: [Int: (shards: Range<Int>, values: [Float])]] = [:]

    public init(chunks: ParameterChunks, owned: [Int]) {
        self.chunks = chunks
        self.owned = owned
    }

    /// Starts step `step` of `shardCount` shards over the chunks in `owned` (by default the same as before).
    public func beginStep(_ step: Int, shardCount: Int, owned: [Int]? = nil) {
        if let owned { self.owned = owned }
        self.step = step
        tree = ShardTree(count: shardCount)
        folds = Dictionary(uniqueKeysWithValues: self.owned.map { ($0, TreeFold<[Float]>(tree: tree)) })
        waiting.removeAll()
    }

    /// Adds chunk `chunk`'s piece of node `shards` (its values in `values`), in any order.
    public func receive(step: Int, chunk: Int, shards: Range<Int>, values: [Float]) throws {
        guard step == self.step else { throw ChunkPieceError.wrongStep(got: step, expected: self.step) }
        guard var fold = folds[chunk] else { throw ChunkPieceError.notOwned(chunk: chunk) }
        let expected = chunks.ranges[chunk].count
        guard values.count == expected else { throw ChunkPieceError.badLength(chunk: chunk, got: values.count, expected: expected) }
        guard shards.upperBound <= tree.count, tree.isNode(shards) else { throw ChunkPieceError.notANode(shards: shards, shardCount: tree.count) }
        var pending = waiting[chunk] ?? [:]
        let overlapsPending = pending.values.contains { $0.shards.overlaps(shards) }
        guard shards.lowerBound >= fold.covered, !overlapsPending else { throw ChunkPieceError.duplicate(chunk: chunk, shards: shards) }
        pending[shards.lowerBound] = (shards, values)
        // Push every piece that is next in shard order.
        while let next = pending.removeValue(forKey: fold.covered) {
            fold.push(next.shards, next.values) { left, right in
                left.withUnsafeMutableBufferPointer { l in right.withUnsafeBufferPointer { r in for i in 0..<l.count { l[i] += r[i] } } }
            }
        }
        folds[chunk] = fold
        waiting[chunk] = pending
    }

    /// Whether chunk `chunk` has all its shards.
    public func isComplete(_ chunk: Int) -> Bool { folds[chunk]?.isComplete ?? false }

    /// Whether every owned chunk has all its shards.
    public var isComplete: Bool { folds.values.allSatisfy(\.isComplete) }

    /// Chunk `chunk`'s sum over all shards, once complete.
    public func sum(_ chunk: Int) -> [Float]? { folds[chunk]?.result }
}

public final class ChunkOwner {
    public let id: UInt32
    public let chunks: ParameterChunks
    public private(set) var ownership: ChunkOwnership
    public private(set) var owned: [Int]
    let rule: UpdateRule
    let clipNorm: Float?
    let clipValue: Float?
    /// The parameters (all of them).
    public var parameters: [Float]
    /// The optimizer's state buffers, parameter-sized, current on the owned chunks (`stateValues`, `loadState`).
    let state: [UnsafeMutablePointer<Float>]
    let reducer: ChunkReducer
    /// Each owned chunk's averaged gradient once measured.
    var averaged: [Int: [Float]] = [:]

    /// An owner for `ownership`'s chunks of `id`, starting from `parameters` and zero state.
    /// `optimizer.clipPerTensorNorm` is refused: a tensor's norm would need all its chunks.
    public init(id: UInt32, chunks: ParameterChunks, ownership: ChunkOwnership, optimizer: OptimizerConfig, parameters: [Float]) throws {
        if optimizer.clipPerTensorNorm != nil {
            throw RuntimeError.invalidSetting("optimizer.clip_per_tensor_norm cannot be used with --chunk-owners (a tensor's norm spans owners); use clip_norm")
        }
        self.id = id
        self.chunks = chunks
        self.ownership = ownership
        owned = ownership.chunks(ownedBy: id)
        reducer = ChunkReducer(chunks: chunks, owned: owned)
        let template = Optimizer(config: optimizer, parameterCount: 0, totalSteps: 1)
        rule = template.rule
        clipNorm = optimizer.clipNorm
        clipValue = optimizer.clipValue
        self.parameters = parameters
        state = rule.stateNames.map { _ in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(parameters.count, 1))
            buffer.initialize(repeating: 0, count: max(parameters.count, 1))
            return buffer
        }
    }

    deinit { for buffer in state { buffer.deallocate() } }

    /// How many state buffers the rule keeps (Adam: 2).
    public var stateCount: Int { state.count }

    /// State buffer `index` over `range` (a copy).
    public func stateValues(_ index: Int, _ range: Range<Int>) -> [Float] {
        Array(UnsafeBufferPointer(start: state[index] + range.lowerBound, count: range.count))
    }

    /// Loads state buffer `index` over `range` (a re-owned chunk's moments from the last snapshot).
    public func loadState(_ index: Int, _ range: Range<Int>, _ values: [Float]) {
        precondition(values.count == range.count, "ChunkOwner.loadState: \(values.count) values for \(range)")
        (state[index] + range.lowerBound).update(from: values, count: range.count)
    }

    /// Takes over a new table (after an owner's death); the caller loads the state of chunks that moved here.
    public func reown(_ table: ChunkOwnership) {
        ownership = table
        owned = table.chunks(ownedBy: id)
    }

    /// Starts step `step` of `shardCount` shards: every owned chunk waits for its pieces.
    public func beginStep(_ step: Int, shardCount: Int) {
        reducer.beginStep(step, shardCount: shardCount, owned: owned)
        averaged.removeAll()
    }

    /// Adds chunk `chunk`'s piece of node `shards`, in any order (``ChunkReducer``).
    public func receive(step: Int, chunk: Int, shards: Range<Int>, values: [Float]) throws {
        try reducer.receive(step: step, chunk: chunk, shards: shards, values: values)
    }

    /// Whether every owned chunk has all its shards.
    public var isComplete: Bool { reducer.isComplete }

    /// Averages each owned chunk over the step's `examples` and returns its Σg² (ascending chunk
    /// order): `GradientClipping.scaleAndChunkSquares` on the chunk alone, the same lanes from
    /// the chunk's start as over the whole vector.
    public func measure(examples: Int) -> [(chunk: Int, squares: Double)] {
        precondition(isComplete, "ChunkOwner: measure before every piece is in")
        let inverse = 1 / Float(max(examples, 1))
        var report: [(Int, Double)] = []
        for chunk in owned {
            var values = reducer.sum(chunk)!
            var squares = 0.0
            let count = values.count
            values.withUnsafeMutableBufferPointer { v in
                _ = GradientClipping.scaleAndChunkSquares(v.baseAddress!, count: count, scale: inverse,
                                                          chunks: ParameterChunks(tensors: [0..<count], size: max(count, 1)), squares: &squares)
            }
            averaged[chunk] = values
            report.append((chunk, squares))
        }
        return report
    }

    /// Clips each owned chunk's averaged gradient with the step's global `norm` (as
    /// `Optimizer.update` does: PyTorch's coefficient, then value clipping) and applies the rule
    /// with learning rate `lr` at 1-based step `t`; returns the updated chunks' values.
    public func apply(norm: Double, lr: Float, t: Int) -> [(chunk: Int, values: [Float])] {
        var updated: [(Int, [Float])] = []
        for chunk in owned {
            guard var gradient = averaged[chunk] else { preconditionFailure("ChunkOwner: apply before measure") }
            let range = chunks.ranges[chunk], count = range.count
            let statePointers = state.map { $0 + range.lowerBound }
            gradient.withUnsafeMutableBufferPointer { g in
                if let maxNorm = clipNorm, norm.isFinite {
                    _ = GradientClipping.clipGlobalNorm(g.baseAddress!, count: count, maxNorm: maxNorm, norm: norm)
                }
                if let limit = clipValue { _ = GradientClipping.clipValue(g.baseAddress!, count: count, limit: limit) }
                parameters.withUnsafeMutableBufferPointer { p in
                    rule.apply(parameters: p.baseAddress! + range.lowerBound, gradients: g.baseAddress!, count: count,
                               state: statePointers, lr: lr, t: t)
                }
            }
            updated.append((chunk, Array(parameters[range])))
        }
        return updated
    }

    /// Puts another owner's updated chunk into this owner's parameters.
    public func load(chunk: Int, values: [Float]) throws {
        let range = chunks.ranges[chunk]
        guard values.count == range.count else { throw ChunkPieceError.badLength(chunk: chunk, got: values.count, expected: range.count) }
        parameters.replaceSubrange(range, with: values)
    }
}

/// The coordinator's part: each chunk's Σg² from whichever owner measured it, combined in chunk
/// order into the step's clipping norm once every chunk is in (`GradientClipping.combinedNorm`,
/// what the single-coordinator path computes), and each tensor's Σg² for the monitor.
public struct ChunkNormCombiner {
    public let chunks: ParameterChunks
    private var squares: [Double?]
    private var missing: Int

    public init(chunks: ParameterChunks) {
        self.chunks = chunks
        squares = Array(repeating: nil, count: chunks.count)
        missing = chunks.count
    }

    /// Records chunk `chunk`'s Σg² (a repeat keeps the first: an owner's report is not averaged with a replay).
    public mutating func record(chunk: Int, squares value: Double) {
        guard chunk >= 0, chunk < squares.count, squares[chunk] == nil else { return }
        squares[chunk] = value
        missing -= 1
    }

    public var isComplete: Bool { missing == 0 }

    /// The global norm, once complete.
    public var norm: Double? {
        guard isComplete else { return nil }
        let values = squares.map { $0! }
        return values.withUnsafeBufferPointer { GradientClipping.combinedNorm($0) }
    }

    /// Each tensor's Σg² (for `tensorCount` tensors), once complete.
    public func tensorSquares(tensorCount: Int) -> [Double]? {
        guard isComplete else { return nil }
        let values = squares.map { $0! }
        return values.withUnsafeBufferPointer { chunks.tensorSquares($0, tensorCount: tensorCount) }
    }
}
