/// One layer's signals combined over every shard of a step: the conservative value of each
/// (a unit is dead only if no shard saw it active, so the smallest dead fraction wins).
struct MergedLayer {
    var name: String
    var depth: Int
    var activation: String
    var units: Int
    var deadFraction: Double
    var saturationFraction: Double
    var effectiveWidth: Int
    var nonFiniteCount: Int
}

/// The shards of one step combined: what the diagnosis rules read.
struct MergedSignals {
    var shardCount = 0
    var examples = 0
    var replicas: [Int] = []
    var outputUnits = 0
    var outputMaxVariance = 0.0
    var outputNonFinite = 0
    var distinctPredictions = 0
    var distinctLabels = 0
    var labelMin = Double.infinity, labelMax = -Double.infinity
    var inputMaxAbs = 0.0
    var inputMeanAbs = 0.0
    var inputNonFinite = 0
    var labelNonFinite = 0
    var layers: [MergedLayer] = []
    var outputVarianceByReplica: [Int: Double] = [:]
    /// The shards' permuted-label loss gap, weighted by examples, summed in shard order (the
    /// same value whatever order results arrived in); nil when no shard measured it.
    var permutedLossGap: Double?

    init(_ shards: [(replica: Int, shard: Int, signals: ShardSignals)]) {
        shardCount = shards.count
        var replicaSet = Set<Int>()
        var weightedAbs = 0.0
        var byName: [String: Int] = [:]
        for (replica, _, s) in shards {
            replicaSet.insert(replica)
            examples += s.examples
            outputUnits = max(outputUnits, s.output.units)
            outputMaxVariance = max(outputMaxVariance, s.output.maxVariance.isFinite ? s.output.maxVariance : 0)
            outputVarianceByReplica[replica] = max(outputVarianceByReplica[replica] ?? 0, s.output.maxVariance)
            outputNonFinite += s.output.nonFiniteCount
            distinctPredictions = max(distinctPredictions, s.output.distinctPredictions)
            distinctLabels = max(distinctLabels, s.output.distinctLabels, s.labels.distinct)
            if s.labels.distinct > 0 { labelMin = min(labelMin, s.labels.min); labelMax = max(labelMax, s.labels.max) }
            inputMaxAbs = max(inputMaxAbs, abs(s.input.min), abs(s.input.max))
            weightedAbs += s.input.meanAbs * Double(s.examples)
            inputNonFinite += s.input.nonFiniteCount
            labelNonFinite += s.labels.nonFiniteCount
            for layer in s.layers {
                if let index = byName[layer.name] {
                    layers[index].deadFraction = min(layers[index].deadFraction, layer.deadFraction)
                    layers[index].saturationFraction = min(layers[index].saturationFraction, layer.saturationFraction)
                    layers[index].effectiveWidth = max(layers[index].effectiveWidth, layer.effectiveWidth)
                    layers[index].nonFiniteCount += layer.nonFiniteCount
                } else {
                    byName[layer.name] = layers.count
                    layers.append(MergedLayer(name: layer.name, depth: layer.depth, activation: layer.activation, units: layer.units,
                                              deadFraction: layer.deadFraction, saturationFraction: layer.saturationFraction,
                                              effectiveWidth: layer.effectiveWidth, nonFiniteCount: layer.nonFiniteCount))
                }
            }
        }
        var gapSum = 0.0, gapExamples = 0
        for (_, _, s) in shards.sorted(by: { $0.shard < $1.shard }) {
            guard let gap = s.output.permutedLossGap, gap.isFinite else { continue }
            gapSum += gap * Double(s.examples); gapExamples += s.examples
        }
        if gapExamples > 0 { permutedLossGap = gapSum / Double(gapExamples) }
        replicas = replicaSet.sorted()
        inputMeanAbs = examples > 0 ? weightedAbs / Double(examples) : 0
        layers.sort { $0.depth < $1.depth }
    }

    /// Whether any shard's forward pass produced a non-finite value.
    var forwardNonFinite: Bool { outputNonFinite > 0 || layers.contains { $0.nonFiniteCount > 0 } }
}
