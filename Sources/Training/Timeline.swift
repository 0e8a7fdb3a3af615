import Cluster
import Config
import Foundation

/// `OUT/timeline.json`: who did what when, in the Chrome trace event format (open it in
/// ui.perfetto.dev or chrome://tracing), like Horovod's timeline.
///
/// Tracks: the coordinator (receive/check, aggregate, update, monitor, checkpoint, evaluate)
/// and one per worker (work in flight, compute, then waiting for the step to end). Worker spans
/// are placed on the coordinator's clock: a result's compute span is the worker's own measured
/// compute time ending when the result arrived, so remote hosts need no synchronized clocks; what
/// lies between the step's start and it is the work and parameters in flight (and any queueing).
/// Evictions, reassignments, restarts, quarantines and rewinds are instant events.
///
/// Bounded: the first `keepSteps` steps, the last `keepSteps`, and every step with an instant
/// event, so a 100k-step run writes a few MB.
public final class Timeline {
    public enum Track: Hashable {
        case coordinator
        case worker(Int)

        var tid: Int {
            switch self {
            case .coordinator: return 0
            case .worker(let id): return id + 1
            }
        }

        var name: String {
            switch self {
            case .coordinator: return "coordinator"
            case .worker(let id): return "worker \(id)"
            }
        }
    }

    struct Event {
        var track: Track
        var name: String
        var start: UInt64
        var end: UInt64?  // nil: an instant
        var args: [String: JSONValue]
    }

    public let keepSteps: Int
    let origin: UInt64
    private var current: [Int: [Event]] = [:]
    private var kept: [Int: [Event]] = [:]
    private var recent: [Int] = []
    private var tracks = Set<Track>([.coordinator])

    public init(keepSteps: Int) {
        self.keepSteps = keepSteps
        origin = monotonicNanos()
    }

    /// Now, on the clock the spans use.
    public func now() -> UInt64 { monotonicNanos() }

    /// A span on `track` during `step` (1-based, as metrics.jsonl counts).
    public func span(_ track: Track, _ name: String, from start: UInt64, to end: UInt64, step: Int, args: [String: JSONValue] = [:]) {
        tracks.insert(track)
        current[step, default: []].append(Event(track: track, name: name, start: start, end: max(end, start), args: args))
    }

    /// A moment on `track` during `step`: the step is kept whatever its place in the run.
    public func instant(_ track: Track, _ name: String, at time: UInt64, step: Int, args: [String: JSONValue] = [:]) {
        tracks.insert(track)
        current[step, default: []].append(Event(track: track, name: name, start: time, end: nil, args: args))
    }

    /// `step` is over: keeps it or lets it go by the rule above.
    public func endStep(_ step: Int) {
        guard let events = current.removeValue(forKey: step) else { return }
        if step <= keepSteps || events.contains(where: { $0.end == nil }) {
            kept[step, default: []] += events
            return
        }
        kept[step, default: []] += events
        recent.removeAll { $0 == step }  // a step computed again after a rewind: once, at its latest place
        recent.append(step)
        if recent.count > keepSteps {
            let dropped = recent.removeFirst()
            if kept[dropped]?.contains(where: { $0.end == nil }) != true { kept[dropped] = nil }
        }
    }

    /// The steps recorded (for tests and the report).
    public var recordedSteps: [Int] { kept.keys.sorted() }

    /// The trace as JSON (`traceEvents`, microseconds since the run began).
    public func json() -> JSONValue {
        for step in current.keys.sorted() { endStep(step) }
        func micros(_ time: UInt64) -> JSONValue { .real(Double(time &- origin) / 1000) }
        var events: [JSONValue] = [
            .members(["name": .string("process_name"), "ph": .string("M"), "pid": .integer(1), "tid": .integer(0),
                      "args": .members(["name": .string("chorus")])]),
        ]
        for track in tracks.sorted(by: { $0.tid < $1.tid }) {
            events.append(.members(["name": .string("thread_name"), "ph": .string("M"), "pid": .integer(1), "tid": .integer(track.tid),
                                    "args": .members(["name": .string(track.name)])]))
        }
        for step in kept.keys.sorted() {
            for event in kept[step]! {
                var args = event.args
                args["step"] = .integer(step)
                var members: [String: JSONValue] = ["name": .string(event.name), "pid": .integer(1), "tid": .integer(event.track.tid),
                                                    "ts": micros(event.start), "args": .members(args)]
                if let end = event.end {
                    members["ph"] = .string("X")
                    members["dur"] = .real(Double(end - event.start) / 1000)
                } else {
                    members["ph"] = .string("i")
                    members["s"] = .string("g")
                }
                events.append(.members(members))
            }
        }
        return .members(["traceEvents": .array(events), "displayTimeUnit": .string("ms")])
    }
}
