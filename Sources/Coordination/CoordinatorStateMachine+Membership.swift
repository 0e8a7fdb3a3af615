/// Joins, leaves, heartbeats and evictions.
extension CoordinatorStateMachine {
    mutating func join(_ worker: WorkerID, parameterVersion: UInt64?, now: Nanoseconds) -> [CoordinatorAction] {
        guard phase == .waitingForWorkers || phase == .running else {
            return [.reject(worker, reason: "the run is over (\(phase)); nothing to join")]
        }
        var actions: [CoordinatorAction] = []
        if workers[worker] != nil {
            // The same id joining again is a restarted process: whatever it was computing is lost.
            actions += removeWorker(worker, reason: "rejoined", now: now)
        }
        departed[worker] = nil
        workers[worker] = WorkerRecord(lastHeard: now, parameterVersion: parameterVersion, progressAt: now)
        if statistics.workers[worker] == nil { statistics.workers[worker] = WorkerStatistics() }
        zeroWorkersSince = nil
        actions.append(.welcome(worker))
        if phase == .waitingForWorkers, workers.count >= configuration.expectedWorkers {
            phase = .running
            actions.append(.startTraining(workers: liveWorkers))
        } else if current != nil {
            actions += dispatchNeeded(now: now)
        }
        return actions
    }

    mutating func leave(_ worker: WorkerID, now: Nanoseconds) -> [CoordinatorAction] {
        guard workers[worker] != nil else { return [] }
        statistics.leaves += 1
        return removeWorker(worker, reason: "left", now: now)
    }

    mutating func heartbeat(from worker: WorkerID, now: Nanoseconds) -> [CoordinatorAction] {
        if workers[worker] != nil {
            workers[worker]!.lastHeard = now
            return []
        }
        guard phase == .waitingForWorkers || phase == .running else { return [] }
        if let reason = departed[worker] {
            return [.reject(worker, reason: "worker \(worker) was removed from the run (\(reason)); restart it to rejoin")]
        }
        return [.reject(worker, reason: "worker \(worker) never joined this run; send a join first")]
    }

    /// Evicts every worker silent for `workerTimeout` or longer, in id order.
    mutating func evictSilentWorkers(now: Nanoseconds) -> [CoordinatorAction] {
        let timeout = configuration.workerTimeout.clampedNanoseconds
        var actions: [CoordinatorAction] = []
        for worker in liveWorkers {
            let silence = now &- workers[worker]!.lastHeard
            guard now >= workers[worker]!.lastHeard, silence >= timeout else { continue }
            statistics.evictions += 1
            statistics.workers[worker, default: WorkerStatistics()].evictions += 1
            let reason = "silent for \(formatSeconds(silence)) (worker timeout \(formatSeconds(timeout)))"
            actions.append(.evict(worker, reason: reason))
            actions += removeWorker(worker, reason: "evicted: \(reason)", now: now)
        }
        return actions
    }

    /// Forgets a worker and sends its unanswered shards of the current step elsewhere.
    mutating func removeWorker(_ worker: WorkerID, reason: String, now: Nanoseconds) -> [CoordinatorAction] {
        guard let record = workers.removeValue(forKey: worker) else { return [] }
        departed[worker] = reason
        if phase == .running, workers.isEmpty { zeroWorkersSince = now }
        guard current != nil else { return [] }
        for shard in record.inFlight {
            _ = current!.shards[shard].finishAttempt(by: worker)
        }
        var actions = dispatchNeeded(now: now)
        actions += rescueOrAbandonAudit(now: now)
        actions += completeStepIfDone()
        return actions
    }
}
