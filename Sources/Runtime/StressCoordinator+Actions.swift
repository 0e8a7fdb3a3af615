#if canImport(Glibc)
import Glibc
#endif
import Coordination
import Foundation
import Transport
import WireProtocol

extension StressCoordinator: CoordinatorActionHost {
    // The shared action handling is in CoordinatorActionHost.swift; here is what stress does differently.

    var logName: String { "chorus stress" }
    var finishedReason: String { "stress run finished" }
    var heartbeatSequence: UInt64 { 0 }

    func sendMessage(_ message: Message, to peer: PeerID) throws { try send(message, to: peer) }

    /// Stress plans no audits (its configuration leaves `auditEvery` unset); should a pair come, both are freed.
    func audit(_ pair: AuditPair) {
        results[pair.tokenA] = nil
        results[pair.tokenB] = nil
    }

    func freeResult(_ token: ResultToken) { results[token] = nil }

    /// Adds one released result to the sums (the aggregator checks it on the way) and frees it.
    func aggregate(_ aggregation: Aggregation) {
        guard let held = aggregation.retainForAudit ? results[aggregation.token] : results.removeValue(forKey: aggregation.token) else {
            report.outOfOrderReleases += 1  // a token released twice or never given: a ledger error
            return
        }
        let started = monotonicNanos()
        if aggregation.shard != aggregator.added { report.outOfOrderReleases += 1 }
        let wrong = aggregator.add(held.payload, step: aggregation.step, shard: aggregation.shard)
        report.aggregationSeconds += Double(monotonicNanos() - started) / 1e9
        report.contributionsAggregated += 1
        report.aggregatedBytes += held.payload.byteCount
        if wrong > 0 {
            let slot = slots[held.worker] ?? -1
            report.wrongContributions += 1
            report.wrongContributionsBySlot[slot, default: 0] += 1
            if report.wrongContributions <= 5 {
                logLine("chorus stress: step \(aggregation.step) shard \(aggregation.shard) from worker \(slot): \(wrong) wrong values that passed the checksum")
            }
        }
    }

    func sendWork(_ assignment: WorkAssignment) throws {
        guard let peer = peers[assignment.worker] else { return }
        let work = Work(step: UInt64(assignment.step), epoch: 0, stepInEpoch: UInt32(truncatingIfNeeded: assignment.step),
                        parameterVersion: assignment.parameterVersion, shards: assignment.shards.map(UInt32.init),
                        shardCount: UInt32(settings.shardCount), gradientDType: settings.wireDType,
                        parameters: assignment.includeParameters ? parameterPayload : nil)
        do {
            try send(.work(work), to: peer)
            if assignment.includeParameters {
                try perform(machine.handle(.parametersDelivered(assignment.worker, version: assignment.parameterVersion), now: monotonicNanos()))
            }
        } catch {
            logLine("chorus stress: worker \(assignment.worker) unreachable (\(error)); treating it as gone")
            forget(assignment.worker)
            try perform(machine.handle(.workerLeft(assignment.worker), now: monotonicNanos()))
            return
        }
        // kill faults: a real SIGKILL once the worker in that slot holds work for the step (once per step).
        let slot = slots[assignment.worker] ?? -1
        for fault in settings.faults where fault.kind == .kill && fault.worker == slot {
            let due = fault.step == assignment.step || (fault.every.map { assignment.step % $0 == 0 } ?? false)
            guard due, !killed.contains([assignment.step, slot]), let pid = pids[assignment.worker] else { continue }
            killed.insert([assignment.step, slot])
            logLine("chorus stress: fault: SIGKILL worker \(slot) (pid \(pid)) at step \(assignment.step)")
            kill(pid, SIGKILL)
            report.kills.append((assignment.step, slot))
            // A SIGKILLed process is gone at once: reap and replace it now rather than at the
            // next tick, so every kill is followed by a restart, the last step's too.
            if let (child, status) = children.reap(pid: pid) { try childExited(child, status: status) }
        }
    }

    /// Tells the workers the run is over, stops the processes, closes the socket.
    func shutdown() {
        stopping = true
        if machine.phase == .running || machine.phase == .waitingForWorkers {
            try? perform(machine.finish(now: monotonicNanos()))
        }
        for (_, peer) in peers { try? send(.leave(Leave(reason: finishedReason)), to: peer) }
        // Give the workers a moment to read the leave and exit on their own.
        let deadline = monotonicNanos() + 1_000_000_000
        while !children.children.isEmpty && monotonicNanos() < deadline {
            _ = children.reapExited()
            usleep(10_000)
        }
        children.stopAll(grace: 1)
        results.removeAll()
        transport.close()
        if endpoint.hasPrefix("ipc://") { unlink(String(endpoint.dropFirst(6))) }
    }
}
