/// A data set held in memory: row-major features (`count × featureCount`) and one label per example.
///
/// Labels are class indices stored as `Float` for classification, or the target values for regression.
public struct Dataset: Sendable, Equatable {
    /// A short name, such as `fashion-mnist/train`.
    public var name: String
    /// Where the examples came from (file paths), for messages and reports.
    public var source: String
    /// The features, example after example (`count × featureCount` values).
    public internal(set) var features: [Float]
    /// One label per example.
    public internal(set) var labels: [Float]
    /// For a data set read from one text file (CSV), the line of each example in it, for
    /// messages that name `source:line`; nil otherwise.
    public internal(set) var sourceLines: [Int32]?
    /// The shape of one example: `[1, rows, cols]` for IDX images, `[features]` for CSV.
    public let exampleShape: [Int]
    /// `max(label) + 1` when every label is a non-negative integer, else 0 (regression targets).
    public let classCount: Int

    /// The number of examples.
    public var count: Int { labels.count }
    /// The number of features of one example: the product of `exampleShape`.
    public var featureCount: Int { exampleShape.reduce(1, *) }

    /// Makes a data set; `features.count` must equal `labels.count × product(exampleShape)`.
    public init(name: String, source: String = "", features: [Float], labels: [Float], exampleShape: [Int]) {
        precondition(!exampleShape.isEmpty && exampleShape.allSatisfy { $0 > 0 }, "exampleShape must have positive dimensions")
        precondition(features.count == labels.count * exampleShape.reduce(1, *),
                     "features.count \(features.count) != labels.count \(labels.count) × \(exampleShape)")
        self.name = name
        self.source = source
        self.features = features
        self.labels = labels
        self.exampleShape = exampleShape
        self.classCount = Dataset.classCount(of: labels)
    }

    /// `max + 1` when all labels are non-negative integers below 2^24 (exact in Float), else 0.
    static func classCount(of labels: [Float]) -> Int {
        var maximum: Float = -1
        for label in labels {
            guard label >= 0, label < 16_777_216, label == label.rounded(.towardZero) else { return 0 }
            maximum = max(maximum, label)
        }
        return labels.isEmpty ? 0 : Int(maximum) + 1
    }

    /// Copies the rows `indices` into `features` (`indices.count × featureCount` floats) and their labels into `labels`.
    ///
    /// Indices must lie in `0..<count` (checked); rows are copied with `memcpy`-speed block copies.
    public func gather(indices: [Int], features destination: UnsafeMutablePointer<Float>, labels labelDestination: UnsafeMutablePointer<Float>) {
        let width = featureCount
        features.withUnsafeBufferPointer { source in
            labels.withUnsafeBufferPointer { sourceLabels in
                for (row, index) in indices.enumerated() {
                    releaseCheck(index >= 0 && index < sourceLabels.count, "example index \(index) out of range 0..<\(sourceLabels.count)")
                    (destination + row * width).update(from: source.baseAddress! + index * width, count: width)
                    labelDestination[row] = sourceLabels[index]
                }
            }
        }
    }

    /// The rows `indices` as new arrays: `(features: indices.count × featureCount, labels: indices.count)`.
    public func gather(indices: [Int]) -> (features: [Float], labels: [Float]) {
        var batchFeatures = [Float](repeating: 0, count: indices.count * featureCount)
        var batchLabels = [Float](repeating: 0, count: indices.count)
        batchFeatures.withUnsafeMutableBufferPointer { featureBuffer in
            batchLabels.withUnsafeMutableBufferPointer { labelBuffer in
                guard let featureBase = featureBuffer.baseAddress, let labelBase = labelBuffer.baseAddress else { return }
                gather(indices: indices, features: featureBase, labels: labelBase)
            }
        }
        return (batchFeatures, batchLabels)
    }

    /// A new data set made of the examples `indices`, in that order (same name, source, shape
    /// and source lines).
    public func subset(_ indices: [Int]) -> Dataset {
        let rows = gather(indices: indices)
        var result = Dataset(name: name, source: source, features: rows.features, labels: rows.labels, exampleShape: exampleShape)
        result.sourceLines = sourceLines.map { lines in indices.map { lines[$0] } }
        return result
    }
}

/// A training set and a test set of the same example shape.
public struct DataSplit: Sendable, Equatable {
    /// The examples to train on; normalization statistics come from these only.
    public var train: Dataset
    /// The held-out examples for evaluation.
    public var test: Dataset

    /// Pairs a training set with a test set.
    public init(train: Dataset, test: Dataset) {
        self.train = train
        self.test = test
    }

    /// The number of classes over both sets (the larger of the two), or 0 when either holds non-class labels.
    public var classCount: Int {
        (train.classCount == 0 || test.classCount == 0) ? 0 : max(train.classCount, test.classCount)
    }
}
