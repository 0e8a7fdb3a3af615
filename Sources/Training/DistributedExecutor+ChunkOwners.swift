import Cluster
import Coordination
import Foundation
import NeuralNet
import Optimizers
import TensorCore
import WireProtocol

/// The coordinator's side of `--chunk-owners` (docs/coordination.md "Chunk owners"): the table,
/// the owners' reduced chunks assembled into the step's contribution, the updated chunks sent
/// to their owners, and a dead owner's step computed again under a new table.
final class ChunkOwnerState {
    let chunks: ParameterChunks
    let parameterChunkCount: Int
    var table: ChunkOwnership?
    /// The agents the table names (owners, and any that joined during a step: they own nothing yet).
    var peers: [WorkerID] = []
    /// Steps computed again in a row because the owners' sums did not come (at most 3).
    var retries = 0
    /// Members that hold the parameters of the version being computed (sent whole, or assembled
    /// from the owners' updated chunks).
    var seeded = Set<WorkerID>()
    /// The version whose updated chunks went to the owners last.
    var distributedVersion: UInt64 = .max
    /// The step's contribution as the owners' sums arrive, and which chunks are in.
    var reduced: TensorStorage?
    var have = Set<Int>()
    var outcomes: TreeFold<ShardOutcome>
    /// Stands in for a result's contribution: with chunk owners it never comes to the coordinator.
    let placeholder = TensorStorage(count: 1)

    init(session: TrainingSession) {
        chunks = ParameterChunks.ofContribution(session.model)
        parameterChunkCount = chunks.parameterChunkCount(session.model)
        outcomes = TreeFold(tree: ShardTree(count: session.shards))
    }
}

extension DistributedExecutor {
    /// One step with chunk owners: table, updated chunks, the shards' outcomes through the state
    /// machine, then the owners' sums; a dead owner sends the trainer back to this step's start.
    func executeWithChunkOwners(_ state: ChunkOwnerState, session: TrainingSession, version: UInt64) throws {
        let step = session.globalStep
        let live = host.liveWorkers.sorted()
        guard !live.isEmpty else { throw RuntimeError.cluster("no workers left") }
        for worker in live where host.members[worker]?.peerEndpoint.isEmpty ?? true {
            throw RuntimeError.invalidSetting("worker \(worker) has no peer endpoint: with --chunk-owners every worker must be a host agent started with --local-workers N --peer-bind tcp://ADDRESS:PORT")
        }
        if state.table?.owners != live {
            // A death deals only the dead owners' chunks to the others; a newcomer starts a fresh table.
            var table = state.table
            for gone in table?.owners ?? [] where !live.contains(gone) { table = table?.removing(gone) }
            if table?.owners != live { table = ChunkOwnership(owners: live, chunkCount: state.chunks.count) }
            state.table = table
            state.peers = live
            state.seeded.removeAll()  // everyone gets the parameters whole with this step's work
            sendTable(state, step: step)
            logLine("chorus coordinator: chunk owners: \(live.count) agents own \(state.chunks.count) chunks")
        } else if state.distributedVersion != version, state.seeded == Set(live) {
            // The parameters of this version to their owners, chunk by chunk; the owners pass them on.
            let table = state.table!
            for c in 0..<state.parameterChunkCount {
                host.send(parameterChunk(c, of: state, version: version), to: table.owner(ofChunk: c))
                bytesSent += state.chunks.ranges[c].count * 4
            }
        } else {
            state.seeded.removeAll()
        }
        state.distributedVersion = version
        state.reduced = session.contributionBuffer()
        state.have.removeAll()
        state.outcomes = TreeFold(tree: ShardTree(count: session.shards))
        // An owner that dies before passing on its updated chunks would leave the others without
        // this version's parameters: the coordinator sends them those chunks itself.
        var covered = Set<WorkerID>()
        let updatesSent = state.seeded == Set(live)
        try host.runStep(step + machineOffset, parameterVersion: version) {
            guard updatesSent, let table = state.table else { return }
            for dead in table.owners where !covered.contains(dead) && !self.host.liveWorkers.contains(dead) {
                covered.insert(dead)
                for c in table.chunks(ownedBy: dead) where c < state.parameterChunkCount {
                    let update = self.parameterChunk(c, of: state, version: version)
                    for worker in self.host.liveWorkers { self.host.send(update, to: worker) }
                }
            }
        }
        // The shards are in; now the owners' sums.
        let deadline = monotonicNanos() + UInt64(settings.timeoutMs) * 4_000_000
        while state.have.count < state.chunks.count {
            if let dead = state.table!.owners.first(where: { !host.liveWorkers.contains($0) }) {
                logLine("chorus coordinator: chunk owner \(dead) is gone with its chunks' sums of step \(step + 1); computing the step again with its chunks re-owned")
                pendingRewind = Rewind(state: session.captureState(), reason: "chunk owner \(dead) died at step \(step + 1)",
                                       basis: "this step's start: nothing of it was applied", without: ", its chunks owned by the others")
                state.reduced = nil
                return
            }
            guard monotonicNanos() < deadline else {
                let missing = state.chunks.count - state.have.count
                guard state.retries < 3 else {
                    throw RuntimeError.cluster("step \(step + 1): \(missing) of \(state.chunks.count) chunk sums did not arrive from their owners within \(settings.timeoutMs * 4) ms, three times")
                }
                // Pieces refused or lost on the way (an agent that had not seen the newest table):
                // the step again, from its start, under a table every agent has by now.
                state.retries += 1
                logLine("chorus coordinator: step \(step + 1): \(missing) chunk sums did not arrive within \(settings.timeoutMs * 4) ms; computing the step again")
                pendingRewind = Rewind(state: session.captureState(), reason: "chunk sums of step \(step + 1) missing",
                                       basis: "this step's start: nothing of it was applied", without: "")
                state.table = nil
                state.reduced = nil
                return
            }
            try host.pump(timeoutMs: 10)
        }
        guard let reduced = state.reduced, let outcome = state.outcomes.result else {
            throw RuntimeError.cluster("step \(step + 1): the shards' outcomes are incomplete")
        }
        state.reduced = nil
        state.retries = 0
        session.add(shards: 0..<session.shards, contribution: reduced, outcome: outcome)
    }

