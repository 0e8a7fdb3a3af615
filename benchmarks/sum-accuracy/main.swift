// How close is a step's gradient sum to the exact sum, summed along the shard tree (what Chorus
// does) versus a left fold (what it did before)? Trains the default MLP recipe in-process for
// a number of steps; at each step it computes every shard's contribution, sums them three ways
// — the tree (fp32), a left fold (fp32), and a left fold in float64 as the reference — and
// records each fp32 sum's relative error ‖sum − ref‖₂ / ‖ref‖₂. Training follows the tree sum.
//
//     swift run -c release chorus-sum-accuracy [STEPS] [SHARDS...]    (default: 200 steps, S = 4 8 16 64)
import Config
import Coordination
import Foundation
import NeuralNet
import TensorCore
import Training

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let steps = arguments.first ?? 200
let shardCounts = arguments.count > 1 ? Array(arguments.dropFirst()) : [4, 8, 16, 64]

print("shards  steps  tree_rel_error(mean)  left_fold_rel_error(mean)  left/tree  tree_better_steps")
for shards in shardCounts {
    var config = RunConfig.default
    config.training.shards = shards
    let session = try TrainingSession(config: config, shards: shards)
    let computer = ShardComputer(model: session.model, train: session.data.train, plan: session.plan,
                                 loss: session.config.loss, seed: session.config.training.seed)
    let count = session.model.parameters.count
    var treeError = 0.0, foldError = 0.0, treeBetter = 0
    for _ in 0..<steps {
        session.beginStep()
        var leaves: [TensorStorage] = []
        var outcomes: [ShardOutcome] = []
        for shard in 0..<shards {
            let buffer = TensorStorage(count: session.model.contributionCount)
            let (outcome, _) = computer.compute(globalStep: session.globalStep, shard: shard, shards: shards, into: buffer.pointer)
            leaves.append(buffer)
            outcomes.append(outcome)
        }
        var reference = [Double](repeating: 0, count: count)
        var fold = [Float](repeating: 0, count: count)
        for leaf in leaves {
            for i in 0..<count { reference[i] += Double(leaf.pointer[i]); fold[i] += leaf.pointer[i] }
        }
        let tree = ContributionSum(count: session.model.contributionCount, tree: ShardTree(count: shards))
        for (shard, leaf) in leaves.enumerated() {
            let copy = tree.buffer()
            copy.pointer.update(from: leaf.pointer, count: leaf.count)
            tree.add(shards: shard..<(shard + 1), values: copy, outcome: outcomes[shard])
        }
        let treeSum = tree.result!.values
        var norm = 0.0, treeDiff = 0.0, foldDiff = 0.0
        for i in 0..<count {
            norm += reference[i] * reference[i]
            let t = Double(treeSum.pointer[i]) - reference[i], f = Double(fold[i]) - reference[i]
            treeDiff += t * t; foldDiff += f * f
        }
        treeError += (treeDiff / norm).squareRoot()
        foldError += (foldDiff / norm).squareRoot()
        if treeDiff < foldDiff { treeBetter += 1 }
        for (shard, leaf) in leaves.enumerated() { session.add(shards: shard..<(shard + 1), contribution: leaf, outcome: outcomes[shard]) }
        _ = session.finishStep()
    }
    let n = Double(steps)
    print(String(format: "%6d  %5d  %20.3e  %25.3e  %9.2f  %d/%d", shards, steps, treeError / n, foldError / n, foldError / treeError, treeBetter, steps))
}
