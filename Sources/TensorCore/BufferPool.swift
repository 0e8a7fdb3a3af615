#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Large tensor buffers, mapped from the kernel and reused by exact size.
///
/// A training step allocates the same large buffers every step (activations, im2col columns,
/// gradients) and frees them all after backward. Left to glibc's malloc, buffers above its
/// (self-raising) mmap threshold come from the main heap, and the interleaving with small
/// allocations fragments it: measured on the batch-norm CNN of benchmarks/configs, the heap grew
/// by 1.5–26 MB per step in some runs and not in others (the same sequence of malloc calls,
/// the same peak of live bytes under heaptrack), until the kernel killed the run. Buffers of
/// `minimumBytes` or more therefore never touch malloc: they are mapped with `mmap`, kept when
/// freed in a list per size, handed out again for the next request of that size (the next step's),
/// and unmapped, oldest first, when more than `cacheLimitBytes` are cached (one larger than an
/// eighth of the limit at once). Resident memory is
/// then the live buffers plus at most the limit, and a steady-state step makes no system call
/// and takes no page fault for its tensors.
///
/// Thread-safe (one lock; a few operations per large buffer).
public final class BufferPool: @unchecked Sendable {
    /// Buffers at least this large come from the pool (smaller ones from malloc).
    public static let minimumBytes = 32 << 10
    /// The process's pool.
    public static let shared = BufferPool(cacheLimitBytes: BufferPool.defaultLimit())

    /// Most bytes kept in freed buffers (CHORUS_BUFFER_CACHE_MB overrides the default 512).
    public let cacheLimitBytes: Int
    /// A freed buffer larger than this (an eighth of the limit) is unmapped at once: one-off
    /// sizes such as a 1000-example evaluation batch's are not worth keeping.
    public var largestCachedBytes: Int { cacheLimitBytes / 8 }
    /// On the heap: a stored `pthread_mutex_t`'s address is not guaranteed stable in Swift.
    private let lock: UnsafeMutablePointer<pthread_mutex_t> = .allocate(capacity: 1)
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    /// Cached buffers in the order they were freed (the oldest is unmapped first).
    private var order: [(bytes: Int, pointer: UnsafeMutableRawPointer)] = []
    private var orderStart = 0
    private var cached = 0
    private var mapped = 0

    public init(cacheLimitBytes: Int) {
        self.cacheLimitBytes = cacheLimitBytes
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
    }

    static func defaultLimit() -> Int {
        if let text = getenv("CHORUS_BUFFER_CACHE_MB"), let megabytes = Int(String(cString: text)), megabytes >= 0 {
            return megabytes << 20
        }
        return 512 << 20
    }

    /// A page-aligned buffer of `bytes` (rounded up to whole pages); `zeroed` fills it with zeros.
    public func allocate(bytes requested: Int, zeroed: Bool) -> UnsafeMutableRawPointer {
        let bytes = Self.rounded(requested)
        pthread_mutex_lock(lock)
        if let pointer = free[bytes]?.popLast() {
            if free[bytes]?.isEmpty == true { free[bytes] = nil }
            cached -= bytes
            // The newest of its size: found from the end of the freeing order.
            if let index = order[orderStart...].lastIndex(where: { $0.pointer == pointer }) { order.remove(at: index) }
            pthread_mutex_unlock(lock)
            if zeroed { memset(pointer, 0, bytes) }
            return pointer
        }
        mapped += bytes
        pthread_mutex_unlock(lock)
        // Fresh anonymous pages read as zeros: no memset needed.
        guard let pointer = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              pointer != MAP_FAILED else { fatalError("out of memory mapping \(bytes) bytes for a tensor") }
        return pointer
    }

    /// Returns a buffer from `allocate(bytes:zeroed:)` with the same `bytes`.
    public func release(_ pointer: UnsafeMutableRawPointer, bytes requested: Int) {
        let bytes = Self.rounded(requested)
        var evicted: [(bytes: Int, pointer: UnsafeMutableRawPointer)] = []
        pthread_mutex_lock(lock)
        if bytes > largestCachedBytes {
            evicted.append((bytes, pointer))
        } else {
            free[bytes, default: []].append(pointer)
            order.append((bytes, pointer))
            cached += bytes
            while cached > cacheLimitBytes, orderStart < order.count {
                let oldest = order[orderStart]
                orderStart += 1
                if var list = free[oldest.bytes], let index = list.firstIndex(of: oldest.pointer) {
                    list.remove(at: index)
                    free[oldest.bytes] = list.isEmpty ? nil : list
                    cached -= oldest.bytes
                    evicted.append(oldest)
                }
            }
            if orderStart > 64 && orderStart * 2 > order.count {
                order.removeFirst(orderStart)
                orderStart = 0
            }
        }
        for buffer in evicted { mapped -= buffer.bytes }
        pthread_mutex_unlock(lock)
        for buffer in evicted { munmap(buffer.pointer, buffer.bytes) }
    }

    deinit {
        for (bytes, list) in free { for pointer in list { munmap(pointer, bytes) } }
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// Bytes mapped (live plus cached) and bytes cached, for tests and diagnostics.
    public var statistics: (mapped: Int, cached: Int) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return (mapped, cached)
    }

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    @inline(__always) static func rounded(_ bytes: Int) -> Int {
        (bytes + pageSize - 1) / pageSize * pageSize
    }
}
