/// Holds results that arrive out of order and releases the longest in-order prefix as soon as it exists.
///
/// Indices run from 0 to `count - 1`; each is inserted at most once. Only bookkeeping lives here:
/// the payload type is whatever the caller chooses (the coordinator stores tokens).
public struct ReorderBuffer<Payload> {
    /// Number of indices in one round (the shard count).
    public let count: Int
    /// The next index to release; `count` once everything was released.
    public private(set) var next = 0
    private var held: [Int: Payload] = [:]
    /// Indices that never come (a step over a subset of the shards): released as if inserted, with no payload.
    private let skipped: Set<Int>

    /// Makes an empty buffer for indices `0..<count`, of which `skipping` are never inserted.
    public init(count: Int, skipping: Set<Int> = []) {
        self.count = count
        self.skipped = skipping
        while next < count && skipped.contains(next) { next += 1 }
    }

    /// Number of results held because an earlier index is still missing.
    public var heldCount: Int { held.count }

    /// Whether every index was released.
    public var isComplete: Bool { next == count }

    /// Whether `index` was inserted already (held or released).
    public func contains(_ index: Int) -> Bool {
        index < next || held[index] != nil || skipped.contains(index)
    }

    /// Inserts a result and returns those now releasable, in index order (empty if `index` waits for an earlier one).
    ///
    /// Precondition: `0 <= index < count` and `index` not inserted before.
    public mutating func insert(_ index: Int, _ payload: Payload) -> [(index: Int, payload: Payload)] {
        precondition(index >= 0 && index < count && !contains(index), "ReorderBuffer: bad or repeated index \(index)")
        if index != next {
            held[index] = payload
            return []
        }
        var released = [(index: index, payload: payload)]
        next += 1
        while next < count {
            if skipped.contains(next) {
                next += 1
            } else if let waiting = held.removeValue(forKey: next) {
                released.append((next, waiting))
                next += 1
            } else {
                break
            }
        }
        return released
    }

    /// Removes and returns everything held (for cleanup when a run ends), in index order.
    public mutating func drain() -> [(index: Int, payload: Payload)] {
        let out = held.sorted { $0.key < $1.key }.map { (index: $0.key, payload: $0.value) }
        held.removeAll()
        return out
    }
}
extension ReorderBuffer: Sendable where Payload: Sendable {}
