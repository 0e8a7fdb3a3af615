import Cluster
import Coordination
import Optimizers
import TensorCore
import WireProtocol

/// A host agent's part in `--chunk-owners` (docs/coordination.md "Chunk owners"): the
/// coordinator's table, the pieces of node sums sent to their chunks' owners, this agent's own
/// chunks folded and their sums sent up, and the parameters assembled from updated chunks.
extension HostAgent {
    /// The coordinator's table, or an updated chunk of parameters it sends this chunk's owner.
    package func receive(other message: Message, runID: UInt64) throws {
        switch message {
        case .chunkControl(let control) where control.role == .table:
            guard let mesh, let chunks = contributionChunks else {
                throw WorkerExit(status: 2, message: "the coordinator runs chunk owners; start this agent with --peer-bind tcp://ADDRESS:PORT")
            }
            guard control.chunks.count == chunks.count else {
                throw RuntimeError.cluster("the coordinator's chunk table has \(control.chunks.count) chunks; this model has \(chunks.count)")
            }
            let table = ChunkOwnership(owners: control.peers, ownerOfChunk: control.chunks)
            mesh.id = workerID
            mesh.runID = runID
            try mesh.connect(peers: Dictionary(zip(control.peers, control.endpoints), uniquingKeysWith: { a, _ in a }))
            self.table = table
            // A table that only adds an agent (one that joined during the step) keeps this agent's
            // chunks: the step's pieces so far stay.
            let owned = table.chunks(ownedBy: workerID)
            if reducer?.owned != owned { reducer = ChunkReducer(chunks: chunks, owned: owned) }
            log("chunk owners: \(table.owners.count) agents, \(table.chunks(ownedBy: workerID).count) of \(chunks.count) chunks here")
        case .chunk(let chunk) where chunk.role == .update:
            // A chunk this agent owns: take it and pass it to every other agent. (The coordinator
            // also sends a dead owner's chunks to everyone itself: only taken.)
            try takeUpdate(chunk)
            if let mesh, table?.owner(ofChunk: Int(chunk.chunk)) == workerID { for peer in mesh.peers { try mesh.send(chunk, to: peer) } }
        default:
            break
        }
    }

    /// Receives what the other agents sent: pieces of this agent's chunks, and updated chunks.
    func pumpPeers(timeoutMs: Int) throws {
        guard let mesh else { return }
        for line in mesh.takeRefusals() { refuseChunk(line) }
        while let (from, chunk) = try mesh.receive(timeoutMs: timeoutMs) {
            switch chunk.role {
            case .update:
                guard table?.owner(ofChunk: Int(chunk.chunk)) == from else {
                    refuseChunk("agent \(from) sent chunk \(chunk.chunk), which it does not own")
                    continue
                }
                try takeUpdate(chunk)
            case .piece:
                guard let reducer else { early.append(chunk); continue }
                if Int(chunk.step) > reducer.step { early.append(chunk); continue }
                guard Int(chunk.step) == reducer.step else { continue }  // a step already done
                addPiece(chunk, from: from)
            }
        }
        try sendReducedIfComplete()
    }

    func refuseChunk(_ line: String) {
        chunkRefusals += 1
        if chunkRefusals <= 5 || chunkRefusals % 100 == 0 { log("refused: \(line) (\(chunkRefusals) so far)") }
    }

    func addPiece(_ chunk: ChunkData, from: UInt32) {
        do {
            try reducer?.receive(step: Int(chunk.step), chunk: Int(chunk.chunk), shards: chunk.shards, values: Array(chunk.payload.asFloats))
        } catch {
            refuseChunk("agent \(from)'s piece of chunk \(chunk.chunk): \(error)")
        }
    }

    /// An updated parameter chunk of version `chunk.step`; once all are in, the local workers get them.
    func takeUpdate(_ chunk: ChunkData) throws {
        guard let chunks = contributionChunks, let parameters, Int(chunk.chunk) < parameterChunkCount else {
            refuseChunk("an update of chunk \(chunk.chunk), not a parameter chunk")
            return
        }
        let range = chunks.ranges[Int(chunk.chunk)]
        guard chunk.payload.byteCount == range.count * 4 else {
            refuseChunk("an update of chunk \(chunk.chunk) with \(chunk.payload.byteCount / 4) values, expected \(range.count)")
            return
        }
        if chunk.step != assemblyVersion {
            guard assemblyVersion == .max || chunk.step > assemblyVersion || parameterVersion == assemblyVersion else { return }
            assemblyVersion = chunk.step
            assemblyHave.removeAll()
        }
        assembly.withUnsafeMutableBufferPointer { a in
            (a.baseAddress! + range.lowerBound).update(from: chunk.payload.asFloats.baseAddress!, count: range.count)
        }
        assemblyHave.insert(Int(chunk.chunk))
        if assemblyHave.count == parameterChunkCount {
            assembly.withUnsafeBufferPointer { parameters.write(version: chunk.step, from: $0.baseAddress!) }
            parameterVersion = chunk.step
        }
    }

    /// A step with chunk owners: the reducer starts over, and pieces that came early go in.
    func beginChunkStep(_ work: Work) throws {
        guard let reducer, let table else { throw RuntimeError.cluster("work with chunk owners before the coordinator's chunk table") }
        reducer.beginStep(Int(work.step), shardCount: shardCount, owned: table.chunks(ownedBy: workerID))
        reducedSent = false
        let waiting = early
        early.removeAll()
        for chunk in waiting where Int(chunk.step) >= reducer.step {
            if Int(chunk.step) == reducer.step { addPiece(chunk, from: 0) } else { early.append(chunk) }
        }
    }

    /// Each chunk's slice of a node sum to the chunk's owner (this agent's own: kept).
    func sendPieces(of node: Range<Int>, values: TensorStorage, step: UInt64) throws {
        guard let chunks = contributionChunks, let table, let mesh, let reducer else { return }
        for (c, range) in chunks.ranges.enumerated() {
            let owner = table.owner(ofChunk: c)
            let slice = UnsafeBufferPointer(start: values.pointer + range.lowerBound, count: range.count)
            if owner == workerID {
                try reducer.receive(step: Int(step), chunk: c, shards: node, values: Array(slice))
            } else {
                try mesh.send(ChunkData(role: .piece, step: step, chunk: UInt32(c), shard: UInt32(node.lowerBound), span: UInt32(node.count),
                                        payload: PayloadBuffer(copying: UnsafeRawBufferPointer(slice))), to: owner)
            }
        }
        try sendReducedIfComplete()
    }

    /// Once every piece of this agent's chunks is in: their sums to the coordinator, with the peer traffic so far.
    func sendReducedIfComplete() throws {
        guard !reducedSent, let reducer, reducer.isComplete, reducer.step >= 0 else { return }
        reducedSent = true
        for chunk in reducer.owned {
            guard let sum = reducer.sum(chunk) else { continue }
            try upstream.transport.send(.chunk(ChunkData(role: .piece, step: UInt64(reducer.step), chunk: UInt32(chunk), shard: 0,
                                                         span: UInt32(shardCount), payload: PayloadBuffer(floats: sum))), runID: runID)
        }
        if let mesh {
            try upstream.transport.send(.chunkControl(ChunkControl(role: .traffic, step: UInt64(reducer.step),
                                                                   values: [Double(mesh.bytesSent), Double(mesh.bytesReceived)])), runID: runID)
        }
    }
}
