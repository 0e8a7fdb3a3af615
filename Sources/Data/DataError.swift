/// Everything that can go wrong while loading a data set; each case names the file and says what to fix.
public enum DataError: Error, Equatable, CustomStringConvertible {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// The file exists but cannot be opened or read (a directory, no permission, an I/O error).
    case unreadable(path: String, reason: String)
    /// A Fashion-MNIST root directory lacks one of the four IDX files (gzip or plain).
    case datasetNotFound(root: String, missing: String)
    /// The IDX magic number is not the one expected for this kind of file.
    case badMagic(path: String, expected: UInt32, found: UInt32)
    /// The IDX header declares dimensions that cannot be right (zero, or absurdly large).
    case badDimensions(path: String, reason: String)
    /// The (decompressed) file is shorter than its header says.
    case truncated(path: String, expectedBytes: Int, foundBytes: Int)
    /// The (decompressed) file has bytes after the data its header declares.
    case trailingGarbage(path: String, expectedBytes: Int, extraBytes: Int)
    /// The images file and the labels file hold different numbers of examples.
    case countMismatch(imagesPath: String, imageCount: Int, labelsPath: String, labelCount: Int)
    /// The gzip stream is damaged (bad header, bad data, failed CRC, cut short).
    case corruptGzip(path: String, reason: String)
    /// The file holds no bytes at all.
    case emptyFile(path: String)
    /// The CSV file has a header row but no data rows.
    case noExamples(path: String)
    /// The CSV header has no column of this name.
    case missingLabelColumn(path: String, column: String, header: [String])
    /// The CSV header names only the label column, so there are no features.
    case noFeatureColumns(path: String, labelColumn: String)
    /// A CSV field is not a number.
    case nonNumeric(path: String, line: Int, column: String, value: String)
    /// A CSV field is NaN or infinite.
    case nonFinite(path: String, line: Int, column: String, value: String)
    /// A CSV row has a different number of fields from the header.
    case wrongFieldCount(path: String, line: Int, expected: Int, found: Int)
    /// A NumPy `.npy` array or `.npz` archive that cannot be read as it is (its header, dtype,
    /// order, or a missing member).
    case badNumpy(path: String, reason: String)
    /// The training and test files describe examples of different shapes or columns.
    case shapeMismatch(trainPath: String, testPath: String, reason: String)

    /// One line naming the file and the problem.
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): file not found"
        case .unreadable(let path, let reason):
            return "\(path): cannot read file: \(reason)"
        case .datasetNotFound(let root, let missing):
            return "\(root): data set directory lacks \(missing)(.gz) (install dataset-fashion-mnist or point the data root elsewhere)"
        case .badMagic(let path, let expected, let found):
            return "\(path): wrong IDX magic number: expected \(hex(expected)), found \(hex(found))"
        case .badDimensions(let path, let reason):
            return "\(path): bad IDX dimensions: \(reason)"
        case .truncated(let path, let expected, let found):
            return "\(path): file is truncated: expected \(expected) bytes, found \(found)"
        case .trailingGarbage(let path, let expected, let extra):
            return "\(path): \(extra) unexpected trailing bytes after the \(expected) bytes the header declares"
        case .countMismatch(let imagesPath, let imageCount, let labelsPath, let labelCount):
            return "\(imagesPath): holds \(imageCount) images but \(labelsPath) holds \(labelCount) labels"
        case .corruptGzip(let path, let reason):
            return "\(path): corrupt gzip stream: \(reason)"
        case .emptyFile(let path):
            return "\(path): file is empty"
        case .noExamples(let path):
            return "\(path): CSV file has a header but no data rows"
        case .missingLabelColumn(let path, let column, let header):
            let shown = header.prefix(8).joined(separator: ", ") + (header.count > 8 ? ", …" : "")
            return "\(path): no label column \"\(column)\" in the header (columns: \(shown))"
        case .noFeatureColumns(let path, let labelColumn):
            return "\(path): the header has no feature columns besides the label column \"\(labelColumn)\""
        case .nonNumeric(let path, let line, let column, let value):
            return "\(path):\(line): column \"\(column)\": \"\(value)\" is not a number"
        case .nonFinite(let path, let line, let column, let value):
            return "\(path):\(line): column \"\(column)\": \"\(value)\" is not finite (NaN or infinity)"
        case .wrongFieldCount(let path, let line, let expected, let found):
            return "\(path):\(line): expected \(expected) fields (as in the header), found \(found)"
        case .badNumpy(let path, let reason):
            return "\(path): \(reason)"
        case .shapeMismatch(let trainPath, let testPath, let reason):
            return "\(testPath): does not match \(trainPath): \(reason)"
        }
    }
}

/// `0x00000803` style: eight hex digits.
private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
