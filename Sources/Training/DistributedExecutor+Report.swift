import Cluster
import Foundation
import Signals

/// Where a distributed run's coordinator spends its time, in nanoseconds summed over the run.
struct CoordinatorTiming {
    var steps = 0, shards = 0
    var stepNanos: UInt64 = 0, parameterCopyNanos: UInt64 = 0, decodeNanos: UInt64 = 0
    var aggregateNanos: UInt64 = 0, workerComputeNanos: UInt64 = 0
}

extension DistributedExecutor {
    public func reportFields() -> [String: Any] {
        let s = host.machine.statistics
        return [
            "cluster": [
                "evictions": s.evictions, "reassignments": s.reassignments, "straggler_duplicates": s.stragglerDuplicates,
                "duplicates": s.duplicates, "stale": s.stale, "corrupt_payloads": host.corruptPayloads,
                "dropped_messages": host.dropped, "audits": s.auditsCompared, "audit_mismatches": host.auditMismatches,
                "workers_killed": host.kills.count, "workers_restarted": host.restarts,
                "bytes_sent": bytesSent, "bytes_received": bytesReceived,
                "wire_dtype": settings.wireDType.description,
                "shared_memory_parameters": sharedParameters != nil, "shared_memory_bytes": sharedBytes,
                "shared_memory_gradients": gradientPool != nil, "shared_memory_gradient_bytes": sharedGradientBytes,
            ] as [String: Any],
            "timing_ms": timingReport(),
        ]
    }

    /// Mean milliseconds per step (per shard for worker compute) of each part of a step, as the
    /// coordinator saw it; `other` is waiting on workers and the wire beyond their compute.
    func timingReport() -> [String: Any] {
        let steps = Double(max(timing.steps, 1)), shards = Double(max(timing.shards, 1))
        func ms(_ nanos: UInt64, per count: Double) -> Double { (Double(nanos) / 1e6 / count * 1000).rounded() / 1000 }
        let step = ms(timing.stepNanos, per: steps)
        let copy = ms(timing.parameterCopyNanos, per: steps), decode = ms(timing.decodeNanos, per: steps)
        let aggregate = ms(timing.aggregateNanos, per: steps)
        let compute = ms(timing.workerComputeNanos, per: shards)
        return [
            "step_exchange": step, "parameter_copy": copy, "gradient_decode": decode, "aggregation": aggregate,
            "worker_compute_per_shard": compute,
            "waiting_on_workers_and_wire": max(0, ((step - copy - decode - aggregate) * 1000).rounded() / 1000),
            "steps": timing.steps,
        ]
    }
}
