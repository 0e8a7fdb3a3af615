import Cluster
import Config
import Foundation

/// What a `chorus stress` run found: correctness first, then faults, then performance.
public struct StressReport: JSONReport {
    /// The settings the run used.
    public var settings: StressSettings
    /// Set when the run could not go on (no workers left, say): the reason.
    public var failure: String?
    /// Steps whose S contributions were all aggregated and checked.
    public var stepsCompleted = 0
    /// Steps whose aggregate differed from the expected one in at least one element.
    public var wrongAggregates = 0
    /// Elements that differed, summed over the wrong aggregates.
    public var wrongElements = 0
    /// The first wrong aggregate: step and element index.
    public var firstWrong: (step: Int, index: Int)?
    /// Contributions added to sums (should be steps × S).
    public var contributionsAggregated = 0
    /// Aggregated contributions whose payload differed from what their (step, shard) should hold.
    public var wrongContributions = 0
    /// Wrong contributions per worker slot.
    public var wrongContributionsBySlot: [Int: Int] = [:]
    /// Releases that came out of canonical shard order (should be 0).
    public var outOfOrderReleases = 0
    /// Payloads whose checksum failed (corrupted in transit), each recomputed.
    public var corruptDetected = 0
    /// Messages that could not be used at all (malformed, unknown peer, wrong size).
    public var droppedMessages = 0
    /// Coordination counters: stale, duplicates, reassignments, straggler copies, evictions, leaves, unknown worker, not assigned.
    public var coordination: [String: Int] = [:]
    /// Workers SIGKILLed by `kill` faults, with the step.
    public var kills: [(step: Int, slot: Int)] = []
    /// Worker processes started again after dying.
    public var restarts = 0
    /// Contributions that were node sums of a host agent (span > 1).
    public var nodeSums = 0
    /// Host agents' own counters, latest per agent process: local workers killed and restarted, corrupt local payloads caught.
    public var agentCounters: [UInt32: (kills: Int, restarts: Int, corrupt: Int)] = [:]
    /// Wall-clock seconds from the first step's start to the last step's completion.
    public var seconds = 0.0
    /// Seconds the coordinator spent adding and checking contributions.
    public var aggregationSeconds = 0.0
    /// Gradient payload bytes that went into sums.
    public var aggregatedBytes = 0
    /// Gradient payload bytes received (including corrupt, stale and duplicate ones).
    public var gradientBytesReceived = 0
    /// Of those, bytes read from the shared-memory pool rather than the socket.
    public var sharedGradientBytes = 0
    /// Whether the coordinator made a shared-memory gradient pool (nil: not asked for).
    public var sharedPool: Bool?
    /// All bytes received by the coordinator's socket (frames, headers included).
    public var bytesReceived = 0
    /// All bytes the coordinator sent (work, heartbeats, leaves).
    public var bytesSent = 0
    /// Step latencies.
    public var latencies = StressLatencies()
    /// Coordinator CPU seconds (user, system) over the run.
    public var cpu = (user: 0.0, system: 0.0)
    /// Peak resident memory of the coordinator, bytes.
    public var peakResidentBytes: Int?
    /// Raw libzmq PUSH/PULL throughput for the same message size, GB/s, when measured.
    public var rawGBps: Double?
    /// Whether tc netem is usable, and why not.
    public var netem: (usable: Bool, reason: String) = (false, "not probed")

    /// Makes an empty report for `settings`.
    public init(settings: StressSettings) { self.settings = settings }

    /// Steps that were begun but never completed (or never begun because the run failed).
    public var stepsLost: Int { settings.steps - stepsCompleted }

    /// Whether every aggregate was exact and every step completed (the exit status is 0 then).
    public var passed: Bool { failure == nil && wrongAggregates == 0 && stepsLost == 0 && outOfOrderReleases == 0 }

