/// The last few shard times, for the adaptive straggler deadline (median of a sliding window).
struct LatencyWindow: Sendable {
    private var samples: [UInt64] = []
    private var nextSlot = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    mutating func record(_ nanoseconds: UInt64) {
        if samples.count < capacity {
            samples.append(nanoseconds)
        } else {
            samples[nextSlot] = nanoseconds
        }
        nextSlot = (nextSlot + 1) % capacity
    }

    /// The median (upper median for an even count), or nil with no samples.
    var median: UInt64? {
        if samples.isEmpty { return nil }
        return samples.sorted()[samples.count / 2]
    }
}
