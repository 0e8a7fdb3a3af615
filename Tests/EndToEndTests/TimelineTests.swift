import Foundation
import ProcessTestSupport
import Testing

/// OUT/timeline.json: Chrome trace events Perfetto opens — a track per worker, compute spans
/// that add up to the report's compute time, bounded to the first/last steps and event steps.
@Suite(.serialized, .needsFashionMNIST)
struct TimelineTests {
    func trace(_ out: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/timeline.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(root["traceEvents"] as? [[String: Any]])
    }

    @Test func everyWorkerHasATrackAndItsComputeSpansAddUpToTheReport() throws {
        let out = Chorus.temporaryDirectory("timeline")
        let run = try Chorus.run(Chorus.shortRun(out: out, steps: 40) + ["--workers", "2"])
        #expect(run.status == 0, "\(run.error)")
        let events = try trace(out)
        let names = Set(events.filter { $0["name"] as? String == "thread_name" }.compactMap { ($0["args"] as? [String: Any])?["name"] as? String })
        #expect(names == ["coordinator", "worker 0", "worker 1"], "\(names)")
        let spans = events.filter { $0["ph"] as? String == "X" }
        for name in ["update", "monitor", "aggregate", "receive/check", "evaluate", "checkpoint", "work in flight", "wait"] {
            #expect(spans.contains { $0["name"] as? String == name }, "no \(name) span")
        }
        let compute = spans.filter { $0["name"] as? String == "compute" }
        let shards = compute.reduce(0) { $0 + (($1["args"] as? [String: Any])?["shard_count"] as? Int ?? 0) }
        let microseconds = compute.reduce(0.0) { $0 + ($1["dur"] as? Double ?? 0) }
        #expect(shards >= 40 * 4, "\(shards) shards in compute spans")
        let report = try Chorus.report(out)
        let perShard = try #require((report["timing_ms"] as? [String: Any])?["worker_compute_per_shard"] as? Double)
        let spansPerShard = microseconds / 1000 / Double(shards)
        #expect(abs(spansPerShard - perShard) <= 0.1 * perShard, "spans \(spansPerShard) ms per shard, report \(perShard)")
        // Spans lie within their step and workers' tracks hold only their own work.
        #expect(compute.allSatisfy { ($0["tid"] as? Int ?? 0) >= 1 })
    }

    @Test func aLongRunKeepsItsFirstAndLastStepsAndEveryStepWithAnEvent() throws {
        let out = Chorus.temporaryDirectory("timeline-bounded")
        let run = try Chorus.run(Chorus.shortRun(out: out, steps: 120)
            + ["--workers", "2", "--timeline-steps", "10", "--fault", "kill:worker=1,step=60"])
        #expect(run.status == 0, "\(run.error)")
        let events = try trace(out)
        let steps = Set(events.compactMap { ($0["args"] as? [String: Any])?["step"] as? Int })
        #expect(steps.isSuperset(of: Set(1...10)) && steps.isSuperset(of: Set(111...120)), "\(steps.sorted())")
        let instants = events.filter { $0["ph"] as? String == "i" }
        let restart = try #require(instants.first { $0["name"] as? String == "restart" }, "no restart instant: \(instants)")
        let eventStep = try #require((restart["args"] as? [String: Any])?["step"] as? Int)
        #expect((58...64).contains(eventStep), "restart at step \(eventStep)")
        // Nothing else of the middle: the steps kept are the two ends and the event steps.
        let middle = steps.filter { $0 > 10 && $0 <= 110 }
        #expect(middle.count <= instants.count, "kept middle steps \(middle.sorted()) for \(instants.count) events")
        let none = Chorus.temporaryDirectory("timeline-none")
        _ = try Chorus.run(Chorus.shortRun(out: none, steps: 2) + ["--timeline-steps", "0"])
        #expect(!FileManager.default.fileExists(atPath: none + "/timeline.json"))
    }
}

/// The live progress line: redrawn in place on a terminal, plain periodic lines in a log, none with --quiet.
@Suite(.serialized, .needsFashionMNIST)
struct ProgressLineTests {
    let run = ["train", "--max-steps", "1500", "--batch-size", "64", "--workers", "2"]

    @Test func aLogGetsPlainLinesWithETAAndWorkers() throws {
        let out = Chorus.temporaryDirectory("progress")
        let result = try Chorus.run(run + ["--out", out])
        #expect(result.status == 0, "\(result.error)")
        let lines = result.error.split(separator: "\n").filter { $0.contains(" step ") && $0.contains("/1500") }
        #expect(!lines.isEmpty, "\(result.error)")
        #expect(lines.allSatisfy { $0.contains("samples/s ETA ") && $0.hasSuffix("2 workers") && !$0.contains("\r") }, "\(lines)")
        let quiet = try Chorus.run(run + ["--out", out + "-quiet", "--quiet"])
        #expect(!quiet.error.contains("ETA"), "\(quiet.error)")
    }

    @Test func aTerminalGetsOneLineRedrawnInPlace() throws {
        // `script` gives the run a pseudo-terminal.
        let out = Chorus.temporaryDirectory("progress-tty")
        let command = ([Chorus.binary] + run + ["--out", out]).joined(separator: " ")
        let result = try ChildProcess.run("/bin/sh", ["-c", "script -qec '\(command)' /dev/null"], timeout: 300, mergeOutput: true)
        #expect(result.end.status == 0, "\(result.output)")
        #expect(result.output.contains("\r\u{1B}[2Kepoch 1/"), "\(result.output.prefix(400))")
        #expect(result.output.contains(" ETA "))
    }
}
