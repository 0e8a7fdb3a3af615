/// Everything `tick` checks: start and no-worker timeouts, evictions, heartbeats, stragglers, late audits.
extension CoordinatorStateMachine {
    mutating func tick(now: Nanoseconds) -> [CoordinatorAction] {
        switch phase {
        case .finished, .failed:
            return []
        case .waitingForWorkers:
            var actions = evictSilentWorkers(now: now)
            let waited = now &- createdAt
            if now >= createdAt, waited >= configuration.startTimeout.clampedNanoseconds {
                return actions + fail(.startTimeout(
                    joined: workers.count, expected: configuration.expectedWorkers, waitedNanoseconds: waited))
            }
            actions += sendHeartbeatsIfDue(now: now)
            return actions
        case .running:
            var actions = evictSilentWorkers(now: now)
            if workers.isEmpty, let since = zeroWorkersSince, now >= since,
               now - since >= configuration.noWorkerTimeout.clampedNanoseconds {
                return actions + fail(.noWorkers(forNanoseconds: now - since, step: current?.number))
            }
            actions += sendHeartbeatsIfDue(now: now)
            actions += duplicateStragglers(now: now)
            actions += abandonLateAudit(now: now)
            return actions
        }
    }

    mutating func sendHeartbeatsIfDue(now: Nanoseconds) -> [CoordinatorAction] {
        guard now >= lastHeartbeatSent, now - lastHeartbeatSent >= configuration.heartbeatInterval.clampedNanoseconds
        else { return [] }
        lastHeartbeatSent = now
        return workers.isEmpty ? [] : [.heartbeat(to: liveWorkers)]
    }

    /// Copies each unanswered shard of a worker that made no progress within the straggler deadline
    /// to an idle live worker that has not had that shard; at most one copy per shard and step.
    mutating func duplicateStragglers(now: Nanoseconds) -> [CoordinatorAction] {
        guard var step = current, !step.order.isComplete else { return [] }
        let deadline = stragglerDeadlineNanoseconds
        var batches: [WorkerID: [Int]] = [:]
        for worker in liveWorkers {
            let record = workers[worker]!
            guard !record.inFlight.isEmpty, now >= record.progressAt, now - record.progressAt >= deadline else { continue }
            for shard in record.inFlight.sorted() where step.shards[shard].accepted == nil && !step.shards[shard].duplicated {
                let helper = liveWorkers.first { candidate in
                    workers[candidate]!.inFlight.isEmpty && !step.shards[shard].hasAttempt(by: candidate)
                }
                guard let helper else { break }
                step.shards[shard].duplicated = true
                statistics.stragglerDuplicates += 1
                addAttempt(shard: shard, worker: helper, step: &step, now: now, batches: &batches)
            }
        }
        current = step
        return sendBatches(batches, step: step)
    }

    /// Abandons the audit when every shard is aggregated and the remaining audit copies are past the straggler deadline.
    mutating func abandonLateAudit(now: Nanoseconds) -> [CoordinatorAction] {
        guard let step = current, step.order.isComplete, let audit = step.audit, !audit.resolved else { return [] }
        let deadline = stragglerDeadlineNanoseconds
        let waiting = step.shards[audit.shard].inFlightWorkers.compactMap { workers[$0] }
        let late = waiting.allSatisfy { now >= $0.progressAt && now - $0.progressAt >= deadline }
        guard late else { return [] }
        return abandonAudit() + completeStepIfDone()
    }

    /// Ends the run with `error`: cleans up and emits `fail` last.
    mutating func fail(_ error: CoordinationError) -> [CoordinatorAction] {
        phase = .failed
        return endRun() + [.fail(error)]
    }

    /// Discards every held result, releases a retained audit token, and shuts the live workers down.
    mutating func endRun() -> [CoordinatorAction] {
        var actions: [CoordinatorAction] = []
        if var step = current {
            for held in step.order.drain() {
                actions.append(.discard(Discard(worker: held.payload.worker, step: step.number, shard: held.index,
                                                token: held.payload.token, reason: .runEnded)))
            }
            current = step
            actions += abandonAudit()
            current = nil
        }
        for id in workers.keys { workers[id]!.inFlight = [] }
        if !workers.isEmpty { actions.append(.shutdown(to: liveWorkers)) }
        return actions
    }
}
