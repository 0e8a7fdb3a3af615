/// Where the examples come from and how their features are scaled.
public struct DataConfig: Equatable, Sendable {
    /// The data set: a named one, or files in IDX or CSV form.
    public enum Source: Equatable, Sendable {
        /// A known data set; only `fashion-mnist` (Debian's dataset-fashion-mnist) for now.
        case named(String)
        /// IDX files (gzip or plain), as MNIST and Fashion-MNIST are distributed.
        case idx(trainImages: String, trainLabels: String, testImages: String, testLabels: String)
        /// CSV files with a header row; `labelColumn` names the label, the other columns are features.
        case csv(train: String, test: String, labelColumn: String = "label")
        /// NumPy `.npy` files: features `[N, …]` and labels `[N]`, for training and test.
        case npy(trainFeatures: String, trainLabels: String, testFeatures: String, testLabels: String)
        /// One NumPy `.npz` archive holding the four arrays, by name (Keras's: x_train, y_train, x_test, y_test).
        case npz(path: String, trainFeatures: String = "x_train", trainLabels: String = "y_train",
                 testFeatures: String = "x_test", testLabels: String = "y_test")
    }

    /// How features are scaled before training.
    public enum Normalization: String, Equatable, Sendable, CaseIterable {
        /// As read.
        case none
        /// Divided by 255 (8-bit images).
        case scale
        /// Shifted and scaled to mean 0, standard deviation 1 with statistics of the training set.
        case standardize
    }

    /// The known data set names.
    public static let knownNames = ["fashion-mnist"]

    /// The data set (default `fashion-mnist`).
    public var source: Source
    /// Feature scaling (default `standardize`).
    public var normalize: Normalization

    /// Creates a data config; defaults as in the config file.
    public init(source: Source = .named("fashion-mnist"), normalize: Normalization = .standardize) {
        self.source = source
        self.normalize = normalize
    }

    static func read(_ reader: ValueReader) throws -> DataConfig {
        guard case .object(let members) = reader.value else { throw reader.wrongType("an object") }
        let keys: [String]
        let format = try members.first(where: { $0.key == "format" }).map {
            try reader.child("format", $0.value).name(kind: "data format", [("idx", "idx"), ("csv", "csv"), ("npy", "npy"), ("npz", "npz")])
        }
        switch format {
        case "idx": keys = ["format", "train_images", "train_labels", "test_images", "test_labels", "normalize"]
        case "csv": keys = ["format", "train", "test", "label_column", "normalize"]
        case "npy", "npz":
            keys = ["format", "train_features", "train_labels", "test_features", "test_labels", "normalize"] + (format == "npz" ? ["path"] : [])
        default: keys = ["name", "format", "normalize"]
        }
        let object = try reader.object(allowed: keys)
        let normalize = try object.value("normalize", default: .standardize) {
            try $0.name(kind: "normalization", Normalization.allCases.map { ($0.rawValue, $0) })
        }
        let path: (ValueReader) throws -> String = { r in
            let s = try r.string()
            guard !s.isEmpty else { throw r.invalid("the path is empty") }
            return s
        }
        switch format {
        case "idx":
            return DataConfig(source: .idx(
                trainImages: try object.required("train_images", path), trainLabels: try object.required("train_labels", path),
                testImages: try object.required("test_images", path), testLabels: try object.required("test_labels", path)),
                normalize: normalize)
        case "csv":
            return DataConfig(source: .csv(
                train: try object.required("train", path), test: try object.required("test", path),
                labelColumn: try object.value("label_column", default: "label") { try $0.string() }),
                normalize: normalize)
        case "npy":
            return DataConfig(source: .npy(
                trainFeatures: try object.required("train_features", path), trainLabels: try object.required("train_labels", path),
                testFeatures: try object.required("test_features", path), testLabels: try object.required("test_labels", path)),
                normalize: normalize)
        case "npz":
            let key: (ValueReader) throws -> String = { r in
                let s = try r.string()
                guard !s.isEmpty else { throw r.invalid("the array name is empty") }
                return s
            }
            return DataConfig(source: .npz(
                path: try object.required("path", path),
                trainFeatures: try object.value("train_features", default: "x_train", key), trainLabels: try object.value("train_labels", default: "y_train", key),
                testFeatures: try object.value("test_features", default: "x_test", key), testLabels: try object.value("test_labels", default: "y_test", key)),
                normalize: normalize)
        default:
            let name = try object.value("name", default: "fashion-mnist") { try $0.name(kind: "data set", knownNames.map { ($0, $0) }) }
            return DataConfig(source: .named(name), normalize: normalize)
        }
    }

    /// Makes relative file paths absolute against `directory` (the config file's folder).
    func resolvingPaths(against directory: String) -> DataConfig {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") || directory.isEmpty ? path : (directory.hasSuffix("/") ? directory + path : directory + "/" + path)
        }
        var copy = self
        switch source {
        case .named: break
        case let .idx(a, b, c, d): copy.source = .idx(trainImages: resolve(a), trainLabels: resolve(b), testImages: resolve(c), testLabels: resolve(d))
        case let .csv(train, test, label): copy.source = .csv(train: resolve(train), test: resolve(test), labelColumn: label)
        case let .npy(a, b, c, d): copy.source = .npy(trainFeatures: resolve(a), trainLabels: resolve(b), testFeatures: resolve(c), testLabels: resolve(d))
        case let .npz(path, a, b, c, d): copy.source = .npz(path: resolve(path), trainFeatures: a, trainLabels: b, testFeatures: c, testLabels: d)
        }
        return copy
    }

    /// The canonical JSON form.
    var json: JSONValue {
        let normalization: (String, JSONValue) = ("normalize", .string(normalize.rawValue))
        switch source {
        case .named(let name):
            return .object([("name", .string(name)), normalization])
        case let .idx(trainImages, trainLabels, testImages, testLabels):
            return .object([
                ("format", .string("idx")), ("train_images", .string(trainImages)), ("train_labels", .string(trainLabels)),
                ("test_images", .string(testImages)), ("test_labels", .string(testLabels)), normalization,
            ])
        case let .csv(train, test, labelColumn):
            return .object([("format", .string("csv")), ("train", .string(train)), ("test", .string(test)),
                            ("label_column", .string(labelColumn)), normalization])
        case let .npy(trainFeatures, trainLabels, testFeatures, testLabels):
            return .object([
                ("format", .string("npy")), ("train_features", .string(trainFeatures)), ("train_labels", .string(trainLabels)),
                ("test_features", .string(testFeatures)), ("test_labels", .string(testLabels)), normalization,
            ])
        case let .npz(path, trainFeatures, trainLabels, testFeatures, testLabels):
            return .object([
                ("format", .string("npz")), ("path", .string(path)), ("train_features", .string(trainFeatures)),
                ("train_labels", .string(trainLabels)), ("test_features", .string(testFeatures)), ("test_labels", .string(testLabels)),
                normalization,
            ])
        }
    }
}
