/// A worker's identity, assigned by the runtime (for example from the transport's peer identity); ordered so assignment is deterministic.
public typealias WorkerID = UInt32

/// An opaque handle the caller gives for a received shard result; the caller keeps the payload, the state machines only move tokens.
///
/// Every token handed to ``CoordinatorStateMachine`` comes back exactly once, in one of
/// ``CoordinatorAction/aggregate(_:)``, ``CoordinatorAction/discard(_:)`` or as `tokenB` of
/// ``CoordinatorAction/auditPair(_:)``. An `aggregate` with `retainForAudit` set additionally
/// asks the caller to keep that payload until an `auditPair` (as `tokenA`) or `auditAbandoned` names it.
public typealias ResultToken = UInt64

/// A point on the caller's monotonic clock, in nanoseconds; the state machines never read a clock themselves.
public typealias Nanoseconds = UInt64