    /// Aggregation throughput: aggregated gradient bytes per wall-clock second, in GB/s (10^9).
    public var throughputGBps: Double { seconds > 0 ? Double(aggregatedBytes) / seconds / 1e9 : 0 }

    /// The report as JSON-compatible values (`--json FILE`); docs/stress.md lists the fields.
    public var json: JSONValue { JSONValue(any: fields) }

    var fields: [String: Any] {
        var result: [String: Any] = [
            "status": failure != nil ? "failed" : (passed ? "exact" : "wrong"),
            "workers": settings.workers, "params": settings.parameters, "steps": settings.steps,
            "shards": settings.shardCount, "wire_dtype": settings.wireDType.description,
            "reorder_window": settings.window, "faults": settings.faults.map(\.description),
            "steps_completed": stepsCompleted, "steps_lost": stepsLost,
            "wrong_aggregates": wrongAggregates, "wrong_elements": wrongElements,
            "contributions_aggregated": contributionsAggregated, "contributions_expected": settings.steps * settings.shardCount,
            "wrong_contributions": wrongContributions,
            "wrong_contributions_by_worker": Dictionary(uniqueKeysWithValues: wrongContributionsBySlot.map { (String($0.key), $0.value) }),
            "out_of_order_releases": outOfOrderReleases,
            "corrupt_detected": corruptDetected, "dropped_messages": droppedMessages,
            "coordination": coordination,
            "workers_killed": kills.count, "kills": kills.map { ["step": $0.step, "worker": $0.slot] },
            "workers_restarted": restarts,
            "local_workers": settings.localWorkers, "local_faults": settings.localFaults.map(\.description), "node_sums": nodeSums,
            "local_workers_killed": agentCounters.values.reduce(0) { $0 + $1.kills },
            "local_workers_restarted": agentCounters.values.reduce(0) { $0 + $1.restarts },
            "local_corrupt_detected": agentCounters.values.reduce(0) { $0 + $1.corrupt },
            "seconds": seconds, "aggregation_seconds": aggregationSeconds,
            "throughput_gbps": throughputGBps,
            "aggregated_bytes": aggregatedBytes, "gradient_bytes_received": gradientBytesReceived,
            "bytes_received": bytesReceived, "bytes_sent": bytesSent,
            "shared_memory_gradients": sharedPool ?? false, "shared_memory_slots": sharedPool == true ? settings.sharedSlots : 0,
            "shared_memory_gradient_bytes": sharedGradientBytes,
            "step_latency_ms": latencies.summary,
            "cpu_seconds": ["user": cpu.user, "system": cpu.system],
            "memory_bound_bytes": settings.memoryBound,
            "netem": ["usable": netem.usable, "reason": netem.reason],
        ]
        if let failure { result["failure"] = failure }
        if let firstWrong { result["first_wrong"] = ["step": firstWrong.step, "index": firstWrong.index] }
        if let peakResidentBytes {
            result["peak_rss_bytes"] = peakResidentBytes
            result["within_memory_bound"] = peakResidentBytes <= settings.memoryBound
        }
        if let rawGBps {
            result["raw_zmq_gbps"] = rawGBps
            result["ratio_to_raw"] = rawGBps > 0 ? throughputGBps / rawGBps : 0
        }
        return result
    }

