import Foundation
@testable import Checkpoint

/// A fresh temporary directory, removed by the caller with `removeItem`.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-checkpoint-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The error `body` throws as a `CheckpointError`, or nil when it throws none.
func checkpointError(_ body: () throws -> Void) -> CheckpointError? {
    do {
        try body()
        return nil
    } catch let error as CheckpointError {
        return error
    } catch {
        return .ioFailed(path: "", reason: "unexpected error type: \(error)")
    }
}

/// Builds a safetensors file by hand from a header string and data bytes (no padding added).
func handMadeFile(header: String, data: [UInt8]) -> [UInt8] {
    var bytes = [UInt8]()
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes += $0 }
    return bytes + Array(header.utf8) + data
}
