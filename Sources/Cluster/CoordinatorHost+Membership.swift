#if canImport(Glibc)
import Glibc
#endif
import Coordination
import WireProtocol

/// Membership: the join handshake, id allocation, eviction, and the local processes that die
/// and are replaced.
extension CoordinatorHost {
    func handleJoin(_ join: Join, runID messageRunID: UInt64, peer: PeerID) throws {
        func reject(_ code: RejectCode, _ text: String) {
            logLine("\(workload.logName): refused worker \(join.workerName) (pid \(join.pid)): \(text)")
            try? send(.reject(Reject(code: code, message: text)), to: peer)
            pending[peer] = nil
        }
        guard join.protocolVersion == WireProtocol.protocolVersion else {
            return reject(.versionMismatch, "worker speaks protocol version \(join.protocolVersion), coordinator \(WireProtocol.protocolVersion)")
        }
        guard join.buildVersion == BuildInfo.version else {
            return reject(.versionMismatch, "worker build \(join.buildVersion) differs from coordinator build \(BuildInfo.version)")
        }
        if messageRunID == 0 {
            // Hello: an id (the one asked for when it was never handed out) and the welcome.
            if let member = workersByPeer[peer] {
                // A member that lost contact and starts over: it leaves, and joins anew.
                logLine("\(workload.logName): worker \(member) says hello again (it lost contact); taking it back under a new id")
                forget(member)
                try perform(machine.handle(.workerLeft(member), now: clock()))
            }
            let requested = WorkerID(clamping: max(join.requestedWorkerID, 0))
            var id: WorkerID
            if let again = pending[peer] {
                id = again  // a hello sent again while the welcome was on its way: the same id
            } else if join.requestedWorkerID >= 0, !assignedIDs.contains(requested) { id = requested } else {
                id = nextWorkerID
                while assignedIDs.contains(id) { id += 1 }
                nextWorkerID = id + 1
            }
            assignedIDs.insert(id)
            pending[peer] = id
            let payload = workload.welcomePayload
            try? send(.welcome(Welcome(workerID: id, configJSON: payload.configJSON, configHash: payload.configHash,
                                       heartbeatIntervalMs: UInt32(options.heartbeatMs), timeoutMs: UInt32(options.timeoutMs),
                                       parameterVersion: payload.parameterVersion, kernel: payload.kernel)), to: peer)
            return
        }
        guard messageRunID == options.runID else {
            return reject(.wrongRun, "worker belongs to run \(messageRunID); this coordinator runs \(options.runID)")
        }
        guard !quarantinedProcesses.contains(processKey(peer: peer, pid: join.pid)) else {
            pending[peer] = nil
            return reject(.other, "this worker process was quarantined: an audit proved its results wrong (check its host's memory, data and build)")
        }
        guard let id = pending.removeValue(forKey: peer) else { return reject(.other, "join without a welcome; reconnect") }
        if let (code, text) = workload.refusal(ofReady: join) { return reject(code, text) }
        // A local child by its pid, only over ipc or loopback: a remote peer's pid says nothing here.
        // (libzmq's Peer-Address over ipc is not an IP address: every ipc peer is on this machine.)
        let address = transport.address(of: peer)
        // A child connecting to the bound address of this machine comes from that same address.
        let boundHost = endpoint.hasPrefix("tcp://") ? endpoint.dropFirst(6).split(separator: ":").dropLast().joined(separator: ":") : ""
        let sameMachine = endpoint.hasPrefix("ipc://")
            || (address.map { $0.hasPrefix("127.") || $0 == "::1" || $0 == boundHost } ?? true)
        let slot = sameMachine ? children?.children.first(where: { $0.pid == join.pid })?.index : nil
        members[id] = Member(id: id, peer: peer, pid: join.pid, slot: slot, peerEndpoint: join.peerEndpoint)
        workersByPeer[peer] = id
        transport.trust(peer)
        let host = slot != nil ? HostTraffic.local : transport.address(of: peer) ?? join.workerName
        hostOfPeer[peer] = host
        workersOfHost[host, default: []].insert(id)
        if options.logsJoins { logLine("\(workload.logName): worker \(id) joined (\(join.workerName), pid \(join.pid))") }
        try perform(machine.handle(.workerJoined(id), now: clock()))
    }

    func forget(_ worker: WorkerID) {
        if let member = members.removeValue(forKey: worker) { workersByPeer[member.peer] = nil }
    }

    /// Stops sending work to `worker` and ends its process if it is a local one (the monitor's
    /// answer to a faulty replica).
    package func evict(worker: WorkerID, reason: String) {
        guard let member = members[worker] else { return }
        try? send(.leave(Leave(reason: "evicted: \(reason)")), to: member.peer)
        if member.isLocalChild { children?.signal(member.pid, SIGTERM) }
        forget(worker)
        try? perform(machine.handle(.workerLeft(worker), now: clock()))
    }

    /// Evicts `worker` for good: a refereed audit proved its results wrong. Its process, if a
    /// local one, is not replaced (a new process on the same memory would be no better), and its
    /// process may not join again under a new id.
    package func quarantine(worker: WorkerID, reason: String) {
        guard let member = members[worker] else { return }
        logLine("\(workload.logName): quarantined worker \(worker) (pid \(member.pid)): \(reason)")
        if let slot = member.slot { quarantinedSlots.insert(slot) }
        quarantinedProcesses.insert(processKey(peer: member.peer, pid: member.pid))
        evict(worker: worker, reason: "quarantined: \(reason)")
    }

    /// A process across hosts: its host's address (or its peer, when unknown) and its pid.
    func processKey(peer: PeerID, pid: Int32) -> String {
        "\(transport.address(of: peer) ?? String(describing: peer))/\(pid)"
    }

    /// Notices local workers that died, tells the state machine at once, and starts replacements.
    func watchChildren() throws {
        guard let children else { return }
        for (child, status) in children.reapExited() { try childExited(child, status: status) }
    }

    /// A worker process is gone: its shards go to the others and its slot gets a new process.
    func childExited(_ child: ChildProcesses.Child, status: String) throws {
        // Reaped, so nothing can still write the slots it held.
        gradientPool?.releaseAll(owner: UInt32(bitPattern: child.pid))
        let worker = members.values.first(where: { $0.pid == child.pid && $0.isLocalChild })?.id
        logLine("\(workload.logName): worker process \(child.pid)\(worker.map { " (worker \($0))" } ?? "") \(status)")
        if let worker {
            forget(worker)
            try perform(machine.handle(.workerLeft(worker), now: clock()))
        }
        guard options.respawn, !stopping, interruptSignal == 0, !quarantinedSlots.contains(child.index) else { return }
        if faultKilled.remove(child.pid) == nil {
            unplannedDeaths += 1
            guard unplannedDeaths <= options.respawnBudget else {
                throw RuntimeError.cluster("worker processes keep dying (last: pid \(child.pid) \(status)); giving up after \(unplannedDeaths) deaths that no --fault caused")
            }
        }
        restarts += 1
        try spawn(slot: child.index, requestID: -1)
    }

}
