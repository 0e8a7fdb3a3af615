/// The fixed order in which a step's S shard contributions are summed: a pairwise tree over
/// the shard indices that depends on S alone, never on who computed what or when it arrived.
///
/// The nodes are the aligned power-of-two blocks `[k·2ʲ, (k+1)·2ʲ)` cut at S. A node's sum is
/// its left child's sum plus its right child's (left + right); a node whose right child lies
/// wholly past S is its left child. So with S = 6:
///
///     [0,6) = [0,4) + [4,6)
///     [0,4) = [0,2) + [2,4),  [4,6) = 4 + 5
///     [0,2) = 0 + 1,          [2,4) = 2 + 3
///
/// Because a node's sum is the same bits wherever it is computed (IEEE addition is
/// commutative; the grouping is fixed), a worker that holds every shard of a node can send the
/// node's sum instead of its shards, and the step's sum is still the same bits. Pairwise
/// summation is also closer to the exact sum than a left fold (docs/benchmarks.md).
public struct ShardTree: Sendable, Equatable {
    /// S: the number of shards a step is split into.
    public let count: Int

    public init(count: Int) {
        precondition(count >= 1, "ShardTree: at least one shard")
        self.count = count
    }

    /// The smallest aligned block size whose node is `range`, or nil when `range` is no node.
    public func blockSize(of range: Range<Int>) -> Int? {
        guard range.lowerBound >= 0, range.upperBound <= count, !range.isEmpty else { return nil }
        var size = 1
        while size < 2 * count {
            if range.lowerBound % size == 0 && Swift.min(range.lowerBound + size, count) == range.upperBound { return size }
            if range.lowerBound % size != 0 || range.lowerBound + size > range.upperBound { return nil }
            size *= 2
        }
        return nil
    }

    /// Whether `range` is a node of the tree (so its sum can travel as one contribution).
    public func isNode(_ range: Range<Int>) -> Bool { blockSize(of: range) != nil }

    /// `range` cut into the fewest nodes, in shard order: the maximal aligned blocks inside it.
    public func cover(_ range: Range<Int>) -> [Range<Int>] {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "ShardTree.cover: \(range) outside 0..<\(count)")
        var nodes: [Range<Int>] = []
        var start = range.lowerBound
        while start < range.upperBound {
            var size = 1
            while start % (2 * size) == 0, Swift.min(start + 2 * size, count) <= range.upperBound, size < count { size *= 2 }
            let end = Swift.min(start + size, count)
            nodes.append(start..<end)
            start = end
        }
        return nodes
    }

    /// Sorted shard indices cut into the fewest nodes (contiguous runs, each covered).
    public func cover(shards: [Int]) -> [Range<Int>] {
        var nodes: [Range<Int>] = []
        var index = 0
        let sorted = shards.sorted()
        while index < sorted.count {
            var end = index + 1
            while end < sorted.count && sorted[end] == sorted[end - 1] + 1 { end += 1 }
            nodes += cover(sorted[index]..<(sorted[end - 1] + 1))
            index = end
        }
        return nodes
    }
}

/// Sums node contributions that arrive in shard order, bottom-up along a ``ShardTree``: a stack
/// of left children waiting for their right siblings. Each contribution is a node whose lower
/// bound is the first shard not yet covered; when the last shard is in, `result` is the sum of
/// the whole tree (or of the one node the fold is over), in the tree's order whichever nodes
/// it was given. The coordinator folds a step's contributions over the whole tree; a worker
/// folds its shards over a node it holds entirely, and sends that node's sum.
///
/// `combine(&left, right)` must add `right` into `left` (element by element, left + right);
/// `right` is not used again, so the caller may recycle its storage there.
public struct TreeFold<Value> {
    public let tree: ShardTree
    /// The node whose sum this fold computes: the whole tree, or one node of it.
    public let node: Range<Int>
    private var stack: [(start: Int, size: Int, value: Value)] = []
    /// Shards covered so far: the lower bound the next contribution must have.
    public private(set) var covered: Int

    /// A fold over `node` (a node of `tree`; by default the whole tree).
    public init(tree: ShardTree, node: Range<Int>? = nil) {
        self.tree = tree
        self.node = node ?? 0..<tree.count
        precondition(tree.isNode(self.node), "TreeFold: \(self.node) is not a node of a \(tree.count)-shard tree")
        covered = self.node.lowerBound
    }

    /// Whether every shard of the node is in.
    public var isComplete: Bool { covered == node.upperBound }

    /// The sum of all shards once complete.
    public var result: Value? { isComplete ? stack.first?.value : nil }

    /// Starts over (what was held is dropped).
    public mutating func reset() {
        stack.removeAll(keepingCapacity: true)
        covered = node.lowerBound
    }

    /// The value waiting on top of the stack (the left sibling a push may add into).
    public var top: Value? { stack.last?.value }

    /// Whether pushing node `range` (which must start at `covered`) adds it into `top` at once:
    /// it is a right child whose left sibling waits. Callers use it to add an incoming
    /// contribution straight into that sibling instead of copying it first.
    public func combinesOnPush(_ range: Range<Int>) -> Bool {
        guard range.lowerBound == covered, range.upperBound <= node.upperBound, var size = tree.blockSize(of: range) else { return false }
        let start = range.lowerBound
        while !(start == node.lowerBound && start + size >= node.upperBound) {
            if start % (2 * size) == 0 {
                guard start + size >= tree.count else { return false }
                size *= 2
            } else {
                return true
            }
        }
        return false
    }

    /// Adds the sum of node `range`, which must start at `covered`.
    public mutating func push(_ range: Range<Int>, _ value: Value, combine: (inout Value, Value) -> Void) {
        precondition(range.lowerBound == covered && range.upperBound <= node.upperBound,
                     "TreeFold: node \(range) out of order (expected one starting at \(covered), inside \(node))")
        guard let blockSize = tree.blockSize(of: range) else { preconditionFailure("TreeFold: \(range) is not a node of a \(tree.count)-shard tree") }
        var start = range.lowerBound, size = blockSize, value = value
        while !(start == node.lowerBound && start + size >= node.upperBound) {
            if start % (2 * size) == 0 {
                // A left child: its parent is itself while the right sibling lies past the last shard.
                guard start + size >= tree.count else { break }
                size *= 2
            } else {
                var left = stack.removeLast()
                precondition(left.start == start - size && left.size == size, "TreeFold: missing left sibling of \(start)..<\(start + size)")
                combine(&left.value, value)
                start = left.start
                size *= 2
                value = left.value
            }
        }
        stack.append((start, size, value))
        covered = range.upperBound
    }
}
