import Testing
@testable import TensorCore

/// The large-buffer pool behind `TensorStorage`: reuse by size, zeros when asked for, and a
/// bounded cache (the fix for the heap growth measured on the batch-norm CNN).
@Suite struct BufferPoolTests {
    @Test func aFreedBufferIsHandedOutAgainForTheSameSizeAndZeroedWhenAskedTo() {
        let pool = BufferPool(cacheLimitBytes: 8 << 20)
        let bytes = 300_000
        let first = pool.allocate(bytes: bytes, zeroed: true)
        #expect(Int(bitPattern: first) % 4096 == 0, "pool buffers are page-aligned")
        first.storeBytes(of: 0xDEAD_BEEF as UInt32, as: UInt32.self)
        pool.release(first, bytes: bytes)
        #expect(pool.statistics.cached >= bytes)
        let again = pool.allocate(bytes: bytes, zeroed: true)
        #expect(again == first, "the cached buffer of that size is reused")
        #expect(again.load(as: UInt32.self) == 0, "a zeroed request gets zeros even from the cache")
        #expect(pool.statistics.cached == 0)
        // A different size does not take it.
        pool.release(again, bytes: bytes)
        let other = pool.allocate(bytes: 2 * bytes, zeroed: false)
        #expect(other != first)
        pool.release(other, bytes: 2 * bytes)
    }

    @Test func theCacheStaysUnderItsLimitAndUnmapsTheOldestFirst() {
        let limit = 4 << 20
        let pool = BufferPool(cacheLimitBytes: limit)
        let size = 256 << 10  // an eighth of the limit is 512 KiB: these are cached
        let buffers = (0..<40).map { _ in pool.allocate(bytes: size, zeroed: false) }
        #expect(pool.statistics.mapped == 40 * size)
        for buffer in buffers { pool.release(buffer, bytes: size) }
        let statistics = pool.statistics
        #expect(statistics.cached <= limit)
        #expect(statistics.cached == 16 * size, "16 buffers of 256 KiB fill 4 MiB")
        #expect(statistics.mapped == statistics.cached, "the rest were unmapped")
        // The newest were kept: the last freed is the next handed out.
        #expect(pool.allocate(bytes: size, zeroed: false) == buffers.last!)
    }

    @Test func aBufferLargerThanAnEighthOfTheLimitIsUnmappedAtOnce() {
        let pool = BufferPool(cacheLimitBytes: 8 << 20)
        let big = pool.allocate(bytes: 2 << 20, zeroed: true)
        pool.release(big, bytes: 2 << 20)
        #expect(pool.statistics.cached == 0)
        #expect(pool.statistics.mapped == 0)
    }

    @Test func largeTensorStorageComesFromThePoolAndStartsZeroed() {
        let count = 86_413  // an odd size, not another test's
        #expect(count * 4 >= BufferPool.minimumBytes)
        do {
            let storage = TensorStorage(count: count)
            #expect(Int(bitPattern: storage.pointer) % 4096 == 0, "from the pool: page-aligned")
            for i in 0..<count { #expect(storage.pointer[i] == 0); storage.pointer[i] = 7 }
        }
        // Freed into the shared pool; a new zeroed storage of the same size (likely the same
        // buffer) starts zeroed.
        let again = TensorStorage(count: count)
        var nonZero = 0
        for i in 0..<count where again.pointer[i] != 0 { nonZero += 1 }
        #expect(nonZero == 0)
    }
}
