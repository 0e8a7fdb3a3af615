#if canImport(Glibc)
import Glibc
#endif
import Cluster
import Coordination
import WireProtocol

/// The coordinator's arithmetic in `chorus stress`: sums each released contribution along the
/// run's ``ShardTree`` (the order training sums in) and, in the same pass, compares it bit for
/// bit with the contribution that should come next.
///
/// "Next" follows the aggregator's own count of shards covered, not the shard the coordination
/// layer says it released: a contribution spanning `k` shards is checked against the tree node
/// `[covered, covered + k)`, whose expected value is the pairwise sum (fp32, in the tree's
/// order) of the generated shards in it — what a host agent holding those shards must send.
/// The expected aggregate is the tree sum of the expected contributions through the same
/// arithmetic, so the aggregate is exact if and only if nothing differed in any of these
/// comparisons (or, at worst, a difference was rounded away — which is still counted as
/// wrong): a lost, duplicated, stale, corrupted or out-of-order contribution is a wrong
/// aggregate, without keeping a second P-element sum. (The summation is checked against a
/// naive pairwise sum in the tests.) With fp16/bf16 on the wire the expected contribution is
/// the expected fp32 value rounded to that format and back (ties to even), exactly what the
/// coordinator decodes from a correct payload, so the check stays exact.
///
/// Memory: the tree's partial sums — at most ⌈log₂ S⌉ + 1 buffers of P floats, since a right
/// child is added straight into its waiting left sibling — plus scratch blocks of 64 Ki
/// elements (one per tree level for node contributions).
public final class StressAggregator {
    /// The generator both sides use.
    public let gradients: StressGradients
    /// The wire format of contributions.
    public let dtype: WireDType
    /// Partial sums of the tree (P floats each); the fold holds indices into it.
    var buffers: [UnsafeMutableBufferPointer<Float>] = []
    var freeBuffers: [Int] = []
    var fold = TreeFold<Int>(tree: ShardTree(count: 1))
    /// Set when a contribution did not fit the tree (past the last shard, or no node there): the step is wrong everywhere.
    var broken = false
    let scratchExpected: UnsafeMutableBufferPointer<Float>
    let scratchCheck: UnsafeMutableBufferPointer<Float>
    let scratchReceived: UnsafeMutableBufferPointer<Float>
    let scratchHalf: UnsafeMutableBufferPointer<UInt16>
    /// Block-sized buffers for expected node sums, reused.
    var blocks: [UnsafeMutableBufferPointer<Float>] = []
    /// This step: elements at which a contribution differed from the canonical one, and the first.
    var wrongElements = 0
    var firstWrongIndex: Int?

    /// Allocates the scratch blocks; the sums are allocated on first use.
    public init(gradients: StressGradients, dtype: WireDType) {
        self.gradients = gradients
        self.dtype = dtype
        let block = StressGradients.blockLength
        scratchExpected = .allocate(capacity: block)
        scratchCheck = .allocate(capacity: block)
        scratchReceived = .allocate(capacity: block)
        scratchHalf = .allocate(capacity: block)
    }

    deinit {
        for buffer in buffers + blocks + [scratchExpected, scratchCheck, scratchReceived] { buffer.deallocate() }
        scratchHalf.deallocate()
    }

    /// Shards covered in the current step so far: the first shard of the next canonical contribution.
    public var added: Int { fold.covered }

    /// Starts a new step of `shards` shards (every partial sum is free again).
    public func beginStep(shards: Int) {
        if fold.tree.count != shards { fold = TreeFold(tree: ShardTree(count: max(shards, 1))) } else { fold.reset() }
        freeBuffers = Array(buffers.indices)
        broken = false
        wrongElements = 0
        firstWrongIndex = nil
    }

    func takeBuffer() -> Int {
        if let index = freeBuffers.popLast() { return index }
        buffers.append(.allocate(capacity: max(gradients.count, 1)))
        return buffers.count - 1
    }

