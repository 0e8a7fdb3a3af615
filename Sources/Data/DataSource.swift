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

    /// NumPy arrays: four `.npy` files (features `[N, …]`, labels `[N]`).
    case npy(trainFeatures: String, trainLabels: String, testFeatures: String, testLabels: String)
    /// One `.npz` archive with four arrays (Keras's `mnist.npz` names: x_train, y_train, x_test, y_test).
    case npz(path: String, trainFeatures: String, trainLabels: String, testFeatures: String, testLabels: String)

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
        case let .npy(trainFeatures, trainLabels, testFeatures, testLabels):
            let train = try Self.numpyDataset(NumpyReader.load(path: trainFeatures), NumpyReader.load(path: trainLabels),
                                              featuresPath: trainFeatures, labelsPath: trainLabels, name: "npy/train")
            let test = try Self.numpyDataset(NumpyReader.load(path: testFeatures), NumpyReader.load(path: testLabels),
                                             featuresPath: testFeatures, labelsPath: testLabels, name: "npy/test")
            return try Self.matched(train, test, trainPath: trainFeatures, testPath: testFeatures)
        case let .npz(path, trainFeatures, trainLabels, testFeatures, testLabels):
            let arrays = try NumpyReader.load(npz: path, members: [trainFeatures, trainLabels, testFeatures, testLabels])
            let train = try Self.numpyDataset(arrays[trainFeatures]!, arrays[trainLabels]!, featuresPath: "\(path)[\(trainFeatures)]",
                                              labelsPath: "\(path)[\(trainLabels)]", name: "npz/train")
            let test = try Self.numpyDataset(arrays[testFeatures]!, arrays[testLabels]!, featuresPath: "\(path)[\(testFeatures)]",
                                             labelsPath: "\(path)[\(testLabels)]", name: "npz/test")
            return try Self.matched(train, test, trainPath: "\(path)[\(trainFeatures)]", testPath: "\(path)[\(testFeatures)]")
        }
    }

    /// A data set from a features array `[N, …]` and a labels array `[N]` (or `[N, 1]`): one example
    /// per row; `[N, D]` gives examples of shape `[D]`, `[N, H, W]` images `[1, H, W]` (as IDX),
    /// `[N, C, H, W]` images `[C, H, W]`.
    static func numpyDataset(_ features: (values: [Float], shape: [Int]), _ labels: (values: [Float], shape: [Int]),
                             featuresPath: String, labelsPath: String, name: String) throws -> Dataset {
        guard let count = features.shape.first, count > 0 else {
            throw DataError.badNumpy(path: featuresPath, reason: "shape \(features.shape): needs one row per example (shape [N, …] with N ≥ 1)")
        }
        guard labels.shape.count == 1 || (labels.shape.count == 2 && labels.shape[1] == 1) else {
            throw DataError.badNumpy(path: labelsPath, reason: "shape \(labels.shape): labels are one value per example ([N] or [N, 1])")
        }
        guard labels.shape[0] == count else {
            throw DataError.countMismatch(imagesPath: featuresPath, imageCount: count, labelsPath: labelsPath, labelCount: labels.shape[0])
        }
        let rest = Array(features.shape.dropFirst())
        guard rest.allSatisfy({ $0 > 0 }) else {
            throw DataError.badNumpy(path: featuresPath, reason: "shape \(features.shape): an example has no values")
        }
        let shape: [Int]
        switch rest.count {
        case 0: shape = [1]
        case 1, 3: shape = rest
        case 2: shape = [1] + rest
        default: shape = [rest.reduce(1, *)]
        }
        for (values, path) in [(features.values, featuresPath), (labels.values, labelsPath)] {
            for value in values where !value.isFinite {
                throw DataError.badNumpy(path: path, reason: "holds \(value) (NaN or infinite values cannot be trained on)")
            }
        }
        return Dataset(name: name, source: featuresPath, features: features.values, labels: labels.values, exampleShape: shape)
    }

    private static func matched(_ train: Dataset, _ test: Dataset, trainPath: String, testPath: String) throws -> DataSplit {
        guard train.exampleShape == test.exampleShape else {
            throw DataError.shapeMismatch(trainPath: trainPath, testPath: testPath,
                                          reason: "example shape \(test.exampleShape) differs from the training shape \(train.exampleShape)")
        }
        return DataSplit(train: train, test: test)
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
