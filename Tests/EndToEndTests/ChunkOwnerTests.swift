import Config
import Coordination
import NeuralNet
import Optimizers
import TensorCore
import Testing
@testable import Training

/// Chunk owners (issue 12) against the single coordinator's arithmetic, in memory: the same
/// shard gradients summed by the coordinator along the shard tree and updated with `Optimizer`,
/// or summed by agents as node sums, cut into chunk pieces, folded by each chunk's owner in
/// whatever order the pieces arrive, clipped with the norm combined from the owners' chunk sums
/// and updated chunk by chunk. The parameters, the norm and the optimizer state must be the
/// same bits, for any number of owners, any cover of the shards by agents, and after an owner
/// dies and its chunks are re-owned.
struct ChunkOwnerTests {
    /// A small deterministic generator (SplitMix64).
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    // Tensors of a small model: a 60×97 weight, its bias, a 97×40 weight, a 40-wide bias.
    static let tensors = [0..<5820, 5820..<5917, 5917..<9797, 9797..<9837]
    static let count = 9837

    static func shardGradient(step: Int, shard: Int, scale: Float) -> [Float] {
        var generator = Generator(state: UInt64(step * 1000 + shard + 1))
        var values = [Float](repeating: 0, count: count)
        for i in 0..<count { values[i] = Float.random(in: -1...1, using: &generator) * scale }
        return values
    }

    /// The coordinator's path: fold every shard along the tree, average, measure, update.
    static func starStep(optimizer: Optimizer, parameters: inout [Float], step: Int, shards: Int, examples: Int,
                         chunks: ParameterChunks, scale: Float) -> (norm: Double, lr: Float, t: Int) {
        let sum = ContributionSum(count: count, tree: ShardTree(count: shards))
        for shard in 0..<shards {
            let buffer = sum.buffer()
            let values = shardGradient(step: step, shard: shard, scale: scale)
            for i in 0..<count { buffer.pointer[i] = values[i] }
            sum.add(shards: shard..<(shard + 1), values: buffer, outcome: ShardOutcome(lossSum: 0, correct: 0, count: examples / shards))
        }
        let total = sum.result!.values
        var squares = [Double](repeating: 0, count: chunks.count)
        let norm = squares.withUnsafeMutableBufferPointer {
            GradientClipping.scaleAndChunkSquares(total.pointer, count: count, scale: 1 / Float(examples), chunks: chunks, squares: $0.baseAddress!)
        }
        let lr = optimizer.currentLearningRate
        parameters.withUnsafeMutableBufferPointer { p in
            _ = optimizer.update(parameters: p.baseAddress!, gradients: total.pointer, tensorRanges: tensors, norm: norm)
        }
        return (norm, lr, optimizer.step)
    }

    /// The agents' node sums of `blocks` (each agent's contiguous shards), as pieces per chunk.
    static func pieces(step: Int, shards: Int, blocks: [Range<Int>], chunks: ParameterChunks, scale: Float) -> [(chunk: Int, shards: Range<Int>, values: [Float])] {
        let tree = ShardTree(count: shards)
        var pieces: [(Int, Range<Int>, [Float])] = []
        for block in blocks where !block.isEmpty {
            for node in tree.cover(block) {
                let sum = ContributionSum(count: count, tree: tree, node: node)
                for shard in node {
                    let buffer = sum.buffer()
                    let values = shardGradient(step: step, shard: shard, scale: scale)
                    for i in 0..<count { buffer.pointer[i] = values[i] }
                    sum.add(shards: shard..<(shard + 1), values: buffer, outcome: ShardOutcome(lossSum: 0, correct: 0, count: 1))
                }
                let values = Array(UnsafeBufferPointer(start: sum.result!.values.pointer, count: count))
                for (c, range) in chunks.ranges.enumerated() { pieces.append((c, node, Array(values[range]))) }
            }
        }
        return pieces
    }

    /// Contiguous blocks of `shards` for `agents` agents, cut at random.
    static func blocks(shards: Int, agents: Int, using generator: inout Generator) -> [Range<Int>] {
        var cuts: [Int] = []
        for _ in 0..<(agents - 1) { cuts.append(Int.random(in: 0...shards, using: &generator)) }
        cuts = [0] + cuts.sorted() + [shards]
        return (0..<agents).map { cuts[$0]..<cuts[$0 + 1] }
    }

