#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a run's training and test examples come from, as named by the config's `data` section.
public enum DataSource: Sendable, Equatable {
    /// Fashion-MNIST's four IDX files under `root` (`train-images-idx3-ubyte.gz`, …; un-gzipped names also accepted).
    case fashionMNIST(root: String = DataSource.defaultFashionMNISTRoot)
    /// Four IDX files, gzip or plain.
    case idx(trainImages: String, trainLabels: String, testImages: String, testLabels: String)
    /// Two CSV files with a header row; `labelColumn` names the label, every other column is a feature.
    case csv(train: String, test: String, labelColumn: String = "label")

    /// Where Debian's dataset-fashion-mnist package installs the files.
    public static let defaultFashionMNISTRoot = "/usr/share/datasets/fashion-mnist"

    /// Reads the training and test sets; the two must have the same example shape (and CSV columns).
    public func load() throws -> DataSplit {
        switch self {
        case .fashionMNIST(let root):
            let files = try ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
                .map { try DataSource.locate($0, in: root) }
            return try DataSource.loadIDX(files[0], files[1], files[2], files[3], prefix: "fashion-mnist")
        case .idx(let trainImages, let trainLabels, let testImages, let testLabels):
            return try DataSource.loadIDX(trainImages, trainLabels, testImages, testLabels, prefix: "idx")
        case .csv(let trainPath, let testPath, let labelColumn):
            let train = try CSVReader.load(path: trainPath, labelColumn: labelColumn, name: "csv/train")
            let test = try CSVReader.load(path: testPath, labelColumn: labelColumn, name: "csv/test")
            guard train.featureColumns == test.featureColumns else {
                let reason = "feature columns differ (train \(train.featureColumns.count): \(train.featureColumns.prefix(5))…, "
                    + "test \(test.featureColumns.count): \(test.featureColumns.prefix(5))…)"
                throw DataError.shapeMismatch(trainPath: trainPath, testPath: testPath, reason: reason)
            }
            return DataSplit(train: train.dataset, test: test.dataset)
        }
    }

    private static func loadIDX(_ trainImages: String, _ trainLabels: String, _ testImages: String, _ testLabels: String,
                                prefix: String) throws -> DataSplit {
        let train = try IDXReader.loadDataset(images: trainImages, labels: trainLabels, name: "\(prefix)/train")
        let test = try IDXReader.loadDataset(images: testImages, labels: testLabels, name: "\(prefix)/test")
        guard train.exampleShape == test.exampleShape else {
            throw DataError.shapeMismatch(trainPath: trainImages, testPath: testImages,
                                          reason: "image shape \(test.exampleShape) differs from the training shape \(train.exampleShape)")
        }
        return DataSplit(train: train, test: test)
    }

    /// `root/base.gz` if it exists, else `root/base`, else a `datasetNotFound` error.
    private static func locate(_ base: String, in root: String) throws -> String {
        let directory = root.hasSuffix("/") ? String(root.dropLast()) : root
        for candidate in ["\(directory)/\(base).gz", "\(directory)/\(base)"] where access(candidate, F_OK) == 0 {
            return candidate
        }
        throw DataError.datasetNotFound(root: root, missing: base)
    }
}
