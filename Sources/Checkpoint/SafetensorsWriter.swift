import Foundation
#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// Writes safetensors files: an 8-byte little-endian header length N, N bytes of JSON
/// header (`__metadata__` first when there is any, then each tensor's `dtype`, `shape`
/// and `data_offsets` in the order given, padded with spaces to a multiple of 8), then
/// the tensors' little-endian bytes back to back in that order.
public enum SafetensorsWriter {
    /// The complete file contents for `tensors` and string `metadata`.
    public static func encode(_ tensors: [StoredTensor], metadata: [String: String] = [:]) throws -> [UInt8] {
        var header = "{"
        var members: [String] = []
        if !metadata.isEmpty {
            let entries = metadata.sorted { $0.key < $1.key }.map { jsonString($0.key) + ":" + jsonString($0.value) }
            members.append("\"__metadata__\":{" + entries.joined(separator: ",") + "}")
        }
        var seen = Set<String>()
        var offset = 0
        for tensor in tensors {
            guard !tensor.name.isEmpty, tensor.name != "__metadata__" else {
                throw CheckpointError.invalidTensor(tensor: tensor.name, reason: "the name is empty or reserved")
            }
            guard seen.insert(tensor.name).inserted else {
                throw CheckpointError.invalidTensor(tensor: tensor.name, reason: "the name is used twice")
            }
            guard tensor.shape.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError.invalidTensor(tensor: tensor.name, reason: "negative dimension in shape \(tensor.shape)")
            }
            let expected = byteCount(shape: tensor.shape, dtype: tensor.dtype)
            guard tensor.bytes.count == expected else {
                throw CheckpointError.invalidTensor(
                    tensor: tensor.name,
                    reason: "\(tensor.bytes.count) bytes of data for shape \(tensor.shape) of \(tensor.dtype.rawValue), expected \(expected.map(String.init) ?? "more than Int.max")")
            }
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            members.append(jsonString(tensor.name) + ":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + tensor.bytes.count)]}")
            offset += tensor.bytes.count
        }
        header += members.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        headerBytes += [UInt8](repeating: UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8)

        var file = [UInt8]()
        file.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { file += $0 }
        file += headerBytes
        for tensor in tensors { file += tensor.bytes }
        return file
    }

    /// Writes `tensors` and `metadata` to `path` atomically: to a temporary file in the same
    /// directory, flushed to disk, then renamed over `path`, so readers never see half a file.
    public static func write(_ tensors: [StoredTensor], metadata: [String: String] = [:], to path: String) throws {
        try writeAtomically(try encode(tensors, metadata: metadata), to: path)
    }

    /// Writes Float32 tensors and `metadata` to `path` atomically.
    public static func write(tensors: [NamedTensor], metadata: [String: String] = [:], to path: String) throws {
        try write(tensors.map(StoredTensor.init), metadata: metadata, to: path)
    }

    /// Writes `bytes` to a temporary sibling of `path`, fsyncs it, and renames it to `path`.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { throw CheckpointError.ioFailed(path: path, reason: "cannot create \(temporary): \(errnoText())") }
        var failure: String?
        bytes.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let n = systemWrite(descriptor, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "write failed: \(errnoText())"
                    return
                }
                written += n
            }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = "fsync failed: \(errnoText())" }
        if close(descriptor) != 0, failure == nil { failure = "close failed: \(errnoText())" }
        if failure == nil, rename(temporary, path) != 0 { failure = "rename to the final name failed: \(errnoText())" }
        if let failure {
            unlink(temporary)
            throw CheckpointError.ioFailed(path: path, reason: failure)
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// A JSON string literal for `s`.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
