import Cluster
import Config
import Foundation

/// One line of metrics.jsonl: the step's own numbers, then what the monitor adds (its signals,
/// probe results), under the names docs/operations.md lists.
public struct MetricsRow: JSONReport {
    public var step: Int, epoch: Int
    public var loss: Double, accuracy: Double, gradNorm: Double
    public var clipped: Bool
    public var learningRate: Double
    public var samplesPerSecond: Double
    public var workers: Int
    /// Fields added by the monitor hook-up, by name.
    public var extra: [String: JSONValue] = [:]

    public var json: JSONValue {
        var members: [String: JSONValue] = extra
        members["step"] = .integer(step)
        members["epoch"] = .integer(epoch)
        members["loss"] = .real(loss)
        members["accuracy"] = .real(accuracy)
        members["grad_norm"] = .real(gradNorm)
        members["clipped"] = .bool(clipped)
        members["lr"] = .real(learningRate)
        members["samples_per_s"] = .real(samplesPerSecond)
        members["workers"] = .integer(workers)
        return .members(members)
    }
}

/// report.json (../shared/CONTRACT.md): how the run ended, its result and hash, what the
/// cluster and the monitor saw.
public struct RunReport: JSONReport {
    public var status = "completed"
    public var error: String?
    public var steps = 0, epochs = 0, workers = 0, shards = 0, parameters = 0
    public var finalLoss = Double.nan
    public var testAccuracy: Double?, testLoss: Double?
    public var samplesPerSecond = 0.0
    public var paramsSHA256 = ""
    public var blasCore = ""
    public var runID: UInt64 = 0
    public var updateMsPerStep = 0.0
    /// The process's CPU time in the training steps (compute, aggregation, update), per step: unlike
    /// `samples_per_s` it does not count time the machine gave to others (a VM's steal, a busy host).
    public var cpuMsPerStep = 0.0
    /// Settings that differ from the resumed checkpoint's (`--resume-changed`).
    public var resumeChanges: [String] = []
    /// The coordinator's counters and timing (distributed runs only).
    public var cluster: ClusterReport?
    /// `collapse`, `alerts`, `monitor_policy`: the monitor's verdict (a quiet default without it).
    public var monitor: [String: JSONValue] = [
        "collapse": .members(["detected": .bool(false), "step": .null, "cause": .null, "causes": .array([]), "replica": .null]),
        "alerts": .array([]),
    ]

    public var json: JSONValue {
        var members = monitor
        members["status"] = .string(status)
        if let error { members["error"] = .string(error) }
        members["steps"] = .integer(steps)
        members["epochs"] = .integer(epochs)
        members["workers"] = .integer(workers)
        members["shards"] = .integer(shards)
        members["final_loss"] = .real(finalLoss)
        members["test_accuracy"] = testAccuracy.map(JSONValue.real) ?? .null
        members["test_loss"] = testLoss.map(JSONValue.real) ?? .null
        members["samples_per_s"] = .real(samplesPerSecond)
        members["params_sha256"] = .string(paramsSHA256)
        members["parameters"] = .integer(parameters)
        members["blas_core"] = .string(blasCore)
        members["run_id"] = .string(String(runID))
        members["update_ms_per_step"] = .real(updateMsPerStep)
        members["cpu_ms_per_step"] = .real(cpuMsPerStep)
        if !resumeChanges.isEmpty { members["resume_changes"] = .array(resumeChanges.map(JSONValue.string)) }
        if let cluster {
            members["cluster"] = cluster.counters
            members["timing_ms"] = cluster.timing.json
        }
        return .members(members)
    }
}

/// What the coordinator of a distributed run counted: report.json's `cluster` and `timing_ms`.
public struct ClusterReport {
    public var evictions = 0, reassignments = 0, stragglerDuplicates = 0, duplicates = 0, stale = 0
    public var corruptPayloads = 0, droppedMessages = 0, audits = 0, auditMismatches = 0
    /// Connections closed for holding too much input without a complete message (tcp only).
    public var connectionsClosed = 0
    public var workersKilled = 0, workersRestarted = 0
    public var bytesSent = 0, bytesReceived = 0
    public var wireDType = "fp32"
    /// How the coordinator's socket traffic was protected: none, curve (all through libzmq's
    /// CURVE) or curve+aes-256-gcm (CURVE handshake, sealed bulk channel).
    public var encryption = "none"
    /// Sealed bulk-channel sessions handed out: hellos answered (a connection's first, and each re-seal).
    public var sealedSessions = 0
    public var sharedMemoryParameters = false, sharedMemoryBytes = 0
    public var sharedMemoryGradients = false, sharedMemoryGradientBytes = 0
    public var timing = TimingReport()
    /// Wire bytes by worker host, and the largest (sent + received) per step of any host.
    public var hosts: [HostReport] = []
    public var maxHostBytesPerStep = 0.0
    /// The busiest host's bytes out (to the coordinator and, with chunk owners, to other agents)
    /// and in, per step.
    public var maxHostBytesOutPerStep = 0.0, maxHostBytesInPerStep = 0.0
    /// Workers a refereed audit proved wrong, and the global steps computed again after going back.
    public var quarantined: [QuarantineReport] = []
    public var recomputedSteps = 0

