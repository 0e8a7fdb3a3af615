import Testing
import TensorCore
@testable import Data

@Suite struct BatchPlanTests {
    @Test func stepsPerEpochRoundsUpAndLastBatchIsPartial() {
        let plan = BatchPlan(exampleCount: 10, batchSize: 4, seed: 1)
        #expect(plan.stepsPerEpoch == 3)
        #expect((0..<3).map { plan.batchIndices(epoch: 0, step: $0) } == [0..<4, 4..<8, 8..<10])
        #expect(BatchPlan(exampleCount: 12, batchSize: 4, seed: 1).stepsPerEpoch == 3)
    }

    @Test func permutationIsTheKeyedRNGShuffle() {
        let plan = BatchPlan(exampleCount: 50, batchSize: 8, seed: 42)
        var reference = DeterministicRNG(key: [42, 0x5348_5546, 3])
        #expect(plan.permutation(epoch: 3) == reference.permutation(50))
    }

    @Test func differentEpochsShuffleDifferently() {
        let plan = BatchPlan(exampleCount: 100, batchSize: 10, seed: 7)
        #expect(plan.permutation(epoch: 0) != plan.permutation(epoch: 1))
        #expect(Set(plan.permutation(epoch: 0)) == Set(plan.permutation(epoch: 1)))
    }

    @Test func everyExampleAppearsOncePerEpochAcrossStepsAndShards() {
        let plan = BatchPlan(exampleCount: 37, batchSize: 8, seed: 3)
        for shards in [1, 3, 5, 11] {
            var seen: [Int] = []
            for step in 0..<plan.stepsPerEpoch {
                for shard in 0..<shards { seen += plan.shardIndices(epoch: 2, step: step, shard: shard, shards: shards) }
            }
            #expect(seen.sorted() == Array(0..<37))
        }
    }

    @Test func shardsAreDisjointAndConcatenateToTheBatch() {
        let plan = BatchPlan(exampleCount: 29, batchSize: 10, seed: 9)
        for step in 0..<plan.stepsPerEpoch {
            let shards = (0..<4).map { plan.shardIndices(epoch: 1, step: step, shard: $0, shards: 4) }
            let batch = Array(plan.permutation(epoch: 1)[plan.batchIndices(epoch: 1, step: step)])
            #expect(shards.flatMap { $0 } == batch)
            #expect(Set(shards.flatMap { $0 }).count == batch.count)
            #expect(plan.batchExampleIndices(epoch: 1, step: step) == batch)
        }
    }

    @Test func shardSizesFollowTheCeilThenFloorRule() {
        // Batch of 10 into 4 shards: 10 % 4 = 2 shards of 3, then 2 of 2. Last batch (9 of 29) into 4: 3, 2, 2, 2.
        let plan = BatchPlan(exampleCount: 29, batchSize: 10, seed: 9)
        #expect((0..<4).map { plan.shardIndices(epoch: 0, step: 0, shard: $0, shards: 4).count } == [3, 3, 2, 2])
        #expect((0..<4).map { plan.shardIndices(epoch: 0, step: 2, shard: $0, shards: 4).count } == [3, 2, 2, 2])
        for b in 1...12 {
            for s in 1...6 {
                let sizes = (0..<s).map { BatchPlan(exampleCount: b, batchSize: b, seed: 0).shardIndices(epoch: 0, step: 0, shard: $0, shards: s).count }
                let expected = (0..<s).map { $0 < b % s ? (b + s - 1) / s : b / s }
                #expect(sizes == expected)
            }
        }
    }

    @Test func smallBatchLeavesTrailingShardsEmpty() {
        let plan = BatchPlan(exampleCount: 2, batchSize: 2, seed: 5)
        #expect((0..<4).map { plan.shardIndices(epoch: 0, step: 0, shard: $0, shards: 4).count } == [1, 1, 0, 0])
        #expect(plan.shardIndices(epoch: 0, step: 0, shard: 3, shards: 4) == [])
    }

    @Test func sameArgumentsGiveSameIndicesWhateverWasAskedBefore() {
        let fresh = BatchPlan(exampleCount: 60, batchSize: 16, seed: 11)
        let expected = fresh.shardIndices(epoch: 4, step: 2, shard: 1, shards: 3)
        let used = BatchPlan(exampleCount: 60, batchSize: 16, seed: 11)
        for epoch in [0, 9, 4, 2] { _ = used.shardIndices(epoch: epoch, step: 0, shard: 0, shards: 2) }
        #expect(used.shardIndices(epoch: 4, step: 2, shard: 1, shards: 3) == expected)
        #expect(BatchPlan(exampleCount: 60, batchSize: 16, seed: 11).shardIndices(epoch: 4, step: 2, shard: 1, shards: 3) == expected)
    }

    @Test func differentSeedsShuffleDifferently() {
        #expect(BatchPlan(exampleCount: 64, batchSize: 8, seed: 1).permutation(epoch: 0)
                != BatchPlan(exampleCount: 64, batchSize: 8, seed: 2).permutation(epoch: 0))
    }

    @Test func positionSplitsAGlobalStepIntoEpochAndStep() {
        let plan = BatchPlan(exampleCount: 10, batchSize: 4, seed: 1)
        #expect(plan.position(globalStep: 0) == (0, 0))
        #expect(plan.position(globalStep: 5) == (1, 2))
        #expect(plan.position(globalStep: 6) == (2, 0))
    }

    @Test func gatherCopiesTheRequestedRowsAndLabels() {
        let dataset = Dataset(name: "t", features: (0..<12).map(Float.init), labels: [10, 11, 12, 13], exampleShape: [3])
        let rows = dataset.gather(indices: [2, 0, 2])
        #expect(rows.features == [6, 7, 8, 0, 1, 2, 6, 7, 8])
        #expect(rows.labels == [12, 10, 12])
        #expect(dataset.subset([3, 1]).features == [9, 10, 11, 3, 4, 5])
    }
}
