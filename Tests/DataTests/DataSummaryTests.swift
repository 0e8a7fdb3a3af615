import Testing
@testable import Data

@Suite struct DataSummaryTests {
    @Test func featureMomentsMatchANaiveComputation() {
        let features: [Float] = [1, 5, -2,  3, 5, 8,  0, 5, 4,  6, 5, 1]
        let summary = DataSummary(Dataset(name: "t", features: features, labels: [0, 1, 2, 1], exampleShape: [3]))
        let mean = features.reduce(0.0) { $0 + Double($1) } / 12
        let std = (features.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / 12).squareRoot()
        #expect(summary.featureMin == -2 && summary.featureMax == 8)
        #expect(abs(Double(summary.featureMean) - mean) < 1e-6)
        #expect(abs(Double(summary.featureStd) - std) < 1e-5)
        #expect(summary.count == 4 && summary.featureCount == 3)
    }

    @Test func aFeatureInOtherUnitsStandsOutByItsRange() {
        // Four features of range ~2, the third ×1000 (range 2000), one constant.
        let rows: [[Float]] = [[0, 1, 1000, 5, -1], [2, -1, -1000, 5, 1], [1, 0, 0, 5, 0]]
        let summary = DataSummary(Dataset(name: "t", features: rows.flatMap { $0 }, labels: [0, 1, 0], exampleShape: [5]))
        #expect(summary.widestFeature == 2)
        #expect(summary.widestFeatureRatio == 1000)
        let even = DataSummary(Dataset(name: "t", features: [0, 1, 2, 3, 1, 0, 3, 2], labels: [0, 1], exampleShape: [4]))
        #expect(even.widestFeatureRatio == 1)
    }

    /// Wide rows go through the eight-lane path (with a scalar tail: 21 = 2·8 + 5 columns);
    /// one NaN sends the same data through the scalar path. Both agree with a naive computation.
    @Test func theLanePathAndTheScalarPathAgreeWithANaiveComputation() {
        var rng = SystemRandomNumberGenerator()
        let rows = 50, width = 21
        var features = (0..<(rows * width)).map { _ in Float.random(in: -3...7, using: &rng) }
        for r in 0..<rows { features[r * width + 4] = 2.5 }  // one constant column
        func naive(_ values: [Float]) -> (min: Float, max: Float, mean: Double, std: Double) {
            let finite = values.filter(\.isFinite)
            let mean = finite.reduce(0.0) { $0 + Double($1) } / Double(finite.count)
            let std = (finite.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(finite.count)).squareRoot()
            return (finite.min()!, finite.max()!, mean, std)
        }
        for withNaN in [false, true] {
            var values = features
            if withNaN { values[7 * width + 3] = .nan }
            let summary = DataSummary(Dataset(name: "t", features: values, labels: [Float](repeating: 0, count: rows), exampleShape: [width]))
            let expected = naive(values)
            #expect(summary.featureMin == expected.min && summary.featureMax == expected.max)
            #expect(abs(Double(summary.featureMean) - expected.mean) < 1e-5)
            #expect(abs(Double(summary.featureStd) - expected.std) < 1e-5)
            #expect(summary.nonFiniteFeatureCount == (withNaN ? 1 : 0))
            #expect(summary.constantFeatureCount == 1)
        }
    }

    @Test func countsConstantFeatures() {
        let summary = DataSummary(Dataset(name: "t", features: [1, 5, 0,  2, 5, 0,  3, 5, 0], labels: [0, 1, 0], exampleShape: [3]))
        #expect(summary.constantFeatureCount == 2)
    }

    @Test func labelHistogramCountsEachClass() {
        let summary = DataSummary(Dataset(name: "t", features: [Float](repeating: 0, count: 6), labels: [2, 0, 2, 2, 3, 0], exampleShape: [1]))
        #expect(summary.labelHistogram == [2, 0, 3, 1])
        #expect(!summary.labelsAreConstant)
    }

    @Test func constantLabelsAreFlagged() {
        let summary = DataSummary(Dataset(name: "t", features: [1, 2, 3], labels: [4, 4, 4], exampleShape: [1]))
        #expect(summary.labelsAreConstant)
        #expect(summary.labelHistogram == [0, 0, 0, 0, 3])
        #expect(summary.labelStd == 0)
    }

    @Test func regressionLabelsHaveNoHistogramButHaveMoments() {
        let summary = DataSummary(Dataset(name: "t", features: [1, 2], labels: [0.5, -1.5], exampleShape: [1]))
        #expect(summary.labelHistogram.isEmpty)
        #expect(summary.labelMin == -1.5 && summary.labelMax == 0.5 && summary.labelMean == -0.5 && summary.labelStd == 1)
    }

    @Test func nonFiniteValuesAreCountedAndExcludedFromMoments() {
        let summary = DataSummary(Dataset(name: "t", features: [1, .nan, 3, .infinity], labels: [0, .nan], exampleShape: [2]))
        #expect(summary.nonFiniteFeatureCount == 2 && summary.nonFiniteLabelCount == 1)
        #expect(summary.featureMin == 1 && summary.featureMax == 3 && summary.featureMean == 2)
    }
}
