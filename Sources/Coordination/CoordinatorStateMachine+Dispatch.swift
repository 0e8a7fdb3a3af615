/// Sending shards to workers: first sends, reassignments, audit copies and parameter tracking.
extension CoordinatorStateMachine {
    /// Sends every shard inside the reorder window that has no result and no copy in flight.
    ///
    /// A shard's first send goes to its planned worker when that one is alive; any other send
    /// (the planned worker is gone, or an earlier copy was lost or corrupt) counts as a
    /// reassignment and goes to the least-loaded live worker, avoiding earlier holders when possible.
    mutating func dispatchNeeded(now: Nanoseconds) -> [CoordinatorAction] {
        guard phase == .running, var step = current, !workers.isEmpty else { return [] }
        current = nil  // edit one copy of the step's arrays, not two
        let upper = min(configuration.shardCount, step.order.next + configuration.effectiveReorderWindow)
        var batches: [WorkerID: [Int]] = [:]
        for shard in step.order.next..<upper {
            let state = step.shards[shard]
            guard state.needed, state.accepted == nil, state.inFlightWorkers.isEmpty else { continue }
            let firstSend = state.attempts.isEmpty
            let target: WorkerID
            if firstSend, let planned = state.plannedWorker, workers[planned] != nil {
                target = planned
            } else if let chosen = leastLoadedWorker(avoiding: Set(state.attempts.map(\.worker))) {
                target = chosen
            } else {
                continue
            }
            if !firstSend { statistics.reassignments += 1 }
            addAttempt(shard: shard, worker: target, step: &step, now: now, batches: &batches)
            if firstSend, var audit = step.audit, audit.shard == shard, !audit.resolved {
                let partner = audit.partner.flatMap { workers[$0] != nil && $0 != target ? $0 : nil }
                    ?? leastLoadedWorker(avoiding: [target], strictly: true)
                if let partner {
                    audit.partner = partner
                    step.audit = audit
                    addAttempt(shard: shard, worker: partner, step: &step, now: now, batches: &batches)
                }
            }
        }
        current = step
        var actions = sendBatches(batches, step: step)
        actions += rescueOrAbandonAudit(now: now)
        return actions
    }

    /// Records one copy of `shard` sent to `worker`; the worker's progress clock starts if it was idle.
    mutating func addAttempt(
        shard: Int, worker: WorkerID, step: inout StepState, now: Nanoseconds, batches: inout [WorkerID: [Int]]
    ) {
        if workers[worker]!.inFlight.isEmpty { workers[worker]!.progressAt = now }
        workers[worker]!.inFlight.insert(shard)
        step.shards[shard].attempts.append(ShardAttempt(worker: worker, sentAt: now))
        batches[worker, default: []].append(shard)
    }

    /// One `sendWork` per worker, in worker order, with parameters only where the worker lacks this version.
    mutating func sendBatches(_ batches: [WorkerID: [Int]], step: StepState) -> [CoordinatorAction] {
        var actions: [CoordinatorAction] = []
        let audited = step.audit.flatMap { $0.resolved ? nil : $0.shard }
        for worker in batches.keys.sorted() {
            let needsParameters = workers[worker]!.parameterVersion != step.parameterVersion
            workers[worker]!.parameterVersion = step.parameterVersion
            let shards = batches[worker]!.sorted()
            actions.append(.sendWork(WorkAssignment(
                worker: worker, step: step.number, shards: shards,
                parameterVersion: step.parameterVersion, includeParameters: needsParameters,
                sumNodes: shards.count > 1 && !shards.contains { $0 == audited }
            )))
        }
        return actions
    }

    /// The live worker with the fewest unanswered shards (ties: lowest id), preferring ones not in `avoiding`.
    ///
    /// With `strictly`, returns nil rather than a worker in `avoiding`.
    func leastLoadedWorker(avoiding: Set<WorkerID>, strictly: Bool = false) -> WorkerID? {
        func best(_ candidates: [WorkerID]) -> WorkerID? {
            candidates.min { a, b in
                let loadA = workers[a]!.inFlight.count, loadB = workers[b]!.inFlight.count
                return loadA != loadB ? loadA < loadB : a < b
            }
        }
        let preferred = workers.keys.filter { !avoiding.contains($0) }
        if let choice = best(preferred) { return choice }
        return strictly ? nil : best(Array(workers.keys))
    }
}
