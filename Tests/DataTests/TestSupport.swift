import CZlib
import Foundation
@testable import Data

/// A fresh directory under the system temporary directory, removed when the value is released.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array((FileManager.default.temporaryDirectory.appendingPathComponent("chorus-data-XXXXXX").path).utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` (plain) and returns the full path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let file = path + "/" + name
        _ = FileManager.default.createFile(atPath: file, contents: Foundation.Data(bytes))
        return file
    }

    /// Writes `bytes` gzip-compressed with zlib's gzopen/gzwrite and returns the full path.
    @discardableResult
    func writeGzip(_ name: String, _ bytes: [UInt8]) -> String {
        let file = path + "/" + name
        let handle = gzopen(file, "wb")!
        bytes.withUnsafeBytes { _ = gzwrite(handle, $0.baseAddress, UInt32($0.count)) }
        gzclose(handle)
        return file
    }

    /// The bytes of a file.
    func read(_ file: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: file) ?? Foundation.Data()) }

    /// Writes UTF-8 text to `name` and returns the full path.
    @discardableResult
    func write(_ name: String, text: String) -> String { write(name, Array(text.utf8)) }
}

/// The bytes of an unsigned-byte IDX file, built independently of the reader: magic, big-endian dims, data.
func idxBytes(magic: UInt32, dimensions: [UInt32], data: [UInt8]) -> [UInt8] {
    func bigEndian(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    return bigEndian(magic) + dimensions.flatMap(bigEndian) + data
}

/// A small deterministic image set: `count` images of `rows × cols`, pixel = (31·i + 7·p) mod 256.
func sampleImages(count: Int, rows: Int, cols: Int) -> (bytes: [UInt8], pixels: [UInt8]) {
    let pixels = (0..<count * rows * cols).map { UInt8(truncatingIfNeeded: 31 * ($0 / (rows * cols)) + 7 * $0) }
    return (idxBytes(magic: 0x803, dimensions: [UInt32(count), UInt32(rows), UInt32(cols)], data: pixels), pixels)
}

/// Labels `i mod classes` for `count` examples, as IDX bytes and as values.
func sampleLabels(count: Int, classes: Int) -> (bytes: [UInt8], labels: [UInt8]) {
    let labels = (0..<count).map { UInt8($0 % classes) }
    return (idxBytes(magic: 0x801, dimensions: [UInt32(count)], data: labels), labels)
}

/// The `DataError` thrown by `body`, or nil when it succeeds or throws something else.
func dataError<T>(_ body: () throws -> T) -> DataError? {
    do { _ = try body(); return nil } catch let error as DataError { return error } catch { return nil }
}