    static let configs: [OptimizerConfig] = [
        OptimizerConfig(name: .adam, lr: 0.01, clipNorm: 0.05),
        OptimizerConfig(name: .adamw, lr: 0.02, clipNorm: 1e6, clipValue: 0.0004),
        OptimizerConfig(name: .sgd, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.001, clipNorm: 0.02),
        OptimizerConfig(name: .rmsprop, lr: 0.001, momentum: 0.5),
    ]

    @Test(arguments: [(1, 1), (3, 2), (6, 3), (8, 2), (5, 4), (7, 3)])
    func ownersGiveTheSingleCoordinatorsBits(shards: Int, owners: Int) throws {
        for (index, config) in Self.configs.enumerated() {
            var generator = Generator(state: UInt64(shards * 10 + owners + index * 100))
            let chunks = ParameterChunks(tensors: Self.tensors, size: 2048)
            var initial = [Float](repeating: 0, count: Self.count)
            for i in 0..<Self.count { initial[i] = Float.random(in: -0.5...0.5, using: &generator) }
            let optimizer = Optimizer(config: config, parameterCount: Self.count, totalSteps: 10)
            var star = initial
            let table = ChunkOwnership(owners: (0..<owners).map { UInt32($0 * 3 + 1) }, chunkCount: chunks.count)
            var team = try table.owners.map { try ChunkOwner(id: $0, chunks: chunks, ownership: table, optimizer: config, parameters: initial) }
            let examples = shards * 16
            for step in 0..<6 {
                let scale: Float = step == 3 ? 1e-3 : 0.05  // one step below the clipping norm
                let expected = Self.starStep(optimizer: optimizer, parameters: &star, step: step, shards: shards, examples: examples,
                                             chunks: chunks, scale: scale)
                if step == 4 && team.count > 1 {
                    // An owner dies after step 3: its chunks move to the others, with their state as of then
                    // (the coordinator's snapshot; here the dead owner's own, which is the same values).
                    let dead = team.removeLast()
                    let survivors = dead.ownership.removing(dead.id)!
                    for owner in team {
                        let before = Set(owner.owned)
                        owner.reown(survivors)
                        for chunk in owner.owned where !before.contains(chunk) {
                            let range = chunks.ranges[chunk]
                            for s in 0..<owner.stateCount { owner.loadState(s, range, dead.stateValues(s, range)) }
                        }
                    }
                }
                let current = team[0].ownership
                var all = Self.pieces(step: step, shards: shards, blocks: Self.blocks(shards: shards, agents: max(1, owners + 1), using: &generator),
                                      chunks: chunks, scale: scale)
                all.shuffle(using: &generator)
                for owner in team { owner.beginStep(step, shardCount: shards) }
                for piece in all {
                    let owner = try #require(team.first { $0.id == current.owner(ofChunk: piece.chunk) })
                    try owner.receive(step: step, chunk: piece.chunk, shards: piece.shards, values: piece.values)
                }
                var combiner = ChunkNormCombiner(chunks: chunks)
                for owner in team {
                    #expect(owner.isComplete)
                    for report in owner.measure(examples: examples) { combiner.record(chunk: report.chunk, squares: report.squares) }
                }
                let norm = try #require(combiner.norm)
                #expect(norm.bitPattern == expected.norm.bitPattern, "\(config.name) S=\(shards) H=\(owners) step \(step): norm")
                // The all-gather: every owner's updated chunks to every other owner.
                let updates = team.map { $0.apply(norm: norm, lr: expected.lr, t: expected.t) }
                for (index, owner) in team.enumerated() {
                    for (other, chunksOfOther) in updates.enumerated() where other != index {
                        for update in chunksOfOther { try owner.load(chunk: update.chunk, values: update.values) }
                    }
                }
                for owner in team {
                    let mismatch = star.indices.first { owner.parameters[$0].bitPattern != star[$0].bitPattern }
                    #expect(mismatch == nil, "\(config.name) S=\(shards) H=\(owners) step \(step): owner \(owner.id)'s parameter \(mismatch ?? -1) differs")
                    for (s, buffer) in optimizer.state.enumerated() {
                        for chunk in owner.owned {
                            let range = chunks.ranges[chunk]
                            let same = owner.stateValues(s, range).map(\.bitPattern) == UnsafeBufferPointer(start: buffer + range.lowerBound, count: range.count).map(\.bitPattern)
                            #expect(same, "\(config.name) S=\(shards) H=\(owners) step \(step): owner \(owner.id)'s state \(s) of chunk \(chunk) differs")
                        }
                    }
                }
            }
        }
    }

