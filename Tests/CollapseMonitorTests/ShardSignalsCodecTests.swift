import Testing
@testable import CollapseMonitor

@Suite struct ShardSignalsCodecTests {
    static let sample = ShardSignals(
        examples: 64, lossSum: 147.25, lossCount: 64,
        input: InputSignals(min: -0.8, max: 2.9, meanAbs: 0.74, constantFeatures: 3, nonFiniteCount: 0),
        labels: LabelSignals(min: 0, max: 9, distinct: 10, nonFiniteCount: 0),
        output: OutputSignals(units: 10, maxVariance: 3.5, meanVariance: 1.25, distinctPredictions: 7, distinctLabels: 10,
                              predictionEntropy: 1.5, labelEntropy: 2.25, nonFiniteCount: 0),
        layers: [LayerSignals(depth: 0, name: "layers.0", activation: "relu", units: 256, deadFraction: 0.125,
                              saturationFraction: 0, outputStd: 0.5, effectiveWidth: 220, nonFiniteCount: 0),
                 LayerSignals(depth: 1, name: "layers.3.layers.0", activation: "tanh", units: 128, deadFraction: 0,
                              saturationFraction: 0.25, outputStd: 0.75, effectiveWidth: 128, nonFiniteCount: 2)],
        gradientNorm: 1.75, parameterChecksum: 0xDEAD_BEEF_0123_4567)

    @Test func roundTripsExactly() throws {
        let bytes = Self.sample.encode()
        #expect(try ShardSignals.decode(bytes) == Self.sample)
        #expect(bytes.count < 300)
    }

    @Test func everyTruncationThrows() {
        let bytes = Self.sample.encode()
        for length in 0..<bytes.count {
            #expect(throws: MonitorError.self) { try ShardSignals.decode(Array(bytes.prefix(length))) }
        }
    }

    @Test func wrongVersionThrows() {
        var bytes = Self.sample.encode()
        bytes[2] = 99
        #expect(throws: MonitorError.malformedSignals(reason: "version 99, expected \(ShardSignals.codecVersion)")) { try ShardSignals.decode(bytes) }
    }

    @Test func randomGarbageNeverTraps() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2000 {
            var bytes = Self.sample.encode()
            for _ in 0..<4 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let position = Int(state >> 33) % bytes.count
                bytes[position] = UInt8(truncatingIfNeeded: state >> 13)
            }
            _ = try? ShardSignals.decode(bytes)
        }
    }
}

@Suite struct ProbeSignalsTests {
    static let probe = ProbeSignals(examples: 64, meanVariance: 0.25, distinctPredictions: 7, outputChecksum: 0xDEAD_BEEF_0123_4567)

    @Test func probeRoundTripsThroughTheCodec() throws {
        var signals = ShardSignals(examples: 3, lossSum: 1.5, lossCount: 3)
        signals.probe = Self.probe
        #expect(try ShardSignals.decode(signals.encode()) == signals)
        signals.probe = nil
        #expect(try ShardSignals.decode(signals.encode()).probe == nil)
    }

    @Test func agreeingReplicasHaveNoDisagreement() {
        #expect(ProbeComparison.disagreements([(0, Self.probe), (1, Self.probe), (2, Self.probe)]).isEmpty)
    }

    @Test func theDissentingReplicaIsNamed() {
        var other = Self.probe
        other.outputChecksum ^= 1
        let pairs = ProbeComparison.disagreements([(0, Self.probe), (3, other), (5, Self.probe)])
        #expect(pairs.count == 1)
        #expect(pairs.first?.1 == 3)
        #expect(pairs.first?.0 == 0 || pairs.first?.0 == 5)
    }

    @Test func aSingleReplicaCannotDisagree() {
        #expect(ProbeComparison.disagreements([(0, Self.probe)]).isEmpty)
    }
}
