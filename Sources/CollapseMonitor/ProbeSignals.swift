/// What one replica's model outputs on the run's fixed probe batch, evaluated every K steps
/// in evaluation mode with the step's parameters.
///
/// Across examples, a near-zero `meanVariance` is a collapsed output seen on the same inputs
/// every time; across replicas, every replica holds the same parameters and evaluates the same
/// examples deterministically, so their `outputChecksum`s must be equal bit for bit — a replica
/// that disagrees computes wrongly (bad memory, a different library, a different build).
public struct ProbeSignals: Equatable, Sendable {
    /// Examples in the probe batch.
    public var examples: Int
    /// Mean over output units of the variance across the probe examples.
    public var meanVariance: Double
    /// Distinct argmax predictions over the probe examples (rounded outputs for one unit).
    public var distinctPredictions: Int
    /// FNV-1a 64 of the output values' bits.
    public var outputChecksum: UInt64

    public init(examples: Int, meanVariance: Double, distinctPredictions: Int, outputChecksum: UInt64) {
        self.examples = examples; self.meanVariance = meanVariance
        self.distinctPredictions = distinctPredictions; self.outputChecksum = outputChecksum
    }
}

/// Compares the probe results of one step across replicas.
public enum ProbeComparison {
    /// Pairs (majority replica, dissenting replica) whose checksums differ from the most common
    /// checksum; with two disagreeing replicas and no majority, the pair itself.
    public static func disagreements(_ results: [(replica: Int, probe: ProbeSignals)]) -> [(Int, Int)] {
        guard results.count >= 2 else { return [] }
        var counts: [UInt64: Int] = [:]
        for result in results { counts[result.probe.outputChecksum, default: 0] += 1 }
        guard counts.count > 1 else { return [] }
        let top = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }!
        let reference = results.first { $0.probe.outputChecksum == top.key }!.replica
        return results.filter { $0.probe.outputChecksum != top.key }.map { (reference, $0.replica) }
    }
}