    /// Adds `payload`, claimed to hold shard `shard` of `step`, as the step's next canonical
    /// contribution; see ``add(_:step:shards:)``.
    @discardableResult
    public func add(_ payload: PayloadBuffer, step: Int, shard: Int) -> Int {
        add(payload, step: step, shards: shard..<(shard + 1))
    }

    /// Adds `payload` (claimed to be the sum of node `shards` of `step`) to the tree as the
    /// node of the same size starting at the first shard not yet covered; returns how many
    /// elements of the payload differ from what node `shards` should hold (0 for a correct
    /// contribution, even one released out of order).
    @discardableResult
    public func add(_ payload: PayloadBuffer, step: Int, shards claimed: Range<Int>) -> Int {
        precondition(payload.elementCount(as: dtype) == gradients.count, "add: payload has the wrong length")
        let tree = fold.tree
        let canonical = fold.covered..<min(fold.covered + max(claimed.count, 1), tree.count)
        guard !broken, !canonical.isEmpty, tree.isNode(canonical) else {
            broken = true
            return tree.isNode(claimed) ? 0 : gradients.count
        }
        // A right child whose left sibling waits is added straight into it; otherwise the
        // contribution is copied into a fresh partial sum.
        let combines = fold.combinesOnPush(canonical)
        let target = combines ? fold.top! : takeBuffer()
        let wrong: Int
        if dtype == .fp32 && canonical.count == 1 && claimed == canonical {
            wrong = addInOrder(payload.baseAddress.assumingMemoryBound(to: UInt32.self), step: step, shard: canonical.lowerBound,
                               into: buffers[target].baseAddress!, first: !combines)
        } else {
            wrong = addChecked(payload, step: step, canonical: canonical, claimed: tree.isNode(claimed) ? claimed : nil,
                               into: buffers[target].baseAddress!, first: !combines)
        }
        fold.push(canonical, combines ? -1 : target) { left, right in
            // The incoming contribution (-1) is already in `left`; a finished right subtree is added now.
            guard right >= 0 else { return }
            let l = buffers[left].baseAddress!, r = buffers[right].baseAddress!
            for j in 0..<gradients.count { l[j] += r[j] }
            freeBuffers.append(right)
        }
        return wrong
    }

    /// Writes into `destination` (`n` floats) the expected fp32 value at elements
    /// `start ..< start + n` of node `node`'s sum: the generated shard itself, or its shards
    /// summed pairwise in the tree's order.
    func expected(step: Int, node: Range<Int>, start: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        let n = destination.count
        if node.count == 1 {
            gradients.fill(step: step, shard: node.lowerBound, start: start, into: destination)
            return
        }
        var nodeFold = TreeFold<Int>(tree: fold.tree, node: node)
        var free = Array(blocks.indices)
        for shard in node {
            let index: Int
            if let reused = free.popLast() { index = reused } else {
                blocks.append(.allocate(capacity: StressGradients.blockLength))
                index = blocks.count - 1
            }
            gradients.fill(step: step, shard: shard, start: start, into: UnsafeMutableBufferPointer(rebasing: blocks[index][0..<n]))
            nodeFold.push(shard..<(shard + 1), index) { left, right in
                let l = blocks[left].baseAddress!, r = blocks[right].baseAddress!
                for j in 0..<n { l[j] += r[j] }
                free.append(right)
            }
        }
        destination.baseAddress!.update(from: blocks[nodeFold.result!].baseAddress!, count: n)
    }

