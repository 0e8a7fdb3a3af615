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
    public var clusterReport: ClusterReport? {
        let s = host.machine.statistics
        var report = ClusterReport()
        report.evictions = s.evictions
        report.reassignments = s.reassignments
        report.stragglerDuplicates = s.stragglerDuplicates
        report.duplicates = s.duplicates
        report.stale = s.stale
        report.corruptPayloads = host.corruptPayloads
        report.droppedMessages = host.dropped
        report.connectionsClosed = host.guardDrops
        report.sealedSessions = host.sealedSessions
        report.audits = s.auditsCompared
        report.auditMismatches = host.auditMismatches
        report.workersKilled = host.kills.count
        report.workersRestarted = host.restarts
        report.bytesSent = bytesSent
        report.bytesReceived = bytesReceived
        report.wireDType = settings.wireDType.description
        report.encryption = settings.curve == nil ? "none" : settings.curveBulk == .off ? "curve" : "curve+aes-256-gcm"
        report.sharedMemoryParameters = sharedParameters != nil
        report.sharedMemoryBytes = sharedBytes
        report.sharedMemoryGradients = gradientPool != nil
        report.sharedMemoryGradientBytes = sharedGradientBytes
        report.timing = timingReport()
        report.quarantined = quarantines.map {
            ClusterReport.QuarantineReport(worker: Int($0.worker), step: $0.step, shard: $0.shard, rewoundTo: $0.rewoundTo)
        }
        report.recomputedSteps = recomputedSteps
        report.workers = workerStats.keys.sorted().map { id in
            let stats = workerStats[id]!
            return ClusterReport.WorkerReport(worker: Int(id), shards: stats.shards,
                                              computeMsPerShard: (Double(stats.computeNanos) / 1e6 / Double(max(stats.shards, 1)) * 1000).rounded() / 1000,
                                              waitMs: (Double(stats.waitNanos) / 1e6).rounded(), evictions: host.evictionsByWorker[id] ?? 0)
        }
        let traffic = host.traffic
        report.hosts = traffic.keys.sorted().map { name in
            ClusterReport.HostReport(host: name, bytesSent: traffic[name]!.bytesSent, bytesReceived: traffic[name]!.bytesReceived,
                                     workers: traffic[name]!.workers.count, peerBytesSent: traffic[name]!.peerBytesSent,
                                     peerBytesReceived: traffic[name]!.peerBytesReceived)
        }
        let steps = Double(max(timing.steps, 1))
        // A host's own view: what the coordinator received from it went out of it, and so on.
        let out = traffic.values.map { Double($0.bytesReceived + $0.peerBytesSent) }
        let into = traffic.values.map { Double($0.bytesSent + $0.peerBytesReceived) }
        report.maxHostBytesPerStep = ((zip(out, into).map { $0 + $1 }.max() ?? 0) / steps).rounded()
        report.maxHostBytesOutPerStep = ((out.max() ?? 0) / steps).rounded()
        report.maxHostBytesInPerStep = ((into.max() ?? 0) / steps).rounded()
        return report
    }

    func timingReport() -> TimingReport {
        let steps = Double(max(timing.steps, 1)), shards = Double(max(timing.shards, 1))
        func ms(_ nanos: UInt64, per count: Double) -> Double { (Double(nanos) / 1e6 / count * 1000).rounded() / 1000 }
        var report = TimingReport()
        report.stepExchange = ms(timing.stepNanos, per: steps)
        report.parameterCopy = ms(timing.parameterCopyNanos, per: steps)
        report.gradientDecode = ms(timing.decodeNanos, per: steps)
        report.aggregation = ms(timing.aggregateNanos, per: steps)
        report.workerComputePerShard = ms(timing.workerComputeNanos, per: shards)
        report.steps = timing.steps
        return report
    }
}
