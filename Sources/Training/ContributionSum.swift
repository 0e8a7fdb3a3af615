import Coordination
import NeuralNet
import TensorCore

/// Shard contributions (gradient sums and batch statistics, `count` floats each) and their
/// outcomes summed along a ``ShardTree``: the coordinator's step aggregate, and a worker's sum
/// of a node it holds entirely. Buffers come from and go back to a small pool, so a step
/// allocates nothing once the pool holds the tree's depth.
public final class ContributionSum {
    public let count: Int
    private var fold: TreeFold<Entry>
    private var pool: [TensorStorage] = []

    struct Entry {
        var values: TensorStorage
        var outcome: ShardOutcome
    }

    /// A sum over `node` of `tree` (by default the whole tree).
    public init(count: Int, tree: ShardTree, node: Range<Int>? = nil) {
        self.count = count
        fold = TreeFold(tree: tree, node: node)
    }

    /// The node being summed.
    public var node: Range<Int> { fold.node }
    /// Shards in so far: the lower bound the next contribution must have.
    public var covered: Int { fold.covered }
    public var isComplete: Bool { fold.isComplete }

    /// A buffer to compute or decode one contribution into, handed back with `add`.
    public func buffer() -> TensorStorage {
        pool.popLast() ?? TensorStorage(count: count, zeroed: false)
    }

    /// Adds the contribution of node `shards` (starting at `covered`); the sum owns `values` now.
    public func add(shards: Range<Int>, values: TensorStorage, outcome: ShardOutcome) {
        precondition(values.count == count, "ContributionSum: \(values.count) values, expected \(count)")
        fold.push(shards, Entry(values: values, outcome: outcome)) { left, right in
            let sum = left.values.pointer, other = right.values.pointer
            for i in 0..<count { sum[i] += other[i] }
            left.outcome.add(right.outcome)
            pool.append(right.values)
        }
    }

    /// The finished sum; the caller hands its buffer back with `recycle` (or keeps it).
    public var result: (values: TensorStorage, outcome: ShardOutcome)? {
        fold.result.map { ($0.values, $0.outcome) }
    }

    /// Starts over for the next step; `values` (a finished result's buffer) goes back to the pool.
    public func reset(recycling values: TensorStorage? = nil) {
        if let values { pool.append(values) }
        fold.reset()
    }
}

extension ShardOutcome {
    /// Adds `other`'s loss, correct predictions and examples (a node's outcome from its halves').
    mutating func add(_ other: ShardOutcome) {
        lossSum += other.lossSum
        correct += other.correct
        count += other.count
    }
}
