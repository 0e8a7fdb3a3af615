import Testing
@testable import Data

@Suite struct FingerprintTests {
    let train = Dataset(name: "a", features: (0..<24).map { Float($0) * 0.5 }, labels: [0, 1, 2, 1], exampleShape: [1, 2, 3])
    let test = Dataset(name: "b", features: (0..<12).map(Float.init), labels: [1, 0], exampleShape: [1, 2, 3])

    /// `dataset` with one byte of its features or labels changed.
    func flippingOneByte(of dataset: Dataset, inLabels: Bool, at index: Int) -> Dataset {
        var values = inLabels ? dataset.labels : dataset.features
        values.withUnsafeMutableBytes { $0[index] ^= 0x01 }
        return Dataset(name: dataset.name, features: inLabels ? dataset.features : values,
                       labels: inLabels ? values : dataset.labels, exampleShape: dataset.exampleShape)
    }

    @Test func equalDataGiveEqualFingerprintsWhateverTheName() {
        let renamed = Dataset(name: "other", source: "x", features: train.features, labels: train.labels, exampleShape: train.exampleShape)
        #expect(renamed.fingerprint() == train.fingerprint())
        #expect(DataSplit(train: renamed, test: test).fingerprint() == DataSplit(train: train, test: test).fingerprint())
    }

    @Test func oneFeatureByteChangesTheFingerprint() {
        let changed = flippingOneByte(of: train, inLabels: false, at: 37)
        #expect(changed.fingerprint() != train.fingerprint())
        #expect(DataSplit(train: changed, test: test).fingerprint() != DataSplit(train: train, test: test).fingerprint())
    }

    @Test func oneLabelByteChangesTheFingerprint() {
        let changed = flippingOneByte(of: test, inLabels: true, at: 2)
        #expect(changed.fingerprint() != test.fingerprint())
        #expect(DataSplit(train: train, test: changed).fingerprint() != DataSplit(train: train, test: test).fingerprint())
    }

    @Test func reshapingChangesTheFingerprint() {
        let reshaped = Dataset(name: "a", features: train.features, labels: train.labels, exampleShape: [1, 3, 2])
        #expect(reshaped.fingerprint() != train.fingerprint())
    }

    @Test func swappingTrainAndTestChangesTheSplitFingerprint() {
        #expect(DataSplit(train: train, test: test).fingerprint() != DataSplit(train: test, test: train).fingerprint())
    }
}
