import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file read through zlib's gz* interface: gzip files are inflated, plain files pass through unchanged.
///
/// Every failure becomes a `DataError` naming the path; reads never go past the buffers they are given.
final class CompressedFile {
    let path: String
    private let handle: gzFile

    /// Opens `path` for reading; missing files, directories and permission problems are reported as such.
    init(path: String) throws {
        self.path = path
        var info = stat()
        if stat(path, &info) != 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw DataError.fileNotFound(path: path) }
            throw DataError.unreadable(path: path, reason: String(cString: strerror(code)))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw DataError.unreadable(path: path, reason: "is a directory")
        }
        errno = 0
        guard let opened = gzopen(path, "rb") else {
            let code = errno
            throw DataError.unreadable(path: path, reason: code != 0 ? String(cString: strerror(code)) : "gzopen failed")
        }
        handle = opened
        gzbuffer(handle, 1 << 20)
    }

    deinit { gzclose_r(handle) }

    /// Reads up to `count` bytes into `buffer`, looping until `count` bytes arrived or the data ended.
    ///
    /// Returns the number of bytes read (less than `count` only at the end of the data).
    func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var total = 0
        while total < count {
            let request = UInt32(min(count - total, 1 << 30))
            let got = gzread(handle, buffer + total, request)
            if got < 0 { throw currentError() }
            if got == 0 { break }
            total += Int(got)
        }
        if total < count {
            // At the end of the data: a gzip stream cut short reports Z_BUF_ERROR only through gzerror.
            var code: Int32 = Z_OK
            _ = gzerror(handle, &code)
            if code != Z_OK { throw currentError() }
        }
        return total
    }

    /// Reads and discards the rest of the data, returning how many bytes there were.
    func skipToEnd() throws -> Int {
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        var total = 0
        while true {
            let got = try scratch.withUnsafeMutableBytes { try read(into: $0.baseAddress!, count: $0.count) }
            total += got
            if got < scratch.count { return total }
        }
    }

    /// Reads everything that is left into one byte array, growing it in large chunks.
    func readAll() throws -> [UInt8] {
        var bytes = [UInt8]()
        var chunk = 1 << 20
        var filled = 0
        while true {
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            let got = try bytes.withUnsafeMutableBytes { try read(into: $0.baseAddress! + filled, count: chunk) }
            filled += got
            if got < chunk { break }
            chunk = min(chunk * 2, 1 << 28)
        }
        bytes.removeLast(bytes.count - filled)
        return bytes
    }

    /// The zlib error now pending on the handle, as a `DataError`.
    private func currentError() -> DataError {
        var code: Int32 = Z_OK
        var message = gzerror(handle, &code).map { String(cString: $0) } ?? "unknown error"
        if message.hasPrefix(path + ": ") { message.removeFirst(path.count + 2) }  // zlib prefixes the path
        switch code {
        case Z_ERRNO:
            return .unreadable(path: path, reason: String(cString: strerror(errno)))
        case Z_BUF_ERROR:
            return .corruptGzip(path: path, reason: "compressed data ends early (\(message)); the .gz file is truncated")
        default:
            return .corruptGzip(path: path, reason: message)
        }
    }
}
