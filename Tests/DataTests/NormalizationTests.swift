import Testing
import TensorCore
@testable import Data

@Suite struct NormalizationTests {
    /// Random values in 0...255 in the given shape.
    func randomDataset(count: Int, shape: [Int], seed: UInt64) -> Dataset {
        var generator = DeterministicRNG(key: [seed])
        let width = shape.reduce(1, *)
        return Dataset(name: "r", features: (0..<count * width).map { _ in Float(generator.nextIndex(below: 256)) },
                       labels: (0..<count).map { Float($0 % 2) }, exampleShape: shape)
    }

    /// Population mean and std of `values`, computed the plain way in Double.
    func naiveMoments(_ values: [Float]) -> (mean: Double, std: Double) {
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
        let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)
        return (mean, variance.squareRoot())
    }

    @Test func noneLeavesFeaturesUntouched() {
        var split = DataSplit(train: randomDataset(count: 4, shape: [3], seed: 1), test: randomDataset(count: 2, shape: [3], seed: 2))
        let before = split
        let statistics = split.normalize(.none)
        #expect(split == before)
        #expect(statistics.mean.isEmpty)
    }

    @Test func scaleDividesTrainAndTestBy255() {
        var split = DataSplit(train: randomDataset(count: 4, shape: [1, 2, 2], seed: 1), test: randomDataset(count: 3, shape: [1, 2, 2], seed: 2))
        let before = split
        let statistics = split.normalize(.scale)
        #expect(statistics.mean == [0] && statistics.std == [255])
        #expect(split.train.features == before.train.features.map { $0 / 255 })
        #expect(split.test.features == before.test.features.map { $0 / 255 })
    }

    @Test func standardizeImagesUsesOneMeanAndStdPerChannelFromTrainOnly() {
        let shape = [2, 2, 3]
        var split = DataSplit(train: randomDataset(count: 5, shape: shape, seed: 3), test: randomDataset(count: 4, shape: shape, seed: 4))
        let before = split
        let statistics = split.normalize(.standardize)
        #expect(statistics.featuresPerStatistic == 6)
        for channel in 0..<2 {
            let values = (0..<5).flatMap { example in (0..<6).map { before.train.features[example * 12 + channel * 6 + $0] } }
            let (mean, std) = naiveMoments(values)
            #expect(abs(Double(statistics.mean[channel]) - mean) < 1e-4)
            #expect(abs(Double(statistics.std[channel]) - std) < 1e-4)
            for (set, original) in [(split.train, before.train), (split.test, before.test)] {
                for example in 0..<original.count {
                    for pixel in 0..<6 {
                        let index = example * 12 + channel * 6 + pixel
                        let expected = (Double(original.features[index]) - mean) / std
                        #expect(abs(Double(set.features[index]) - expected) < 1e-5)
                    }
                }
            }
        }
    }

    @Test func standardizedTrainingChannelsHaveZeroMeanAndUnitStd() {
        var split = DataSplit(train: randomDataset(count: 20, shape: [1, 4, 4], seed: 5), test: randomDataset(count: 2, shape: [1, 4, 4], seed: 6))
        split.normalize(.standardize)
        let (mean, std) = naiveMoments(split.train.features)
        #expect(abs(mean) < 1e-5)
        #expect(abs(std - 1) < 1e-5)
    }

    @Test func standardizeCSVIsPerFeatureAndOnlyCentersConstantFeatures() {
        let train = Dataset(name: "t", features: [1, 7, 10,  3, 7, 20,  5, 7, 60], labels: [0, 1, 0], exampleShape: [3])
        let test = Dataset(name: "t", features: [2, 8, 0], labels: [1], exampleShape: [3])
        var split = DataSplit(train: train, test: test)
        let statistics = split.normalize(.standardize)
        #expect(statistics.featuresPerStatistic == 1)
        let columns = (0..<3).map { f in naiveMoments((0..<3).map { train.features[$0 * 3 + f] }) }
        for f in 0..<3 {
            #expect(abs(Double(statistics.mean[f]) - columns[f].mean) < 1e-5)
            #expect(abs(Double(statistics.std[f]) - columns[f].std) < 1e-5)
        }
        #expect(statistics.std[1] == 0 && statistics.divisor(1) == 1)
        #expect(split.train.features[1] == 0 && split.train.features[4] == 0)
        #expect(split.test.features[1] == 1)  // 8 − 7, divided by 1
        #expect(abs(Double(split.test.features[0]) - (2 - columns[0].mean) / columns[0].std) < 1e-5)
        #expect(abs(Double(split.test.features[2]) - (0 - columns[2].mean) / columns[2].std) < 1e-5)
    }

    @Test func explicitStatisticsReproduceComputedOnes() {
        let original = randomDataset(count: 6, shape: [1, 3, 3], seed: 7)
        let computed = NormalizationStatistics.compute(.standardize, from: original)
        let restored = NormalizationStatistics(method: .standardize, mean: computed.mean, std: computed.std, featuresPerStatistic: 9)
        var first = original, second = original
        computed.apply(to: &first)
        restored.apply(to: &second)
        #expect(first.features == second.features)
    }
}
