import Cluster
import Config
import Coordination
import Foundation
import Optimizers
import Testing
import Transport
@testable import Training
import WireProtocol

/// Chunk owners over real ZeroMQ sockets (tcp on loopback): three agents, each owning a third of
/// the chunks and holding one node of the shard tree, send their pieces to the owners through a
/// `PeerMesh`, the owners fold, measure and update, and send the updated chunks to everyone.
/// The parameters stay the single coordinator's bits, each agent moves at most 2.5 × the
/// parameter bytes each way per step (issue 12's target), and garbage, another run's chunks and
/// strangers on a peer socket are refused and counted without disturbing the step.
struct PeerMeshTests {
    typealias Helpers = ChunkOwnerTests

    /// Receives on every mesh until `done` or 10 s pass.
    static func pump(_ meshes: [PeerMesh], until done: () -> Bool, _ handle: (Int, UInt32, ChunkData) throws -> Void) throws {
        let deadline = Date().addingTimeInterval(10)
        while !done() {
            #expect(Date() < deadline, "the peers' messages did not all arrive")
            if Date() >= deadline { return }
            for (index, mesh) in meshes.enumerated() {
                while let (from, chunk) = try mesh.receive(timeoutMs: 1) { try handle(index, from, chunk) }
            }
        }
    }

    static func values(_ payload: PayloadBuffer) -> [Float] { Array(payload.asFloats) }

