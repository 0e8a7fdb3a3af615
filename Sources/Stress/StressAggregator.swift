#if canImport(Glibc)
import Glibc
#endif
import Cluster
import WireProtocol

/// The coordinator's arithmetic in `chorus stress`: adds each released contribution into the
/// running fp32 sum and, in the same pass, compares it bit for bit with the contribution that
/// should come next.
///
/// "Next" follows the aggregator's own counter 0, 1, …, S−1, not the shard the coordination
/// layer says it released. The sum is Σ of the received contributions in release order, fp32,
/// one fixed loop; the expected aggregate is Σ of the expected contributions in canonical
/// order through the same loop. So the aggregate is exact if and only if nothing differed in
/// any of these comparisons (or, at worst, a difference was rounded away — which is still
/// counted as wrong): a lost, duplicated, stale, corrupted or out-of-order contribution is a
/// wrong aggregate, without keeping a second P-element sum. (The summation loop itself is
/// checked against a naive sum in the tests.) With fp16/bf16 on the wire the expected
/// contribution is the generated one rounded to that format and back (ties to even), exactly
/// what the coordinator decodes from a correct payload, so the check stays exact. Work goes
/// block by block (64 Ki elements) through small scratch buffers: memory is the P-element sum
/// plus ~1 MiB whatever the number of shards.
public final class StressAggregator {
    /// The generator both sides use.
    public let gradients: StressGradients
    /// The wire format of contributions.
    public let dtype: WireDType
    let sum: UnsafeMutableBufferPointer<Float>
    let scratchExpected: UnsafeMutableBufferPointer<Float>
    let scratchCheck: UnsafeMutableBufferPointer<Float>
    let scratchReceived: UnsafeMutableBufferPointer<Float>
    let scratchHalf: UnsafeMutableBufferPointer<UInt16>
    /// Contributions added to the current step so far.
    public private(set) var added = 0
    /// This step: elements at which a contribution differed from the canonical one, and the first.
    var wrongElements = 0
    var firstWrongIndex: Int?

    /// Allocates the sum (P × 4 bytes) and the scratch blocks.
    public init(gradients: StressGradients, dtype: WireDType) {
        self.gradients = gradients
        self.dtype = dtype
        sum = .allocate(capacity: max(gradients.count, 1))
        let block = StressGradients.blockLength
        scratchExpected = .allocate(capacity: block)
        scratchCheck = .allocate(capacity: block)
        scratchReceived = .allocate(capacity: block)
        scratchHalf = .allocate(capacity: block)
    }

    deinit {
        for buffer in [sum, scratchExpected, scratchCheck, scratchReceived] { buffer.deallocate() }
        scratchHalf.deallocate()
    }

    /// Starts a new step (the next `add` overwrites the sum).
    public func beginStep() {
        added = 0
        wrongElements = 0
        firstWrongIndex = nil
    }

    /// Adds `payload` (claimed to be `shard` of `step`) to the sum as the step's canonical shard
    /// `added`; returns how many elements of the payload differ from what `shard` of `step`
    /// should hold (0 for a correct contribution, even one released out of order).
    @discardableResult
    public func add(_ payload: PayloadBuffer, step: Int, shard: Int) -> Int {
        precondition(payload.elementCount(as: dtype) == gradients.count, "add: payload has the wrong length")
        let canonical = added
        added += 1
        let first = canonical == 0
        if dtype == .fp32 && shard == canonical {
            return addInOrder(payload.baseAddress.assumingMemoryBound(to: UInt32.self), step: step, shard: shard, first: first)
        }
        let count = gradients.count
        let block = StressGradients.blockLength
        var wrong = 0
        var start = 0
        while start < count {
            let n = min(block, count - start)
            let expectedBlock = UnsafeMutableBufferPointer(rebasing: scratchExpected[0..<n])
            gradients.fill(step: step, shard: canonical, start: start, into: expectedBlock)
            let checkBlock: UnsafeMutableBufferPointer<Float>
            if shard == canonical { checkBlock = expectedBlock } else {
                checkBlock = UnsafeMutableBufferPointer(rebasing: scratchCheck[0..<n])
                gradients.fill(step: step, shard: shard, start: start, into: checkBlock)
            }
            let received: UnsafePointer<Float>
            switch dtype {
            case .fp32:
                received = UnsafePointer(payload.baseAddress.assumingMemoryBound(to: Float.self) + start)
                if shard != canonical {
                    wrong += StressAggregator.differences(UnsafeRawPointer(received), UnsafeRawPointer(checkBlock.baseAddress!), count: n * 4)
                }
            case .fp16, .bf16:
                let half = UnsafeMutableBufferPointer(rebasing: scratchHalf[0..<n])
                let wire = UnsafeBufferPointer(start: payload.baseAddress.assumingMemoryBound(to: UInt16.self) + start, count: n)
                // What a correct payload holds: the check contribution rounded to the wire format.
                encode(UnsafeBufferPointer(checkBlock), into: half)
                wrong += StressAggregator.differences(UnsafeRawPointer(wire.baseAddress!), UnsafeRawPointer(half.baseAddress!), count: n * 2, width: 2)
                if shard != canonical { encode(UnsafeBufferPointer(expectedBlock), into: half) }
                decode(UnsafeBufferPointer(half), into: expectedBlock)
                let decoded = UnsafeMutableBufferPointer(rebasing: scratchReceived[0..<n])
                decode(wire, into: decoded)
                received = UnsafePointer(decoded.baseAddress!)
            }
            let s = sum.baseAddress! + start, g = expectedBlock.baseAddress!
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
                if dtype == .fp32, shard == canonical { wrong += blockWrong }
            }
            start += n
        }
        return wrong
    }

    /// The common case, an fp32 contribution released in canonical order, in one pass per
    /// element: the expected value comes straight from the generator's table (no scratch
    /// block), the sum takes the received value, and the bit differences are OR-ed together.
    func addInOrder(_ received: UnsafePointer<UInt32>, step: Int, shard: Int, first: Bool) -> Int {
        let count = gradients.count
        let length = StressGradients.blockLength
        let (rotation, mask) = gradients.key(step: step, shard: shard)
        var wrong = 0
        gradients.base.withUnsafeBufferPointer { table in
            let source = table.baseAddress!
            let sumBits = UnsafeMutableRawPointer(sum.baseAddress!)
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
    /// A step summed from other than `shards` contributions is wrong in every element.
    public func check(shards: Int) -> (wrongElements: Int, firstIndex: Int?) {
        if added != shards { return (max(gradients.count, 1), 0) }
        return (wrongElements, firstWrongIndex)
    }

    /// The current running sum (tests).
    public var aggregate: [Float] { Array(sum) }
}
