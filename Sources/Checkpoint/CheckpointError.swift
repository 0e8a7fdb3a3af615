/// Why a checkpoint could not be read or written; every case names the file and the problem.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    /// No file at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read, or the checkpoint could not be written.
    case ioFailed(path: String, reason: String)
    /// The file is shorter than the 8-byte header length that starts every safetensors file.
    case fileTooShort(path: String, size: Int)
    /// The header length in the first 8 bytes is larger than what follows it.
    case headerTooLong(path: String, headerLength: UInt64, available: Int)
    /// The header is not a JSON object of the expected form.
    case invalidHeader(path: String, reason: String)
    /// A tensor entry in the header is malformed (missing field, negative size, ...).
    case invalidTensorEntry(path: String, tensor: String, reason: String)
    /// A dtype this reader does not know.
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A tensor's byte range does not fit its shape and dtype, or lies outside the data section.
    case badOffsets(path: String, tensor: String, reason: String)
    /// Two tensors share bytes, or bytes are left between or after them.
    case badLayout(path: String, reason: String)
    /// A requested tensor is not in the file.
    case tensorNotFound(path: String, tensor: String, available: [String])
    /// A tensor was read as a dtype other than its own.
    case dtypeMismatch(path: String, tensor: String, expected: String, actual: String)
    /// A tensor given to the writer is inconsistent (values vs. shape, duplicate or reserved name).
    case invalidTensor(tensor: String, reason: String)

    /// One line naming the file, the tensor where there is one, and what is wrong.
    public var description: String {
        switch self {
        case let .fileNotFound(path):
            return "\(path): no such checkpoint file"
        case let .ioFailed(path, reason):
            return "\(path): \(reason)"
        case let .fileTooShort(path, size):
            return "\(path): not a safetensors file: \(size) bytes, shorter than the 8-byte header length"
        case let .headerTooLong(path, headerLength, available):
            return "\(path): not a safetensors file: header length \(headerLength) exceeds the \(available) bytes after it (truncated or not safetensors)"
        case let .invalidHeader(path, reason):
            return "\(path): invalid safetensors header: \(reason)"
        case let .invalidTensorEntry(path, tensor, reason):
            return "\(path): tensor \"\(tensor)\": \(reason)"
        case let .unknownDType(path, tensor, dtype):
            return "\(path): tensor \"\(tensor)\": unknown dtype \"\(dtype)\" (expected one of \(TensorDType.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .badOffsets(path, tensor, reason):
            return "\(path): tensor \"\(tensor)\": \(reason)"
        case let .badLayout(path, reason):
            return "\(path): \(reason)"
        case let .tensorNotFound(path, tensor, available):
            let listed = available.prefix(8).joined(separator: ", ") + (available.count > 8 ? ", ..." : "")
            return "\(path): no tensor named \"\(tensor)\" (the file has \(available.count): \(listed))"
        case let .dtypeMismatch(path, tensor, expected, actual):
            return "\(path): tensor \"\(tensor)\" is \(actual), expected \(expected)"
        case let .invalidTensor(tensor, reason):
            return "tensor \"\(tensor)\": \(reason)"
        }
    }
}
