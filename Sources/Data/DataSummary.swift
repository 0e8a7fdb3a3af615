/// Descriptive statistics of a data set, for reports and for the collapse monitor's input checks
/// (unnormalized inputs, constant features, constant labels, non-finite values).
public struct DataSummary: Sendable, Equatable {
    /// The number of examples.
    public let count: Int
    /// The number of features per example.
    public let featureCount: Int
    /// Smallest finite feature value (0 when there is none).
    public let featureMin: Float
    /// Largest finite feature value (0 when there is none).
    public let featureMax: Float
    /// Mean of all finite feature values.
    public let featureMean: Float
    /// Population standard deviation of all finite feature values.
    public let featureStd: Float
    /// Feature values that are NaN or infinite.
    public let nonFiniteFeatureCount: Int
    /// Feature columns whose value is the same in every example.
    public let constantFeatureCount: Int
    /// Smallest label.
    public let labelMin: Float
    /// Largest label.
    public let labelMax: Float
    /// Mean label.
    public let labelMean: Float
    /// Population standard deviation of the labels.
    public let labelStd: Float
    /// Labels that are NaN or infinite.
    public let nonFiniteLabelCount: Int
    /// Examples per class (`labelHistogram[c]` = examples of class c) when the labels are classes
    /// (`classCount` between 1 and 65536); empty otherwise.
    public let labelHistogram: [Int]

    /// True when every label has the same value (a single class, or a constant regression target).
    public var labelsAreConstant: Bool { count > 0 && labelMin == labelMax }

    /// Summarizes `dataset` in two passes over its features (moments accumulated in Double).
    public init(_ dataset: Dataset) {
        count = dataset.count
        featureCount = dataset.featureCount
        let width = featureCount
        var columnMin = [Float](repeating: .infinity, count: width)
        var columnMax = [Float](repeating: -.infinity, count: width)
        var sum = 0.0, finite = 0, nonFinite = 0
        dataset.features.withUnsafeBufferPointer { values in
            columnMin.withUnsafeMutableBufferPointer { low in
                columnMax.withUnsafeMutableBufferPointer { high in
                    var offset = 0
                    for _ in 0..<dataset.count {
                        for f in 0..<width {
                            let x = values[offset + f]
                            if x.isFinite {
                                sum += Double(x)
                                finite += 1
                                low[f] = min(low[f], x)
                                high[f] = max(high[f], x)
                            } else {
                                nonFinite += 1
                            }
                        }
                        offset += width
                    }
                }
            }
        }
        let mean = finite > 0 ? sum / Double(finite) : 0
        var squares = 0.0
        for x in dataset.features where x.isFinite { squares += (Double(x) - mean) * (Double(x) - mean) }
        featureMin = finite > 0 ? columnMin.min()! : 0
        featureMax = finite > 0 ? columnMax.max()! : 0
        featureMean = Float(mean)
        featureStd = finite > 0 ? Float((squares / Double(finite)).squareRoot()) : 0
        nonFiniteFeatureCount = nonFinite
        constantFeatureCount = dataset.count == 0 ? 0 : zip(columnMin, columnMax).filter { $0 == $1 || !$0.isFinite }.count

        let finiteLabels = dataset.labels.filter(\.isFinite)
        nonFiniteLabelCount = dataset.labels.count - finiteLabels.count
        labelMin = finiteLabels.min() ?? 0
        labelMax = finiteLabels.max() ?? 0
        let labelSum = finiteLabels.reduce(0.0) { $0 + Double($1) }
        let labelAverage = finiteLabels.isEmpty ? 0 : labelSum / Double(finiteLabels.count)
        let labelSquares = finiteLabels.reduce(0.0) { $0 + (Double($1) - labelAverage) * (Double($1) - labelAverage) }
        labelMean = Float(labelAverage)
        labelStd = finiteLabels.isEmpty ? 0 : Float((labelSquares / Double(finiteLabels.count)).squareRoot())

        var histogram: [Int] = []
        if dataset.classCount > 0 && dataset.classCount <= 65536 {
            histogram = [Int](repeating: 0, count: dataset.classCount)
            for label in dataset.labels { histogram[Int(label)] += 1 }
        }
        labelHistogram = histogram
    }
}
