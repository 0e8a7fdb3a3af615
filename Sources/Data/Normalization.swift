/// How features are rescaled before training (the config's `data.normalize`).
public enum Normalization: String, Sendable, CaseIterable {
    /// Features are used as read.
    case none
    /// `x / 255`, for 8-bit images.
    case scale
    /// `(x − mean) / std` with training-set statistics: one (mean, std) per image channel
    /// (as torchvision's `Normalize`), or per feature for CSV data; a zero std divides by 1.
    case standardize
}

/// The statistics a normalization used: feature `f` becomes `(x − mean[s]) / divisor(s)` with `s = f / featuresPerStatistic`.
public struct NormalizationStatistics: Sendable, Equatable {
    /// The method these statistics implement.
    public let method: Normalization
    /// Subtracted means: one per channel (images) or per feature (CSV); `[0]` for `scale`; empty for `none`.
    public let mean: [Float]
    /// Population standard deviations (divide by N) of the training data, aligned with `mean`; `[255]` for `scale`.
    public let std: [Float]
    /// How many consecutive features of an example share one (mean, std): H·W for images, 1 for CSV, all for `scale`.
    public let featuresPerStatistic: Int

    /// Statistics given explicitly (for example restored from a checkpoint); `mean` and `std` must have equal counts.
    public init(method: Normalization, mean: [Float], std: [Float], featuresPerStatistic: Int) {
        precondition(mean.count == std.count && featuresPerStatistic >= 1, "mean and std must align; featuresPerStatistic ≥ 1")
        self.method = method
        self.mean = mean
        self.std = std
        self.featuresPerStatistic = featuresPerStatistic
    }

    /// The value divided by for statistic `index`: its std, or 1 where the std is 0 (the feature is only centered).
    public func divisor(_ index: Int) -> Float { std[index] == 0 ? 1 : std[index] }

    /// Computes the statistics of `method` from `train` (population mean and std, accumulated in Double).
    public static func compute(_ method: Normalization, from train: Dataset) -> NormalizationStatistics {
        let width = train.featureCount
        switch method {
        case .none:
            return NormalizationStatistics(method: .none, mean: [], std: [], featuresPerStatistic: width)
        case .scale:
            return NormalizationStatistics(method: .scale, mean: [0], std: [255], featuresPerStatistic: width)
        case .standardize:
            let group = train.exampleShape.count == 3 ? train.exampleShape[1] * train.exampleShape[2] : 1
            let groups = width / group
            var sums = [Double](repeating: 0, count: groups)
            var squares = [Double](repeating: 0, count: groups)
            train.features.withUnsafeBufferPointer { values in
                forEachGroup(count: train.count, groups: groups, group: group) { offset, g in
                    var sum = 0.0
                    for k in 0..<group { sum += Double(values[offset + k]) }
                    sums[g] += sum
                }
                let n = Double(max(1, train.count * group))
                let means = sums.map { $0 / n }
                forEachGroup(count: train.count, groups: groups, group: group) { offset, g in
                    var square = 0.0
                    let m = means[g]
                    for k in 0..<group { let d = Double(values[offset + k]) - m; square += d * d }
                    squares[g] += square
                }
            }
            let n = Double(max(1, train.count * group))
            return NormalizationStatistics(method: .standardize,
                                           mean: sums.map { Float($0 / n) },
                                           std: squares.map { Float(($0 / n).squareRoot()) },
                                           featuresPerStatistic: group)
        }
    }

    /// Rescales `dataset`'s features in place: `x ← (x − mean[s]) / divisor(s)`.
    public func apply(to dataset: inout Dataset) {
        guard method != .none, !mean.isEmpty else { return }
        let width = dataset.featureCount
        precondition(width % featuresPerStatistic == 0 && (width / featuresPerStatistic) % mean.count == 0,
                     "normalization statistics for groups of \(featuresPerStatistic) × \(mean.count) do not fit \(width) features")
        let group = featuresPerStatistic, groups = width / group
        let divisors = (0..<mean.count).map(divisor)
        let means = mean
        let count = dataset.count
        dataset.features.withUnsafeMutableBufferPointer { values in
            NormalizationStatistics.forEachGroup(count: count, groups: groups, group: group) { offset, g in
                let m = means[g % means.count], d = divisors[g % means.count]
                for k in 0..<group { values[offset + k] = (values[offset + k] - m) / d }
            }
        }
    }

    /// Calls `body(offset, groupIndex)` for every group of `group` consecutive features of every example.
    @inline(__always) private static func forEachGroup(count: Int, groups: Int, group: Int, _ body: (Int, Int) -> Void) {
        var offset = 0
        for _ in 0..<count {
            for g in 0..<groups {
                body(offset, g)
                offset += group
            }
        }
    }
}

extension DataSplit {
    /// Normalizes both sets in place with statistics of the training set only, and returns those statistics.
    @discardableResult
    public mutating func normalize(_ method: Normalization) -> NormalizationStatistics {
        let statistics = NormalizationStatistics.compute(method, from: train)
        statistics.apply(to: &train)
        statistics.apply(to: &test)
        return statistics
    }
}