    /// The general path: node sums, half-precision wires and contributions released out of
    /// order, block by block through the scratch buffers. `claimed` is the node the payload
    /// says it holds (nil: no node of the tree), for attributing wrong values.
    func addChecked(_ payload: PayloadBuffer, step: Int, canonical: Range<Int>, claimed: Range<Int>?,
                    into sum: UnsafeMutablePointer<Float>, first: Bool) -> Int {
        let count = gradients.count
        let block = StressGradients.blockLength
        var wrong = 0
        var start = 0
        while start < count {
            let n = min(block, count - start)
            let expectedBlock = UnsafeMutableBufferPointer(rebasing: scratchExpected[0..<n])
            expected(step: step, node: canonical, start: start, into: expectedBlock)
            var checkBlock: UnsafeMutableBufferPointer<Float>? = expectedBlock
            if claimed != canonical {
                checkBlock = nil
                if let claimed {
                    let block = UnsafeMutableBufferPointer(rebasing: scratchCheck[0..<n])
                    expected(step: step, node: claimed, start: start, into: block)
                    checkBlock = block
                }
            }
            let received: UnsafePointer<Float>
            switch dtype {
            case .fp32:
                received = UnsafePointer(payload.baseAddress.assumingMemoryBound(to: Float.self) + start)
                if claimed != canonical {
                    wrong += checkBlock.map { StressAggregator.differences(UnsafeRawPointer(received), UnsafeRawPointer($0.baseAddress!), count: n * 4) } ?? n
                }
            case .fp16, .bf16:
                let half = UnsafeMutableBufferPointer(rebasing: scratchHalf[0..<n])
                let wire = UnsafeBufferPointer(start: payload.baseAddress.assumingMemoryBound(to: UInt16.self) + start, count: n)
                // What a correct payload holds: the check contribution rounded to the wire format.
                if let checkBlock {
                    encode(UnsafeBufferPointer(checkBlock), into: half)
                    wrong += StressAggregator.differences(UnsafeRawPointer(wire.baseAddress!), UnsafeRawPointer(half.baseAddress!), count: n * 2, width: 2)
                } else {
                    wrong += n
                }
                if claimed != canonical || checkBlock == nil { encode(UnsafeBufferPointer(expectedBlock), into: half) }
                decode(UnsafeBufferPointer(half), into: expectedBlock)
                let decoded = UnsafeMutableBufferPointer(rebasing: scratchReceived[0..<n])
                decode(wire, into: decoded)
                received = UnsafePointer(decoded.baseAddress!)
            }
            let s = sum + start, g = expectedBlock.baseAddress!
            // One pass: the sum, and an OR of the bit differences from the canonical contribution.
            let receivedBits = UnsafeRawPointer(received).assumingMemoryBound(to: UInt32.self)
            let expectedBits = UnsafeRawPointer(g).assumingMemoryBound(to: UInt32.self)
            var difference: UInt32 = 0
            if first {
                for j in 0..<n { s[j] = received[j]; difference |= receivedBits[j] ^ expectedBits[j] }
            } else {
                for j in 0..<n { s[j] += received[j]; difference |= receivedBits[j] ^ expectedBits[j] }
            }
            if difference != 0 {
                let blockWrong = recordDifferences(start: start, count: n) { receivedBits[$0] != expectedBits[$0] }
                if dtype == .fp32, claimed == canonical { wrong += blockWrong }
            }
            start += n
        }
        return wrong
    }

    /// The common case, an fp32 contribution released in canonical order, in one pass per
    /// element: the expected value comes straight from the generator's table (no scratch
    /// block), the sum takes the received value, and the bit differences are OR-ed together.
    func addInOrder(_ received: UnsafePointer<UInt32>, step: Int, shard: Int, into sum: UnsafeMutablePointer<Float>, first: Bool) -> Int {
        let count = gradients.count
        let length = StressGradients.blockLength
        let (rotation, mask) = gradients.key(step: step, shard: shard)
        var wrong = 0
        gradients.base.withUnsafeBufferPointer { table in
            let source = table.baseAddress!
            let sumBits = UnsafeMutableRawPointer(sum)
            var start = 0
            while start < count {
                let m = StressGradients.blockMask(mask, block: start / length)
                let n = min(length, count - start)
                let head = min(n, length - rotation)
                let r = received + start
                let s = (sumBits + start * 4).assumingMemoryBound(to: Float.self)
                var difference = StressAggregator.addAndCompare(r, expected: source + rotation, mask: m, into: s, count: head, first: first)
                if head < n {
                    difference |= StressAggregator.addAndCompare(r + head, expected: source, mask: m, into: s + head, count: n - head, first: first)
                }
                if difference != 0 {
                    wrong += recordDifferences(start: start, count: n) { r[$0] != source[(rotation + $0) & (length - 1)] ^ m }
                }
                start += n
            }
        }
        return wrong
    }

