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
    /// The feature whose range (max − min) is the widest, and its range over the median range
    /// of the non-constant features (1 when fewer than two vary): a column in other units,
    /// ×1000 the rest, shows as a ratio near 1000.
    public let widestFeature: Int
    public let widestFeatureRatio: Double

    /// True when every label has the same value (a single class, or a constant regression target).
    public var labelsAreConstant: Bool { count > 0 && labelMin == labelMax }

    /// Summarizes `dataset` in two passes over its features (moments accumulated in Double).
    public init(_ dataset: Dataset) {
        count = dataset.count
        featureCount = dataset.featureCount
        let width = featureCount
        var columnMin = [Float](repeating: .infinity, count: width)
        var columnMax = [Float](repeating: -.infinity, count: width)
        var sum = 0.0, finite = 0, nonFinite = 0, squares = 0.0
        // Fast path, eight lanes at a time, when every value is finite (the usual case); any
        // NaN or infinity makes the probe NaN and the scalar pass below starts over.
        let fast: (sum: Double, squares: Double)? = dataset.features.isEmpty ? (0, 0) : dataset.features.withUnsafeBufferPointer { values in
            columnMin.withUnsafeMutableBufferPointer { low in
                columnMax.withUnsafeMutableBufferPointer { high in
                    DataSummary.finiteMoments(values.baseAddress!, rows: dataset.count, width: width,
                                              low: low.baseAddress!, high: high.baseAddress!)
                }
            }
        }
        if let fast {
            sum = fast.sum
            squares = fast.squares
            finite = dataset.count * width
        } else {
            columnMin = [Float](repeating: .infinity, count: width)
            columnMax = [Float](repeating: -.infinity, count: width)
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
            for x in dataset.features where x.isFinite { squares += (Double(x) - mean) * (Double(x) - mean) }
        }
        let mean = finite > 0 ? sum / Double(finite) : 0
        featureMin = finite > 0 ? columnMin.min()! : 0
        featureMax = finite > 0 ? columnMax.max()! : 0
        featureMean = Float(mean)
        featureStd = finite > 0 ? Float((squares / Double(finite)).squareRoot()) : 0
        nonFiniteFeatureCount = nonFinite
        constantFeatureCount = dataset.count == 0 ? 0 : zip(columnMin, columnMax).filter { $0 == $1 || !$0.isFinite }.count
        let ranges = zip(columnMin, columnMax).map { Double($1) - Double($0) }
        let varying = ranges.filter { $0 > 0 && $0.isFinite }.sorted()
        if varying.count >= 2, let widest = ranges.indices.max(by: { ranges[$0] < ranges[$1] }) {
            widestFeature = widest
            widestFeatureRatio = ranges[widest] / varying[varying.count / 2]
        } else {
            widestFeature = 0
            widestFeatureRatio = 1
        }

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

    /// Sum, squared deviations from the mean, and per-column min/max of `rows` × `width` values,
    /// or nil when one of them is NaN or infinite. Sums run in eight Float64 lanes.
    static func finiteMoments(_ values: UnsafePointer<Float>, rows: Int, width: Int,
                              low: UnsafeMutablePointer<Float>, high: UnsafeMutablePointer<Float>) -> (sum: Double, squares: Double)? {
        let raw = UnsafeRawPointer(values)
        let lowRaw = UnsafeMutableRawPointer(low), highRaw = UnsafeMutableRawPointer(high)
        var lanes = SIMD8<Double>(), probe = SIMD8<Float>()
        var tail = 0.0, tailProbe: Float = 0
        for row in 0..<rows {
            let base = row * width
            var f = 0
            while f + 8 <= width {
                let x = raw.loadUnaligned(fromByteOffset: (base + f) * 4, as: SIMD8<Float>.self)
                probe += x - x
                lanes += SIMD8<Double>(x)
                let l = lowRaw.loadUnaligned(fromByteOffset: f * 4, as: SIMD8<Float>.self)
                let h = highRaw.loadUnaligned(fromByteOffset: f * 4, as: SIMD8<Float>.self)
                lowRaw.storeBytes(of: l.replacing(with: x, where: x .< l), toByteOffset: f * 4, as: SIMD8<Float>.self)
                highRaw.storeBytes(of: h.replacing(with: x, where: x .> h), toByteOffset: f * 4, as: SIMD8<Float>.self)
                f += 8
            }
            while f < width {
                let x = values[base + f]
                tailProbe += x - x
                tail += Double(x)
                low[f] = min(low[f], x)
                high[f] = max(high[f], x)
                f += 1
            }
        }
        guard probe.sum() == 0, tailProbe == 0 else { return nil }
        let total = rows * width
        let sum = lanes.sum() + tail
        let mean = total > 0 ? sum / Double(total) : 0
        var squareLanes = SIMD8<Double>(), squareTail = 0.0
        let meanLanes = SIMD8<Double>(repeating: mean)
        var i = 0
        while i + 8 <= total {
            let d = SIMD8<Double>(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)) - meanLanes
            squareLanes += d * d
            i += 8
        }
        while i < total { let d = Double(values[i]) - mean; squareTail += d * d; i += 1 }
        return (sum, squareLanes.sum() + squareTail)
    }
}
