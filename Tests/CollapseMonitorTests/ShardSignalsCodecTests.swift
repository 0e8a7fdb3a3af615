import Testing
@testable import CollapseMonitor
import struct TensorCore.DeterministicRNG

@Suite struct ShardSignalsCodecTests {
    static let sample = ShardSignals(
        examples: 64, lossSum: 147.25, lossCount: 64,
        input: InputSignals(min: -0.8, max: 2.9, meanAbs: 0.74, constantFeatures: 3, nonFiniteCount: 0),
        labels: LabelSignals(min: 0, max: 9, distinct: 10, nonFiniteCount: 0),
        output: OutputSignals(units: 10, maxVariance: 3.5, meanVariance: 1.25, distinctPredictions: 7, distinctLabels: 10,
                              predictionEntropy: 1.5, labelEntropy: 2.25, nonFiniteCount: 0, permutedLossGap: 0.8125),
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

    /// Decodes `bytes`: either to signals that re-encode to the same bytes, or by throwing
    /// `MonitorError.malformedSignals`; any other error type is a failure. Returns whether it decoded.
    ///
    /// The one legitimate difference: the Float32 fields (entropies, layer fractions and std)
    /// are held as Double, and widening a signaling NaN quiets it (IEEE 754 §6.2: an operation
    /// on a signaling NaN delivers a quiet one), so such a field re-encodes with its quiet bit,
    /// bit 22, set: 0x40 in the field's third byte. Those re-encoded bytes are then a fixed point.
    /// Every other field is exact: Float64 by bit pattern, integers of the field's width, and
    /// layer names validated UTF-8, kept byte for byte.
    @discardableResult
    static func expectRoundTripOrMonitorError(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let signals: ShardSignals
        do {
            signals = try ShardSignals.decode(bytes)
        } catch let error as MonitorError {
            guard case .malformedSignals = error else {
                Issue.record("decode threw \(error), not malformedSignals", sourceLocation: sourceLocation)
                return false
            }
            return false
        } catch {
            Issue.record("decode threw \(type(of: error)), not MonitorError: \(error)", sourceLocation: sourceLocation)
            return false
        }
        let again = signals.encode()
        guard again != bytes else { return true }
        #expect(again.count == bytes.count, sourceLocation: sourceLocation)
        #expect(zip(again, bytes).allSatisfy { $0 == $1 || $0 ^ $1 == 0x40 },
                "re-encoding differs by more than quieted NaNs", sourceLocation: sourceLocation)
        #expect((try? ShardSignals.decode(again).encode()) == again, sourceLocation: sourceLocation)
        return true
    }

    @Test func mutatedPayloadsRoundTripOrThrowMonitorError() {
        var rng = DeterministicRNG(0x9E37_79B9_7F4A_7C15)
        var decoded = 0
        for _ in 0..<2000 {
            var bytes = Self.sample.encode()
            for _ in 0..<4 { bytes[rng.nextIndex(below: bytes.count)] = UInt8(truncatingIfNeeded: rng.next()) }
            if Self.expectRoundTripOrMonitorError(bytes) { decoded += 1 }
        }
        // Both outcomes were exercised.
        #expect(decoded > 100 && decoded < 1900, "\(decoded) of 2000 decoded")
    }

    @Test func randomBytesAfterAValidHeaderRoundTripOrThrowMonitorError() {
        var rng = DeterministicRNG(7)
        let prefix = Array(Self.sample.encode().prefix(3))
        for round in 0..<4000 {
            let body = (0..<rng.nextIndex(below: 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            Self.expectRoundTripOrMonitorError(round % 4 == 0 ? body : prefix + body)
        }
    }

    @Test func aSignalingNaNInAFloat32FieldReencodesQuiet() throws {
        var bytes = Self.sample.encode()
        let entropy = 97  // output.predictionEntropy: after 3 header bytes and 94 bytes of fields
        #expect(Array(bytes[entropy..<(entropy + 4)]) == [0x00, 0x00, 0xC0, 0x3F])  // 1.5 as Float32
        bytes.replaceSubrange(entropy..<(entropy + 4), with: [0x00, 0x00, 0xA0, 0x7F])  // signaling NaN 0x7FA00000
        var quiet = bytes
        quiet[entropy + 2] = 0xE0  // 0x7FE00000
        #expect(try ShardSignals.decode(bytes).encode() == quiet)
        #expect(Self.expectRoundTripOrMonitorError(bytes))
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