    @Test func threeAgentsOwningChunksGiveTheSingleCoordinatorsBitsWithinTheByteBudget() throws {
        let runID: UInt64 = 0xC0FF_EE00_1234_5678
        let ids: [UInt32] = [1, 4, 7]
        let config = OptimizerConfig(name: .adam, lr: 0.01, clipNorm: 0.05)
        let chunks = ParameterChunks(tensors: Helpers.tensors, size: 2048)
        let table = ChunkOwnership(owners: ids, chunkCount: chunks.count)
        let initial = (0..<Helpers.count).map { Float($0 % 97) / 97 - 0.5 }
        let meshes = try ids.map { try PeerMesh(id: $0, runID: runID, bind: "tcp://127.0.0.1:0") }
        let endpoints = Dictionary(uniqueKeysWithValues: zip(ids, meshes.map(\.endpoint)))
        for mesh in meshes { try mesh.connect(peers: endpoints) }
        #expect(meshes[0].peers == [4, 7])
        // Agent 1's table also names agent 9, which has not started yet (its connection retries).
        var withNine = endpoints
        withNine[9] = "tcp://127.0.0.1:9"
        try meshes[0].connect(peers: withNine)
        #expect(meshes[0].peers == [4, 7, 9])
        let owners = try ids.map { try ChunkOwner(id: $0, chunks: chunks, ownership: table, optimizer: config, parameters: initial) }
        let optimizer = Optimizer(config: config, parameterCount: Helpers.count, totalSteps: 10)
        var star = initial
        let shards = 6, examples = 96
        // Each agent holds one node of the 6-shard tree: [0,2), [2,4), [4,6).
        let blocks = [0..<2, 2..<4, 4..<6]
        let parameterBytes = UInt64(Helpers.count * 4)
        let steps = 3
        // Before the steps: hostile input on agent 1's peer socket, refused without a throw. (A
        // second connection claiming a connected agent's routing ID is not even heard: libzmq's
        // ROUTER keeps the first; "p9" is in the table but not connected.)
        let context = try ZMQContext()
        let stranger = try ZMQMessageTransport.dealer(context: context, connect: endpoints[1]!, options: [.linger(0), .routingID(PeerID("zz"))])
        let impostor = try ZMQMessageTransport.dealer(context: context, connect: endpoints[1]!, options: [.linger(0), .routingID(PeerID("p9"))])
        defer { stranger.close(); impostor.close() }
        try stranger.send([Frame(bytes: [1, 2, 3])], to: nil)
        try impostor.send([Frame(bytes: Array("not a chorus message".utf8))], to: nil)
        try impostor.send(WireCodec.encode(.chunk(ChunkData(role: .piece, step: 0, chunk: 0, shard: 0, span: 1, payload: PayloadBuffer(floats: [1]))),
                                           runID: runID ^ 1), to: nil)
        try impostor.send(WireCodec.encode(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 2)), runID: runID), to: nil)
        var refusals: [String] = []
        let deadline = Date().addingTimeInterval(10)
        while refusals.count < 4 && Date() < deadline {
            #expect(try meshes[0].receive(timeoutMs: 20) == nil)
            refusals += meshes[0].takeRefusals()
        }
        #expect(refusals.count == 4, "\(refusals)")
        #expect(refusals.contains { $0.contains("from zz, not an agent") })
        #expect(refusals.contains { $0.hasPrefix("agent 9's message: ") })
        #expect(refusals.contains { $0.contains("of run c0ffee0012345679") })
        #expect(refusals.contains { $0.contains("sent a heartbeat message on the peer socket") })
        let sentBefore = meshes.map(\.bytesSent), receivedBefore = meshes.map(\.bytesReceived)

        for step in 0..<steps {
            let expected = Helpers.starStep(optimizer: optimizer, parameters: &star, step: step, shards: shards, examples: examples,
                                            chunks: chunks, scale: 0.05)
            for owner in owners { owner.beginStep(step, shardCount: shards) }
            // Each agent's pieces: its own chunks straight to its owner, the others' over the mesh.
            for (agent, block) in blocks.enumerated() {
                for piece in Helpers.pieces(step: step, shards: shards, blocks: [block], chunks: chunks, scale: 0.05) {
                    let owner = table.owner(ofChunk: piece.chunk)
                    if owner == ids[agent] {
                        try owners[agent].receive(step: step, chunk: piece.chunk, shards: piece.shards, values: piece.values)
                    } else {
                        try meshes[agent].send(ChunkData(role: .piece, step: UInt64(step), chunk: UInt32(piece.chunk), shard: UInt32(piece.shards.lowerBound),
                                                         span: UInt32(piece.shards.count), payload: PayloadBuffer(floats: piece.values)), to: owner)
                    }
                }
            }
            try Self.pump(meshes, until: { owners.allSatisfy(\.isComplete) }) { index, _, chunk in
                #expect(chunk.role == .piece)
                try owners[index].receive(step: Int(chunk.step), chunk: Int(chunk.chunk), shards: chunk.shards, values: Self.values(chunk.payload))
            }
            var combiner = ChunkNormCombiner(chunks: chunks)
            for owner in owners {
                for report in owner.measure(examples: examples) { combiner.record(chunk: report.chunk, squares: report.squares) }
            }
            let norm = try #require(combiner.norm)
            #expect(norm.bitPattern == expected.norm.bitPattern)
            var loaded = 0
            for (agent, owner) in owners.enumerated() {
                for update in owner.apply(norm: norm, lr: expected.lr, t: expected.t) {
                    for peer in ids where peer != ids[agent] {
                        try meshes[agent].send(ChunkData(role: .update, step: UInt64(step), chunk: UInt32(update.chunk), payload: PayloadBuffer(floats: update.values)), to: peer)
                    }
                }
            }
            let updatesExpected = chunks.count * (ids.count - 1)
            try Self.pump(meshes, until: { loaded == updatesExpected }) { index, _, chunk in
                #expect(chunk.role == .update && chunk.step == UInt64(step))
                try owners[index].load(chunk: Int(chunk.chunk), values: Self.values(chunk.payload))
                loaded += 1
            }
            for owner in owners {
                #expect(owner.parameters.map(\.bitPattern) == star.map(\.bitPattern), "step \(step): agent \(owner.id)'s parameters")
            }
        }
        for (index, mesh) in meshes.enumerated() {
            let sent = (mesh.bytesSent - sentBefore[index]) / UInt64(steps), received = (mesh.bytesReceived - receivedBefore[index]) / UInt64(steps)
            // One node's pieces of the others' chunks (2/3 M) and its own chunks to two peers (2/3 M), each way.
            #expect(sent <= parameterBytes * 5 / 2 && received <= parameterBytes * 5 / 2, "agent \(mesh.id): \(sent) out, \(received) in per step, M = \(parameterBytes)")
            #expect(sent >= parameterBytes, "agent \(mesh.id) sent \(sent) bytes per step: its pieces and updates cannot be smaller than M")
        }
        #expect(meshes.allSatisfy { $0.takeRefusals().isEmpty })
    }
}