    @Test func piecesFromConfusedOrHostilePeersAreRefusedWithTheReason() throws {
        let chunks = ParameterChunks(tensors: Self.tensors, size: 4096)
        let table = ChunkOwnership(owners: [2, 5], chunkCount: chunks.count)
        #expect(table.chunks(ownedBy: 2) == [0, 2, 4] && table.chunks(ownedBy: 5) == [1, 3])
        #expect(table.removing(2)?.chunks(ownedBy: 5) == [0, 1, 2, 3, 4] && table.removing(9) == table)
        // Only a dead owner's chunks move, dealt to the survivors in turn.
        let three = ChunkOwnership(owners: [1, 4, 7], chunkCount: 7)
        #expect(three.chunks(ownedBy: 7) == [2, 5])
        let two = try #require(three.removing(7))
        #expect(two.chunks(ownedBy: 1) == [0, 2, 3, 6] && two.chunks(ownedBy: 4) == [1, 4, 5])
        #expect(ChunkOwnership(owners: [7], chunkCount: 3).removing(7) == nil)
        let owner = try ChunkOwner(id: 2, chunks: chunks, ownership: table, optimizer: OptimizerConfig(name: .adam), parameters: [Float](repeating: 0, count: Self.count))
        owner.beginStep(4, shardCount: 6)
        let length = chunks.ranges[0].count
        #expect(throws: ChunkPieceError.notOwned(chunk: 1)) { try owner.receive(step: 4, chunk: 1, shards: 0..<1, values: [Float](repeating: 0, count: chunks.ranges[1].count)) }
        #expect(throws: ChunkPieceError.badLength(chunk: 0, got: 3, expected: length)) { try owner.receive(step: 4, chunk: 0, shards: 0..<1, values: [1, 2, 3]) }
        #expect(throws: ChunkPieceError.notANode(shards: 1..<3, shardCount: 6)) { try owner.receive(step: 4, chunk: 0, shards: 1..<3, values: [Float](repeating: 0, count: length)) }
        #expect(throws: ChunkPieceError.notANode(shards: 4..<8, shardCount: 6)) { try owner.receive(step: 4, chunk: 0, shards: 4..<8, values: [Float](repeating: 0, count: length)) }
        #expect(throws: ChunkPieceError.wrongStep(got: 3, expected: 4)) { try owner.receive(step: 3, chunk: 0, shards: 0..<1, values: [Float](repeating: 0, count: length)) }
        try owner.receive(step: 4, chunk: 0, shards: 4..<6, values: [Float](repeating: 1, count: length))
        #expect(throws: ChunkPieceError.duplicate(chunk: 0, shards: 4..<5)) { try owner.receive(step: 4, chunk: 0, shards: 4..<5, values: [Float](repeating: 0, count: length)) }
        try owner.receive(step: 4, chunk: 0, shards: 0..<4, values: [Float](repeating: 2, count: length))
        #expect(throws: ChunkPieceError.duplicate(chunk: 0, shards: 2..<3)) { try owner.receive(step: 4, chunk: 0, shards: 2..<3, values: [Float](repeating: 0, count: length)) }
        #expect(!owner.isComplete)  // chunks 2 and 4 have nothing yet
        #expect(throws: (any Error).self) {
            try ChunkOwner(id: 2, chunks: chunks, ownership: table, optimizer: OptimizerConfig(name: .adam, clipPerTensorNorm: 1), parameters: [])
        }
    }
}