    /// Parameter chunk `c` of the current parameters, as an update of `version`.
    func parameterChunk(_ c: Int, of state: ChunkOwnerState, version: UInt64) -> Message {
        let range = state.chunks.ranges[c]
        let payload = PayloadBuffer(copying: UnsafeRawBufferPointer(start: session.model.parameters.values.pointer + range.lowerBound, count: range.count * 4))
        return .chunk(ChunkData(role: .update, step: version, chunk: UInt32(c), payload: payload))
    }

    /// The table (owners of the chunks, the agents and their endpoints) to every agent it names.
    func sendTable(_ state: ChunkOwnerState, step: Int) {
        let control = ChunkControl(role: .table, step: UInt64(step), chunks: state.table!.ownerOfChunk, peers: state.peers,
                                   endpoints: state.peers.map { host.members[$0]?.peerEndpoint ?? "" })
        for worker in state.peers where host.members[worker] != nil { host.send(.chunkControl(control), to: worker) }
    }

    /// Before work goes to an agent the table does not name (it joined during the step): it
    /// joins the table owning nothing, so its pieces reach the owners, and gets the parameters whole.
    func admitToTable(_ state: ChunkOwnerState, _ member: Member) {
        guard state.table != nil, !state.peers.contains(member.id), !member.peerEndpoint.isEmpty else { return }
        state.peers.append(member.id)
        state.seeded.remove(member.id)
        sendTable(state, step: session.globalStep)
    }

    /// A released node's outcome and signals (its values went to the owners).
    func aggregateChunked(_ state: ChunkOwnerState, _ result: Result, _ aggregation: Aggregation) {
        shardSignals?(ReceivedShard(worker: aggregation.worker, shards: aggregation.shards, signals: result.signals,
                                    contribution: nil, count: result.outcome.count, receivedNorm: result.receivedNorm))
        state.outcomes.push(aggregation.shards, result.outcome) { $0.add($1) }
        ledger.contributed(aggregation.worker, step: session.globalStep)
    }

    /// An owner's sum of one of its chunks over all the step's shards, or its peer traffic.
    func receiveChunked(_ state: ChunkOwnerState, _ message: Message, from member: Member) -> Bool {
        switch message {
        case .chunk(let chunk) where chunk.role == .piece:
            let index = Int(chunk.chunk)
            guard let reduced = state.reduced, Int(chunk.step) == session.globalStep, index < state.chunks.count,
                  state.table?.owner(ofChunk: index) == member.id, chunk.shards == 0..<session.shards else {
                host.drop("a chunk sum (step \(chunk.step), chunk \(chunk.chunk), shards \(chunk.shards)) from worker \(member.id) this step does not expect")
                return true
            }
            let range = state.chunks.ranges[index]
            guard chunk.payload.byteCount == range.count * 4, !state.have.contains(index) else {
                host.drop("chunk \(index)'s sum from worker \(member.id): \(chunk.payload.byteCount / 4) values (expected \(range.count)), or a second copy")
                return true
            }
            (reduced.pointer + range.lowerBound).update(from: chunk.payload.asFloats.baseAddress!, count: range.count)
            state.have.insert(index)
            bytesReceived += chunk.payload.byteCount
            return true
        case .chunkControl(let control) where control.role == .traffic:
            host.recordPeerTraffic(of: member.id, sent: Int(control.values[0]), received: Int(control.values[1]))
            return true
        default:
            return false
        }
    }
}