    /// The human table printed at the end of a run.
    public var table: String {
        func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        func gb(_ bytes: Int) -> String { String(format: "%.3f GB", Double(bytes) / 1e9) }
        let verdict = failure.map { "FAILED: \($0)" }
            ?? (passed ? "EXACT: every aggregate matched bit for bit, every step completed" : "WRONG: see the counts below")
        var rows: [(String, String)] = [
            ("run", (settings.localWorkers > 0 ? "\(settings.workers) host agents × \(settings.localWorkers) local workers, " : "\(settings.workers) workers, ") + "\(settings.parameters) params, \(settings.steps) steps, \(settings.shardCount) shards, \(settings.wireDType), window \(settings.window)"),
            ("faults", settings.faults.isEmpty && settings.localFaults.isEmpty ? "none"
                : (settings.faults.map(\.description) + settings.localFaults.map { "local \($0)" }).joined(separator: " ")),
            ("verdict", verdict),
            ("steps", "\(stepsCompleted) completed, \(stepsLost) lost"),
            ("aggregates", "\(stepsCompleted) checked, \(wrongAggregates) wrong (\(wrongElements) elements)" + (firstWrong.map { ", first at step \($0.step) element \($0.index)" } ?? "")),
            ("contributions", "\(contributionsAggregated) of \(settings.steps * settings.shardCount) aggregated, \(wrongContributions) wrong"
                + (wrongContributionsBySlot.isEmpty ? "" : " (by worker: " + wrongContributionsBySlot.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ")")
                + ", \(outOfOrderReleases) out of order"),
            ("corrupt payloads", "\(corruptDetected) detected by checksum and recomputed"),
            ("dropped/stale/dup", "\(droppedMessages) dropped, \(coordination["stale", default: 0]) stale, \(coordination["duplicates", default: 0]) duplicates, \(coordination["unknown_worker", default: 0]) from departed workers"),
            ("recovery", "\(coordination["reassignments", default: 0]) reassignments, \(coordination["straggler_copies", default: 0]) straggler copies, \(coordination["evictions", default: 0]) evictions, \(coordination["leaves", default: 0]) leaves"),
            ("workers killed", kills.isEmpty ? "0" : "\(kills.count) (" + kills.map { "worker \($0.slot) at step \($0.step)" }.joined(separator: ", ") + "), \(restarts) restarted"),
        ]
        if settings.localWorkers > 0 {
            let counters = agentCounters.values
            rows.append(("host agents", "\(nodeSums) node sums; local workers \(counters.reduce(0) { $0 + $1.kills }) killed, \(counters.reduce(0) { $0 + $1.restarts }) restarted, "
                         + "\(counters.reduce(0) { $0 + $1.corrupt }) corrupt local payloads recomputed"))
        }
        rows += [
            ("throughput", String(format: "%.2f GB/s aggregated (%@ in %.2f s; adding and checking took %.2f s)", throughputGBps, gb(aggregatedBytes), seconds, aggregationSeconds)),
        ]
        if let rawGBps {
            rows.append(("raw libzmq", String(format: "%.2f GB/s PUSH/PULL, %@ messages: stress is %.0f%% of raw", rawGBps, mib(settings.payloadBytes), rawGBps > 0 ? 100 * throughputGBps / rawGBps : 0)))
        }
        let l = latencies
        rows += [
            ("step latency", String(format: "p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms", l.milliseconds(atPercentile: 50), l.milliseconds(atPercentile: 90), l.milliseconds(atPercentile: 99), l.maximumMilliseconds)),
            ("coordinator CPU", String(format: "%.2f s user, %.2f s system", cpu.user, cpu.system)),
            ("coordinator RSS", peakResidentBytes.map { "peak \(mib($0)), bound (8 + ⌈log₂ S⌉)·P·4 + 64 MiB = \(mib(settings.memoryBound)) (\($0 <= settings.memoryBound ? "within" : "EXCEEDED"))" } ?? "unknown"),
            ("wire", "received \(gb(bytesReceived)) (gradients \(gb(gradientBytesReceived - sharedGradientBytes))), sent \(gb(bytesSent))"),
            ("shared memory", settings.localWorkers > 0 ? "host agents: each has its own pool for its local workers; node sums come over the socket" : sharedPool == true ? "\(gb(sharedGradientBytes)) of gradients through a pool of \(settings.sharedSlots) slots (\(mib(settings.sharedSlots * settings.payloadBytes)))"
                : sharedPool == false ? "pool not available; every gradient over the socket" : "off (--no-shm)"),
            ("tc netem", netem.reason),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}
