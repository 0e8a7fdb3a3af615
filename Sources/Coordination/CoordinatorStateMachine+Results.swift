/// Shard results: exactly-once acceptance, in-order release, audits and step completion.
extension CoordinatorStateMachine {
    mutating func receiveResult(
        from worker: WorkerID, step number: Int, shards: Range<Int>, token: ResultToken, now: Nanoseconds
    ) -> [CoordinatorAction] {
        func drop(_ reason: DropReason) -> [CoordinatorAction] {
            [.discard(Discard(worker: worker, step: number, shard: shards.lowerBound, token: token, reason: reason))]
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
        guard shards.lowerBound >= 0, shards.upperBound <= configuration.shardCount,
              shards.allSatisfy({ step.shards[$0].hasAttempt(by: worker) }), shards.count == 1 || tree.isNode(shards) else {
            statistics.notAssigned += 1
            return drop(.notAssigned)
        }
        finishAttempts(by: worker, shards: shards, now: now, recordLatency: true)
        let result = AcceptedResult(worker: worker, token: token)
        var actions: [CoordinatorAction] = []
        if shards.count > 1 {
            // A node's sum is used whole or not at all: when one of its shards already has a result
            // (a straggler copy won) or is audited, the others are computed again, one by one.
            let audited = step.audit.flatMap { $0.resolved ? nil : $0.shard }
            guard !shards.contains(where: { step.shards[$0].accepted != nil || $0 == audited }) else {
                statistics.duplicates += 1
                return drop(.duplicate) + dispatchNeeded(now: now) + rescueOrAbandonAudit(now: now) + completeStepIfDone()
            }
        }
        let shard = shards.lowerBound
        if shards.count == 1, let accepted = current!.shards[shard].accepted {
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
            var released: [(index: Int, payload: AcceptedResult)] = []
            for shard in shards {
                current!.shards[shard].accepted = result
                statistics.workers[worker, default: WorkerStatistics()].shardsComputed += 1
                if current!.audit?.shard == shard { current!.audit!.first = result }
                released += current!.order.insert(shard, result)
            }
            actions += aggregations(of: released, step: number)
            actions += emitAuditPairIfReady()
            actions += dispatchNeeded(now: now)
        }
        actions += rescueOrAbandonAudit(now: now)
        actions += completeStepIfDone()
        return actions
    }

    /// Marks `worker`'s copies of `shards` answered, recording its latency once.
    mutating func finishAttempts(by worker: WorkerID, shards: Range<Int>, now: Nanoseconds, recordLatency: Bool) {
        var recorded = !recordLatency
        for shard in shards where current!.shards[shard].finishAttempt(by: worker) {
            if !recorded {
                recorded = true
                let latency = now &- workers[worker]!.progressAt
                if now >= workers[worker]!.progressAt {
                    latencies.record(latency)
                    statistics.workers[worker, default: WorkerStatistics()].lastLatency =
                        .nanoseconds(Int64(clamping: latency))
                }
            }
            workers[worker]!.inFlight.remove(shard)
            workers[worker]!.progressAt = now
        }
    }

    /// One `aggregate` per released result: the shards of one node sum (same token) go as one.
    mutating func aggregations(of released: [(index: Int, payload: AcceptedResult)], step number: Int) -> [CoordinatorAction] {
        var actions: [CoordinatorAction] = []
        for entry in released {
            if case .aggregate(var last) = actions.last, last.token == entry.payload.token, last.shards.upperBound == entry.index {
                last.span += 1
                actions[actions.count - 1] = .aggregate(last)
                continue
            }
            var retain = false
            if var audit = current!.audit, audit.shard == entry.index, !audit.resolved {
                audit.firstAggregated = true
                current!.audit = audit
                retain = true
            }
            actions.append(.aggregate(Aggregation(
                step: number, shard: entry.index, token: entry.payload.token,
                worker: entry.payload.worker, retainForAudit: retain
            )))
        }
        return actions
    }

    mutating func receiveCorrupt(from worker: WorkerID, step number: Int, shards: Range<Int>, now: Nanoseconds) -> [CoordinatorAction] {
        statistics.corrupt += 1
        statistics.workers[worker]?.corrupt += 1  // only workers that ever joined have an entry
        guard workers[worker] != nil else { return [] }
        workers[worker]!.lastHeard = now
        guard phase == .running, let step = current, step.number == number,
              shards.lowerBound >= 0, shards.upperBound <= configuration.shardCount,
              shards.allSatisfy({ step.shards[$0].hasAttempt(by: worker) })
        else { return [] }
        finishAttempts(by: worker, shards: shards, now: now, recordLatency: false)
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
