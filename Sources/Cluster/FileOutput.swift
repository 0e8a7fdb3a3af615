#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Writes that report failure instead of trapping (Foundation's `FileHandle.write(_:)` traps
/// on a full disk or a closed pipe): the whole buffer, retried on EINTR and short writes.
package enum FileOutput {
    /// Writes `bytes` to `descriptor`; the errno text when it fails.
    package static func write(_ bytes: [UInt8], to descriptor: Int32) -> String? {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            offset += written
        }
        return nil
    }

    /// One line to stderr; a closed or full stderr is ignored (there is nowhere to say so).
    package static func standardError(_ text: String) {
        _ = write(Array(text.utf8), to: STDERR_FILENO)
    }
}

/// A file opened for appending whose writes throw a clear error (the path and errno) on failure.
package final class AppendingFile {
    package let path: String
    let descriptor: Int32

    /// Opens `path` for appending; `truncate` empties it first.
    package init(path: String, truncate: Bool) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0o644)
        guard descriptor >= 0 else { throw RuntimeError.io("\(path): cannot open for writing (\(String(cString: strerror(errno))))") }
    }

    /// Appends `text`; throws naming the file when the write fails (a full disk, say).
    package func append(_ text: String) throws {
        if let failure = FileOutput.write(Array(text.utf8), to: descriptor) {
            throw RuntimeError.io("\(path): cannot write (\(failure))")
        }
    }

    /// Appends `bytes`; throws naming the file when the write fails.
    package func append(bytes: [UInt8]) throws {
        if let failure = FileOutput.write(bytes, to: descriptor) {
            throw RuntimeError.io("\(path): cannot write (\(failure))")
        }
    }

    /// Empties the file (appends go on at its new end).
    package func truncate() throws {
        guard ftruncate(descriptor, 0) == 0 else { throw RuntimeError.io("\(path): cannot truncate (\(String(cString: strerror(errno))))") }
    }

    deinit { close(descriptor) }
}
