/// Shard results: exactly-once acceptance, in-order release, audits and step completion.
extension CoordinatorStateMachine {
    mutating func receiveResult(
        from worker: WorkerID, step number: Int, shard: Int, token: ResultToken, now: Nanoseconds
    ) -> [CoordinatorAction] {
        func drop(_ reason: DropReason) -> [CoordinatorAction] {
            [.discard(Discard(worker: worker, step: number, shard: shard, token: token, reason: reason))]
        }
        guard workers[worker] != nil else {
            statistics.unknownWorker += 1
            return drop(departed[worker] != nil ? .departedWorker : .unknownWorker)
        }
        workers[worker]!.lastHeard = now
        guard phase == .running, let step = current, step.number == number else {
            statistics.stale += 1
            if workers[worker]!.inFlight.isEmpty == false { workers[worker]!.progressAt = now }
            return drop(.wrongStep(current: current?.number))
        }
        guard shard >= 0, shard < configuration.shardCount, step.shards[shard].hasAttempt(by: worker) else {
            statistics.notAssigned += 1
            return drop(.notAssigned)
        }
        if current!.shards[shard].finishAttempt(by: worker) {
            let latency = now &- workers[worker]!.progressAt
            if now >= workers[worker]!.progressAt {
                latencies.record(latency)
                statistics.workers[worker, default: WorkerStatistics()].lastLatency =
                    .nanoseconds(Int64(clamping: latency))
            }
            workers[worker]!.inFlight.remove(shard)
            workers[worker]!.progressAt = now
        }
        let result = AcceptedResult(worker: worker, token: token)
        var actions: [CoordinatorAction] = []
        if let accepted = current!.shards[shard].accepted {
            if var audit = current!.audit, audit.shard == shard, !audit.resolved, audit.second == nil,
               accepted.worker != worker {
                audit.second = result
                current!.audit = audit
                statistics.workers[worker, default: WorkerStatistics()].shardsComputed += 1
                actions += emitAuditPairIfReady()
            } else {
                statistics.duplicates += 1
                return drop(.duplicate)
            }
        } else {
            current!.shards[shard].accepted = result
            statistics.workers[worker, default: WorkerStatistics()].shardsComputed += 1
            if current!.audit?.shard == shard { current!.audit!.first = result }
            for released in current!.order.insert(shard, result) {
                var retain = false
                if var audit = current!.audit, audit.shard == released.index, !audit.resolved {
                    audit.firstAggregated = true
                    current!.audit = audit
                    retain = true
                }
                actions.append(.aggregate(Aggregation(
                    step: number, shard: released.index, token: released.payload.token,
                    worker: released.payload.worker, retainForAudit: retain
                )))
            }
            actions += emitAuditPairIfReady()
            actions += dispatchNeeded(now: now)
        }
        actions += rescueOrAbandonAudit(now: now)
        actions += completeStepIfDone()
        return actions
    }

    mutating func receiveCorrupt(from worker: WorkerID, step number: Int, shard: Int, now: Nanoseconds) -> [CoordinatorAction] {
        statistics.corrupt += 1
        statistics.workers[worker]?.corrupt += 1  // only workers that ever joined have an entry
        guard workers[worker] != nil else { return [] }
        workers[worker]!.lastHeard = now
        guard phase == .running, let step = current, step.number == number,
              shard >= 0, shard < configuration.shardCount, step.shards[shard].hasAttempt(by: worker)
        else { return [] }
        if current!.shards[shard].finishAttempt(by: worker) {
            workers[worker]!.inFlight.remove(shard)
            workers[worker]!.progressAt = now
        }
        var actions = dispatchNeeded(now: now)
        actions += rescueOrAbandonAudit(now: now)
        actions += completeStepIfDone()
        return actions
    }

    /// Reports the audit pair once the first result was aggregated and a second from another worker is in.
    mutating func emitAuditPairIfReady() -> [CoordinatorAction] {
        guard let step = current, var audit = step.audit, !audit.resolved, audit.firstAggregated,
              let first = audit.first, let second = audit.second
        else { return [] }
        audit.resolved = true
        current!.audit = audit
        statistics.auditsCompared += 1
        return [.auditPair(AuditPair(
            step: step.number, shard: audit.shard,
            workerA: first.worker, tokenA: first.token, workerB: second.worker, tokenB: second.token
        ))]
    }

    /// When fewer than two distinct workers can still supply the audit's results, sends one more
    /// copy to a live worker that has not had the shard (once per step), else abandons the audit.
    mutating func rescueOrAbandonAudit(now: Nanoseconds) -> [CoordinatorAction] {
        guard phase == .running, var step = current, var audit = step.audit, !audit.resolved else { return [] }
        let shard = step.shards[audit.shard]
        guard !shard.attempts.isEmpty else { return [] }
        var possible = Set(shard.inFlightWorkers.filter { workers[$0] != nil })
        if let first = audit.first { possible.insert(first.worker) }
        if let second = audit.second { possible.insert(second.worker) }
        guard possible.count < 2 else { return [] }
        let tried = Set(shard.attempts.map(\.worker))
        if !audit.retried, let helper = leastLoadedWorker(avoiding: tried.union(possible), strictly: true) {
            audit.retried = true
            step.audit = audit
            var batches: [WorkerID: [Int]] = [:]
            addAttempt(shard: audit.shard, worker: helper, step: &step, now: now, batches: &batches)
            current = step
            return sendBatches(batches, step: step)
        }
        return abandonAudit()
    }

    /// Gives up on the current step's audit and releases the retained token, if any.
    mutating func abandonAudit() -> [CoordinatorAction] {
        guard let step = current, var audit = step.audit, !audit.resolved else { return [] }
        audit.resolved = true
        current!.audit = audit
        statistics.auditsAbandoned += 1
        let retained = audit.firstAggregated ? audit.first?.token : nil
        var actions: [CoordinatorAction] = [.auditAbandoned(step: step.number, shard: audit.shard, retainedToken: retained)]
        if let second = audit.second {
            // Only reachable when the first result never got aggregated (the run is ending).
            actions.append(.discard(Discard(worker: second.worker, step: step.number, shard: audit.shard,
                                            token: second.token, reason: .runEnded)))
        }
        return actions
    }

    /// Emits `stepComplete` once every shard was aggregated and the audit is resolved.
    mutating func completeStepIfDone() -> [CoordinatorAction] {
        guard let step = current, step.isComplete else { return [] }
        current = nil
        lastCompletedStep = step.number
        statistics.stepsCompleted += 1
        for id in workers.keys { workers[id]!.inFlight = [] }
        return [.stepComplete(step: step.number)]
    }
}
