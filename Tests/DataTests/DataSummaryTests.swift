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
