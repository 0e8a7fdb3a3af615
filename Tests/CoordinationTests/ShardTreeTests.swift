import Testing
@testable import Coordination

/// The fixed reduction order: nodes, covers, and the fold that must give the same sum
/// whichever nodes it is handed.
struct ShardTreeTests {
    /// The tree's sum written out, from its definition: left + right, a right child past S dropped.
    func expression(_ start: Int, _ size: Int, count: Int) -> String {
        if size == 1 { return "\(start)" }
        let half = size / 2
        if start + half >= count { return expression(start, half, count: count) }
        return "(\(expression(start, half, count: count))+\(expression(start + half, half, count: count)))"
    }

    func definition(count: Int) -> String {
        var size = 1
        while size < count { size *= 2 }
        return expression(0, size, count: count)
    }

    /// Folds `nodes` (a cover of 0..<S in order) into an expression.
    func fold(_ nodes: [Range<Int>], tree: ShardTree) -> String? {
        var fold = TreeFold<String>(tree: tree)
        for node in nodes {
            // A node's own sum is the fold of its leaves over that node.
            var inner = TreeFold<String>(tree: tree, node: node)
            for shard in node { inner.push(shard..<(shard + 1), "\(shard)") { $0 = "(\($0)+\($1))" } }
            fold.push(node, inner.result!) { $0 = "(\($0)+\($1))" }
        }
        return fold.result
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 16, 33])
    func everyCoverGivesTheDefinitionsSum(count: Int) {
        let tree = ShardTree(count: count)
        let expected = definition(count: count)
        #expect(fold((0..<count).map { $0..<($0 + 1) }, tree: tree) == expected, "leaves")
        #expect(fold([0..<count], tree: tree) == expected, "the root")
        // Every worker count's contiguous blocks, each cut into nodes.
        for workers in 1...count {
            var nodes: [Range<Int>] = []
            for w in 0..<workers {
                let block = (w * count / workers)..<((w + 1) * count / workers)
                if !block.isEmpty { nodes += tree.cover(block) }
            }
            #expect(nodes.allSatisfy(tree.isNode))
            #expect(fold(nodes, tree: tree) == expected, "\(workers) blocks: \(nodes)")
        }
    }

    @Test func coversAreTheFewestAlignedNodes() {
        let four = ShardTree(count: 4)
        #expect(four.cover(0..<4) == [0..<4])
        #expect(four.cover(0..<2) == [0..<2])
        #expect(four.cover(1..<3) == [1..<2, 2..<3])
        #expect(four.cover(1..<4) == [1..<2, 2..<4])
        #expect(four.cover(shards: [3, 0, 1]) == [0..<2, 3..<4])
        let six = ShardTree(count: 6)
        #expect(six.cover(0..<6) == [0..<6])
        #expect(six.cover(4..<6) == [4..<6])
        #expect(six.cover(2..<6) == [2..<4, 4..<6])
        #expect(six.isNode(0..<6) && six.isNode(4..<6) && !six.isNode(2..<6) && !six.isNode(1..<3) && !six.isNode(0..<3))
        #expect(ShardTree(count: 3).isNode(2..<3) && ShardTree(count: 3).isNode(0..<3))
        #expect(!four.isNode(0..<5) && !four.isNode(2..<2))
    }

    @Test func floatSumsAreTheSameBitsWhicheverNodesArrive() {
        var state: UInt64 = 42
        func random() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) * 1e-3
        }
        let count = 13
        let tree = ShardTree(count: count)
        let leaves = (0..<count).map { _ in (0..<64).map { _ in random() } }
        func sum(_ nodes: [Range<Int>]) -> [UInt32] {
            var fold = TreeFold<[Float]>(tree: tree)
            let add: (inout [Float], [Float]) -> Void = { left, right in for i in left.indices { left[i] += right[i] } }
            for node in nodes {
                var inner = TreeFold<[Float]>(tree: tree, node: node)
                for shard in node { inner.push(shard..<(shard + 1), leaves[shard], combine: add) }
                fold.push(node, inner.result!, combine: add)
            }
            return fold.result!.map(\.bitPattern)
        }
        let reference = sum((0..<count).map { $0..<($0 + 1) })
        #expect(sum([0..<count]) == reference)
        #expect(sum(tree.cover(0..<5) + tree.cover(5..<9) + tree.cover(9..<13)) == reference)
        // A left fold is another order: with these values it differs somewhere.
        var left = leaves[0]
        for shard in 1..<count { for i in left.indices { left[i] += leaves[shard][i] } }
        #expect(left.map(\.bitPattern) != reference)
    }

    /// `combinesOnPush` says beforehand exactly whether `push` adds into the waiting `top`
    /// (the stress aggregator adds an incoming right child straight into its left sibling).
    @Test(arguments: [1, 2, 3, 5, 6, 7, 8, 13, 16, 33])
    func combinesOnPushPredictsThePush(count: Int) {
        let tree = ShardTree(count: count)
        // Every way of cutting 0..<count into covers of consecutive blocks of 1–3 shards.
        for chunk in 1...3 {
            var fold = TreeFold<Int>(tree: tree)
            var start = 0
            while start < count {
                let end = min(start + chunk, count)
                for node in tree.cover(start..<end) {
                    let predicted = fold.combinesOnPush(node)
                    let top = fold.top
                    var combinedWithTop = false
                    var first = true
                    fold.push(node, node.lowerBound) { left, _ in
                        if first { combinedWithTop = left == top; first = false }
                    }
                    #expect(predicted == combinedWithTop, "S=\(count) node \(node)")
                }
                start = end
            }
            #expect(fold.isComplete)
        }
    }
}