    /// The slow path of a block that differs somewhere: counts the elements `j` of the block at
    /// `start` for which `differs(j)`, adds them to the step's count and notes the first index.
    func recordDifferences(start: Int, count n: Int, _ differs: (Int) -> Bool) -> Int {
        var blockWrong = 0
        for j in 0..<n where differs(j) {
            if blockWrong == 0 && (firstWrongIndex ?? Int.max) > start + j { firstWrongIndex = start + j }
            blockWrong += 1
        }
        wrongElements += blockWrong
        return blockWrong
    }

    /// `s[j] (+)= received[j]` as fp32 for `count` elements; returns the OR of
    /// `received[j] XOR expected[j] XOR mask` (0: every element was the expected one).
    @inline(__always)
    static func addAndCompare(_ received: UnsafePointer<UInt32>, expected: UnsafePointer<UInt32>, mask: UInt32,
                              into s: UnsafeMutablePointer<Float>, count: Int, first: Bool) -> UInt32 {
        var difference: UInt32 = 0
        if first {
            for j in 0..<count { s[j] = Float(bitPattern: received[j]); difference |= received[j] ^ expected[j] ^ mask }
        } else {
            for j in 0..<count { s[j] += Float(bitPattern: received[j]); difference |= received[j] ^ expected[j] ^ mask }
        }
        return difference
    }

    func encode(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<UInt16>) {
        if dtype == .fp16 { HalfPrecision.floatToHalf(source, into: destination) } else { HalfPrecision.floatToBFloat16(source, into: destination) }
    }

    func decode(_ source: UnsafeBufferPointer<UInt16>, into destination: UnsafeMutableBufferPointer<Float>) {
        if dtype == .fp16 { HalfPrecision.halfToFloat(source, into: destination) } else { HalfPrecision.bfloat16ToFloat(source, into: destination) }
    }

    /// Number of `width`-byte elements that differ between `a` and `b` (`count` bytes each).
    static func differences(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int, width: Int = 4) -> Int {
        if memcmp(a, b, count) == 0 { return 0 }
        var wrong = 0
        if width == 4 {
            let x = a.assumingMemoryBound(to: UInt32.self), y = b.assumingMemoryBound(to: UInt32.self)
            for j in 0..<(count / 4) where x[j] != y[j] { wrong += 1 }
        } else {
            let x = a.assumingMemoryBound(to: UInt16.self), y = b.assumingMemoryBound(to: UInt16.self)
            for j in 0..<(count / 2) where x[j] != y[j] { wrong += 1 }
        }
        return wrong
    }

    /// Whether the step's aggregate is exact: the number of elements at which a contribution,
    /// taken in canonical order, differed from the expected one (0: the aggregate is bit for bit
    /// the expected one), and the first such index.
    /// A step whose contributions did not cover exactly its `shards` shards, node by node, is
    /// wrong in every element.
    public func check(shards: Int) -> (wrongElements: Int, firstIndex: Int?) {
        if broken || fold.tree.count != shards || !fold.isComplete { return (max(gradients.count, 1), 0) }
        return (wrongElements, firstWrongIndex)
    }

    /// The step's sum once every shard is in, else the partial sum on top of the tree (tests).
    public var aggregate: [Float] {
        guard let index = fold.result ?? fold.top else { return [] }
        return Array(buffers[index])
    }
}
