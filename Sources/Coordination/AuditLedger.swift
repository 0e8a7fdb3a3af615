/// How far back each worker's results are vouched for, so that a worker a refereed audit proves
/// wrong can be undone exactly: the run goes back to the last state no result of that worker
/// after its last clean audit went into, and computes again from there without it
/// (docs/coordination.md, "Quarantine and rewind").
///
/// States are named by the global step they start (the state before step `s` is "state `s`").
/// A clean audit of worker `w` at step `a` vouches for `w`'s results up to step `a`, so state
/// `a + 1` is as good as `w`'s past; before its first clean audit a worker is vouched for back to
/// the oldest state still held when its first result was aggregated. The ledger names the states
/// to keep; the caller keeps the snapshots (at most one per live worker, plus one).
///
/// What it cannot see: a worker whose faults come and go may pass an audit while another of its
/// results in the same stretch was wrong; that result is vouched for with the rest. More
/// frequent audits (`--audit-every`) narrow the stretch.
public struct AuditLedger: Sendable {
    /// The state each worker is vouched for back to.
    public private(set) var vouchedFrom: [WorkerID: Int] = [:]
    /// States the caller holds a snapshot of.
    public private(set) var held: Set<Int> = []

    public init() {}

    /// Whether the caller should snapshot the state before step `step` now: a worker is vouched
    /// for from it (a clean audit at `step − 1`), or nobody is vouched for yet.
    public func wantsSnapshot(at step: Int) -> Bool {
        !held.contains(step) && (vouchedFrom.isEmpty || vouchedFrom.values.contains(step))
    }

    /// The caller took the snapshot of state `step`.
    public mutating func snapshotTaken(at step: Int) { held.insert(step) }

    /// A result of `worker` went into step `step`'s sum. A worker's first is vouched for back to
    /// the oldest held state (before anything it computed, whenever it joined).
    public mutating func contributed(_ worker: WorkerID, step: Int) {
        guard vouchedFrom[worker] == nil else { return }
        vouchedFrom[worker] = held.min() ?? step
    }

    /// An audit at step `step` found `workers` in agreement, bit for bit.
    public mutating func cleanAudit(_ workers: [WorkerID], step: Int) {
        for worker in workers { vouchedFrom[worker] = step + 1 }
    }

    /// `worker` is proven wrong: the state to go back to, or nil when none of its results went
    /// into a sum (its only results were audit copies, compared and never added). The worker is
    /// forgotten; every other worker is vouched for no later than the returned state, and held
    /// states after it are no longer held (they came from its results).
    public mutating func faulty(_ worker: WorkerID) -> Int? {
        guard let target = vouchedFrom.removeValue(forKey: worker) else { return nil }
        for (other, from) in vouchedFrom where from > target { vouchedFrom[other] = target }
        held = held.filter { $0 <= target }
        return target
    }

    /// A worker left, was evicted or quarantined: its vouching is no longer needed.
    public mutating func forget(_ worker: WorkerID) { vouchedFrom[worker] = nil }

    /// Held states nobody needs any more: the caller drops their snapshots. While nobody is
    /// vouched for, the newest held state stays (a joining worker is vouched for back to it).
    public mutating func releasable() -> [Int] {
        var needed = Set(vouchedFrom.values)
        if needed.isEmpty, let newest = held.max() { needed.insert(newest) }
        let released = held.subtracting(needed)
        held.subtract(released)
        return released.sorted()
    }
}
