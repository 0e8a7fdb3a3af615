import Foundation

/// The contents of a safetensors file: its tensors in data order and its string metadata.
public struct SafetensorsFile: Equatable, Sendable {
    /// The file the contents came from (for error messages).
    public var path: String
    /// The tensors, ordered by their position in the data section.
    public var tensors: [StoredTensor]
    /// The `__metadata__` entries (empty when the file has none).
    public var metadata: [String: String]

    /// The tensor called `name`, or throws `tensorNotFound`.
    public func tensor(named name: String) throws -> StoredTensor {
        guard let tensor = tensors.first(where: { $0.name == name }) else {
            throw CheckpointError.tensorNotFound(path: path, tensor: name, available: tensors.map(\.name))
        }
        return tensor
    }

    /// The F32 tensor called `name`, or throws (`tensorNotFound`, `dtypeMismatch`).
    public func floatTensor(named name: String) throws -> NamedTensor {
        try tensor(named: name).namedTensor(file: path)
    }
}

/// Reads safetensors files, validating the header the way the reference implementation
/// does: every tensor's byte range must match its shape and dtype, and the ranges must
/// tile the data section exactly (no overlap, no gap, nothing left over).
public enum SafetensorsReader {
    /// The largest header accepted (the reference implementation's limit: 100 MB).
    public static let maxHeaderLength: UInt64 = 100_000_000

    /// Reads and validates the file at `path`.
    public static func read(path: String) throws -> SafetensorsFile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CheckpointError.fileNotFound(path: path) }
        guard !isDirectory.boolValue else { throw CheckpointError.ioFailed(path: path, reason: "is a directory, not a checkpoint file") }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              attributes[.type] as? FileAttributeType == .typeRegular else {
            throw CheckpointError.ioFailed(path: path, reason: "is not a regular file (a safetensors checkpoint is one)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CheckpointError.ioFailed(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try decode([UInt8](data), path: path)
    }

    /// Decodes and validates safetensors `bytes`; `path` names the source in errors.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> SafetensorsFile {
        guard bytes.count >= 8 else { throw CheckpointError.fileTooShort(path: path, size: bytes.count) }
        let headerLength = bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let available = bytes.count - 8
        guard headerLength <= UInt64(available) else {
            throw CheckpointError.headerTooLong(path: path, headerLength: headerLength, available: available)
        }
        guard headerLength <= maxHeaderLength else {
            throw CheckpointError.invalidHeader(path: path, reason: "header length \(headerLength) exceeds the \(maxHeaderLength)-byte limit")
        }
        let dataStart = 8 + Int(headerLength)
        let header = try parseHeader(bytes[8..<dataStart], path: path)
        let dataSize = bytes.count - dataStart

        var entries: [(name: String, dtype: TensorDType, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in header.tensors {
            let (dtype, shape, begin, end) = try parseEntry(name: name, value: value, path: path)
            guard let expected = byteCount(shape: shape, dtype: dtype) else {
                throw CheckpointError.invalidTensorEntry(path: path, tensor: name, reason: "shape \(shape) is too large")
            }
            guard begin <= end else {
                throw CheckpointError.badOffsets(path: path, tensor: name, reason: "data_offsets [\(begin), \(end)] end before they begin")
            }
            guard end <= dataSize else {
                throw CheckpointError.badOffsets(path: path, tensor: name,
                                                 reason: "data_offsets [\(begin), \(end)] lie outside the \(dataSize)-byte data section")
            }
            guard end - begin == expected else {
                throw CheckpointError.badOffsets(
                    path: path, tensor: name,
                    reason: "data_offsets [\(begin), \(end)] hold \(end - begin) bytes, but shape \(shape) of \(dtype.rawValue) needs \(expected)")
            }
            entries.append((name, dtype, shape, begin, end))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var position = 0
        var previous: String?
        for entry in entries {
            if entry.begin < position, let previous {
                throw CheckpointError.badLayout(path: path, reason: "tensors \"\(previous)\" and \"\(entry.name)\" overlap in the data section")
            }
            if entry.begin > position {
                throw CheckpointError.badLayout(
                    path: path, reason: "\(entry.begin - position) unused bytes before tensor \"\(entry.name)\" at offset \(position)")
            }
            position = entry.end
            previous = entry.name
        }
        if position != dataSize {
            throw CheckpointError.badLayout(path: path, reason: "\(dataSize - position) bytes after the last tensor are not described by the header")
        }
        let tensors = entries.map {
            StoredTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: Array(bytes[(dataStart + $0.begin)..<(dataStart + $0.end)]))
        }
        return SafetensorsFile(path: path, tensors: tensors, metadata: header.metadata)
    }

    private static func parseHeader(_ bytes: ArraySlice<UInt8>, path: String) throws -> (tensors: [(String, Any)], metadata: [String: String]) {
        guard bytes.first == UInt8(ascii: "{") else {
            throw CheckpointError.invalidHeader(path: path, reason: "the header does not start with '{' (not a safetensors file?)")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            throw CheckpointError.invalidHeader(path: path, reason: "not valid JSON (\(error.localizedDescription))")
        }
        guard let dictionary = object as? [String: Any] else {
            throw CheckpointError.invalidHeader(path: path, reason: "the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        if let raw = dictionary["__metadata__"] {
            guard let entries = raw as? [String: Any] else {
                throw CheckpointError.invalidHeader(path: path, reason: "__metadata__ is not an object of strings")
            }
            for (key, value) in entries {
                guard let string = value as? String else {
                    throw CheckpointError.invalidHeader(path: path, reason: "__metadata__ value of \"\(key)\" is not a string")
                }
                metadata[key] = string
            }
        }
        let tensors = dictionary.filter { $0.key != "__metadata__" }.map { ($0.key, $0.value) }
        return (tensors, metadata)
    }

    private static func parseEntry(name: String, value: Any, path: String) throws -> (TensorDType, [Int], Int, Int) {
        func invalid(_ reason: String) -> CheckpointError { .invalidTensorEntry(path: path, tensor: name, reason: reason) }
        guard let entry = value as? [String: Any] else { throw invalid("the entry is not an object") }
        guard let dtypeName = entry["dtype"] as? String else { throw invalid("missing or non-string \"dtype\"") }
        guard let dtype = TensorDType(rawValue: dtypeName) else {
            throw CheckpointError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }
        guard let shape = nonNegativeIntegers(entry["shape"]) else { throw invalid("\"shape\" is not a list of non-negative integers") }
        guard let offsets = nonNegativeIntegers(entry["data_offsets"]), offsets.count == 2 else {
            throw invalid("\"data_offsets\" is not a pair of non-negative integers")
        }
        return (dtype, shape, offsets[0], offsets[1])
    }

    /// The array's elements when every one is a non-negative integer (not a bool, not fractional).
    private static func nonNegativeIntegers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var result: [Int] = []
        for element in array {
            guard let number = element as? NSNumber, !isBoolean(number) else { return nil }
            let double = number.doubleValue
            guard double >= 0, double.rounded() == double, double < 9.0e15 else { return nil }
            result.append(number.intValue)
        }
        return result
    }

    /// JSON `true`/`false` arrive as `NSNumber` subclasses (`__NSCFBoolean` on Linux and Darwin).
    private static func isBoolean(_ number: NSNumber) -> Bool {
        String(describing: type(of: number)).contains("Boolean")
    }
}