    /// A quarantined worker: the audit that proved it wrong and the state the run went back to.
    public struct QuarantineReport: Sendable {
        public var worker: Int, step: Int, shard: Int
        /// The step whose state the run restored (nil: none of the worker's results had been summed).
        public var rewoundTo: Int?
        var json: JSONValue {
            .members(["worker": .integer(worker), "step": .integer(step), "shard": .integer(shard),
                      "rewound_to_step": rewoundTo.map { .integer($0) } ?? .null])
        }
    }

    /// One worker host's traffic with the coordinator.
    /// What one worker did: shards computed, its compute time, its waits at the end of steps.
    public struct WorkerReport: Sendable {
        public var worker: Int
        public var shards = 0
        public var computeMsPerShard = 0.0, waitMs = 0.0
        public var evictions = 0
        var json: JSONValue {
            .members(["worker": .integer(worker), "shards": .integer(shards), "compute_ms_per_shard": .real(computeMsPerShard),
                      "wait_ms": .real(waitMs), "evictions": .integer(evictions)])
        }
    }
    public var workers: [WorkerReport] = []

    public struct HostReport: Sendable {
        public var host: String
        public var bytesSent = 0, bytesReceived = 0, workers = 0
        /// With chunk owners: what the host's agent sent to and received from other agents.
        public var peerBytesSent = 0, peerBytesReceived = 0
        var json: JSONValue {
            var members: [(key: String, value: JSONValue)] = [("host", .string(host)), ("bytes_sent", .integer(bytesSent)),
                                                              ("bytes_received", .integer(bytesReceived)), ("workers", .integer(workers))]
            if peerBytesSent + peerBytesReceived > 0 {
                members += [("peer_bytes_sent", .integer(peerBytesSent)), ("peer_bytes_received", .integer(peerBytesReceived))]
            }
            return .object(members)
        }
    }

    var counters: JSONValue {
        .members([
            "hosts": .array(hosts.map(\.json)), "workers": .array(workers.map(\.json)), "max_host_bytes_per_step": .real(maxHostBytesPerStep),
            "max_host_bytes_out_per_step": .real(maxHostBytesOutPerStep), "max_host_bytes_in_per_step": .real(maxHostBytesInPerStep),
            "evictions": .integer(evictions), "reassignments": .integer(reassignments),
            "straggler_duplicates": .integer(stragglerDuplicates), "duplicates": .integer(duplicates), "stale": .integer(stale),
            "corrupt_payloads": .integer(corruptPayloads), "dropped_messages": .integer(droppedMessages),
            "connections_closed": .integer(connectionsClosed),
            "audits": .integer(audits), "audit_mismatches": .integer(auditMismatches),
            "quarantined": .array(quarantined.map(\.json)), "recomputed_steps": .integer(recomputedSteps),
            "workers_killed": .integer(workersKilled), "workers_restarted": .integer(workersRestarted),
            "bytes_sent": .integer(bytesSent), "bytes_received": .integer(bytesReceived), "wire_dtype": .string(wireDType),
            "encryption": .string(encryption), "sealed_sessions": .integer(sealedSessions),
            "shared_memory_parameters": .bool(sharedMemoryParameters), "shared_memory_bytes": .integer(sharedMemoryBytes),
            "shared_memory_gradients": .bool(sharedMemoryGradients), "shared_memory_gradient_bytes": .integer(sharedMemoryGradientBytes),
        ])
    }
}

/// Mean milliseconds per step (per shard for worker compute) of each part of a step, as the
/// coordinator saw it: report.json's `timing_ms`.
public struct TimingReport: JSONReport {
    public var stepExchange = 0.0, parameterCopy = 0.0, gradientDecode = 0.0, aggregation = 0.0
    public var workerComputePerShard = 0.0
    public var steps = 0
    /// Waiting on workers and the wire beyond the coordinator's own work.
    public var waitingOnWorkersAndWire: Double { max(0, ((stepExchange - parameterCopy - gradientDecode - aggregation) * 1000).rounded() / 1000) }

    public var json: JSONValue {
        .members([
            "step_exchange": .real(stepExchange), "parameter_copy": .real(parameterCopy), "gradient_decode": .real(gradientDecode),
            "aggregation": .real(aggregation), "worker_compute_per_shard": .real(workerComputePerShard),
            "waiting_on_workers_and_wire": .real(waitingOnWorkersAndWire), "steps": .integer(steps),
        ])
    }
}
