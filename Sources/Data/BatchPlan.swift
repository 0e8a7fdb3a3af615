import TensorCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The deterministic order in which examples are visited: per-epoch shuffles, batches and shards.
///
/// Everything is a pure function of `(seed, epoch, step, shard, shards)`, so every worker and the
/// coordinator agree on which examples make up each shard without talking to each other:
///
/// - `permutation(epoch)` = `DeterministicRNG(key: [seed, 0x5348_5546 ("SHUF"), epoch]).permutation(n)`
/// - step `t` of an epoch covers permutation positions `t·B ..< min((t+1)·B, n)` (the last batch may be partial)
/// - a batch of `b` examples is cut into `S` contiguous shards: shard `k` starts at
///   `k·⌊b/S⌋ + min(k, b mod S)` and holds `⌊b/S⌋ + (k < b mod S ? 1 : 0)` examples.
///
/// The last permutation asked for is cached behind a lock; the cache never changes results, and a
/// plan (and its copies, which share the cache) may be used from several threads.
public struct BatchPlan: @unchecked Sendable {
    /// The number of examples in the data set.
    public let exampleCount: Int
    /// The number of examples per step (before sharding).
    public let batchSize: Int
    /// The run's seed.
    public let seed: UInt64
    private let cache = PermutationCache()

    /// The RNG key tag of shuffles: ASCII "SHUF".
    public static let shuffleTag: UInt64 = 0x5348_5546

    /// A plan for `exampleCount` examples in batches of `batchSize` (at least 1), shuffled by `seed`.
    public init(exampleCount: Int, batchSize: Int, seed: UInt64) {
        precondition(exampleCount >= 0, "exampleCount must be non-negative")
        precondition(batchSize >= 1, "batchSize must be at least 1")
        self.exampleCount = exampleCount
        self.batchSize = batchSize
        self.seed = seed
    }

    /// Steps per epoch: `⌈n / B⌉` (drop_last = false).
    public var stepsPerEpoch: Int { (exampleCount + batchSize - 1) / batchSize }

    /// The epoch and step-in-epoch of a global step counted from 0: `(g / stepsPerEpoch, g mod stepsPerEpoch)`.
    public func position(globalStep: Int) -> (epoch: Int, step: Int) {
        releaseCheck(globalStep >= 0 && stepsPerEpoch > 0, "global step \(globalStep) needs a non-empty plan")
        return (globalStep / stepsPerEpoch, globalStep % stepsPerEpoch)
    }

    /// The shuffled order of all examples for `epoch`.
    public func permutation(epoch: Int) -> [Int] {
        releaseCheck(epoch >= 0, "epoch must be non-negative")
        return cache.permutation(epoch: epoch) {
            var generator = DeterministicRNG(key: [seed, BatchPlan.shuffleTag, UInt64(epoch)])
            return generator.permutation(exampleCount)
        }
    }

    /// The positions in `permutation(epoch:)` that step `step` of the epoch covers.
    public func batchIndices(epoch: Int, step: Int) -> Range<Int> {
        releaseCheck(step >= 0 && step < stepsPerEpoch, "step \(step) outside 0..<\(stepsPerEpoch)")
        return step * batchSize ..< min((step + 1) * batchSize, exampleCount)
    }

    /// The positions in `permutation(epoch:)` of shard `shard` of `shards` at this step (possibly empty).
    public func shardPositions(epoch: Int, step: Int, shard: Int, shards: Int) -> Range<Int> {
        releaseCheck(shards >= 1 && shard >= 0 && shard < shards, "shard \(shard) outside 0..<\(shards)")
        let batch = batchIndices(epoch: epoch, step: step)
        let size = batch.count
        let base = size / shards, extra = size % shards
        let start = batch.lowerBound + shard * base + min(shard, extra)
        return start ..< start + base + (shard < extra ? 1 : 0)
    }

    /// The example indices of shard `shard` of `shards` at step `step` of `epoch` (empty when the batch has fewer examples than shards).
    public func shardIndices(epoch: Int, step: Int, shard: Int, shards: Int) -> [Int] {
        let positions = shardPositions(epoch: epoch, step: step, shard: shard, shards: shards)
        return Array(permutation(epoch: epoch)[positions])
    }

    /// The example indices of the whole batch at step `step` of `epoch`, in shard order.
    public func batchExampleIndices(epoch: Int, step: Int) -> [Int] {
        Array(permutation(epoch: epoch)[batchIndices(epoch: epoch, step: step)])
    }
}

/// Holds the last permutation computed, behind a mutex.
private final class PermutationCache {
    private var epoch = -1
    private var order: [Int] = []
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func permutation(epoch requested: Int, compute: () -> [Int]) -> [Int] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if requested != epoch {
            order = compute()
            epoch = requested
        }
        return order
    }
}
