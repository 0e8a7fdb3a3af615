import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads NumPy's `.npy` arrays, alone or inside an `.npz` archive (`np.savez`, stored, or
/// `np.savez_compressed`, deflated), as the format is specified in numpy/lib/format.py:
///
///     \x93NUMPY, major, minor, header length (u16 for 1.0, u32 for 2.0 and 3.0),
///     an ASCII dict {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }
///     padded with spaces and a newline, then the data in C order.
///
/// A `.npy` file is memory-mapped and converted straight into the Dataset's floats (no copy of
/// the file in memory). Element types: float32, float64, float16 is refused; signed and unsigned
/// integers of 1–8 bytes, bool; little- or big-endian. Everything that can be wrong — magic, header,
/// dtype, Fortran order, a shape whose size overflows, data shorter or longer than the shape —
/// is a `DataError` naming the file (and the archive member).
public enum NumpyReader {
    /// An array's element type and shape, and where its data starts.
    struct Header {
        var kind: Character  // f, i, u, b
        var width: Int
        var bigEndian: Bool
        var shape: [Int]
        var dataOffset: Int
        var count: Int { shape.reduce(1, *) }
    }

    /// The most values one array may hold (a guard against a header whose shape overflows).
    static let maximumValues = 1 << 36

    /// Parses the header of the `.npy` bytes at `base` (`length` of them); `path` names them in errors.
    static func header(_ base: UnsafeRawPointer, length: Int, path: String) throws -> Header {
        func bad(_ reason: String) -> DataError { .badNumpy(path: path, reason: reason) }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard length >= 10, (0..<6).allSatisfy({ base.load(fromByteOffset: $0, as: UInt8.self) == magic[$0] }) else {
            throw bad("not a .npy array (no \\x93NUMPY magic)")
        }
        let major = base.load(fromByteOffset: 6, as: UInt8.self)
        let headerLength: Int, start: Int
        switch major {
        case 1:
            headerLength = Int(UInt16(base.load(fromByteOffset: 8, as: UInt8.self)) | UInt16(base.load(fromByteOffset: 9, as: UInt8.self)) << 8)
            start = 10
        case 2, 3:
            guard length >= 12 else { throw DataError.truncated(path: path, expectedBytes: 12, foundBytes: length) }
            headerLength = (0..<4).reduce(0) { $0 | Int(base.load(fromByteOffset: 8 + $1, as: UInt8.self)) << (8 * $1) }
            start = 12
        default:
            throw bad("format version \(major) (this reader knows 1, 2 and 3)")
        }
        guard headerLength <= 1 << 20, start + headerLength <= length else {
            throw DataError.truncated(path: path, expectedBytes: start + headerLength, foundBytes: length)
        }
        let text = String(decoding: UnsafeRawBufferPointer(start: base + start, count: headerLength), as: UTF8.self)
        guard let descr = value(of: "descr", in: text), let fortran = value(of: "fortran_order", in: text),
              let shapeText = value(of: "shape", in: text) else {
            throw bad("header \(trim(text, " \n").prefix(120)) lacks descr, fortran_order or shape")
        }
        guard fortran == "False" else {
            throw bad("fortran_order is \(fortran): save the array in C order (np.ascontiguousarray)")
        }
        // descr: '<f4', '|u1', '>i8', …
        let type = trim(descr, "'\"")
        guard type.count >= 3, let width = Int(type.dropFirst(2)), let kind = type.dropFirst().first,
              let order = type.first, "<>|=".contains(order) else {
            throw bad("dtype \(descr) is not a plain numeric type")
        }
        let supported: Bool
        switch kind {
        case "f": supported = width == 4 || width == 8
        case "i", "u": supported = [1, 2, 4, 8].contains(width)
        case "b": supported = width == 1
        default: supported = false
        }
        guard supported else {
            throw bad("dtype \(descr) is not supported (float32, float64, integers and bool are; convert with .astype(np.float32))")
        }
        // shape: (60000, 28, 28) or (60000,) or ()
        let inner = trim(shapeText, "() ")
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let trimmed = trim(String(part), " ")
            if trimmed.isEmpty { continue }
            guard let dimension = Int(trimmed.hasSuffix("L") ? String(trimmed.dropLast()) : trimmed), dimension >= 0 else {
                throw bad("shape \(shapeText) is not a tuple of sizes")
            }
            shape.append(dimension)
        }
        var total = 1
        for dimension in shape {
            let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= maximumValues else { throw bad("shape \(shapeText) holds more than \(maximumValues) values") }
            total = product
        }
        return Header(kind: kind, width: width, bigEndian: order == ">" && width > 1, shape: shape, dataOffset: start + headerLength)
    }

    /// The text of `key`'s value in a Python dict literal (up to the next top-level comma).
    private static func value(of key: String, in text: String) -> String? {
        guard let after = end(of: "'\(key)'", in: text) ?? end(of: "\"\(key)\"", in: text),
              let colon = text[after...].firstIndex(of: ":") else { return nil }
        var depth = 0
        var end = text.index(after: colon)
        while end < text.endIndex {
            let c = text[end]
            if c == "(" || c == "[" { depth += 1 }
            if c == ")" || c == "]" { depth -= 1 }
            if (c == "," && depth == 0) || (c == "}" && depth <= 0) { break }
            end = text.index(after: end)
        }
        return trim(String(text[text.index(after: colon)..<end]), " ")
    }

    /// Where the first `needle` in `text` ends.
    private static func end(of needle: String, in text: String) -> String.Index? {
        let pattern = Array(needle)
        var index = text.startIndex
        while index < text.endIndex {
            var probe = index, matched = 0
            while matched < pattern.count, probe < text.endIndex, text[probe] == pattern[matched] {
                probe = text.index(after: probe)
                matched += 1
            }
            if matched == pattern.count { return probe }
            index = text.index(after: index)
        }
        return nil
    }

    /// `text` without the leading and trailing characters in `characters`.
    static func trim(_ text: String, _ characters: String) -> String {
        let set = Set(characters)
        var slice = Substring(text)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }

    /// The array in `base` (`length` bytes) as floats, with its shape.
    static func floats(_ base: UnsafeRawPointer, length: Int, path: String) throws -> (values: [Float], shape: [Int]) {
        let header = try header(base, length: length, path: path)
        let bytes = header.count * header.width
        let available = length - header.dataOffset
        guard available >= bytes else { throw DataError.truncated(path: path, expectedBytes: header.dataOffset + bytes, foundBytes: length) }
        guard available == bytes else {
            throw DataError.trailingGarbage(path: path, expectedBytes: header.dataOffset + bytes, extraBytes: available - bytes)
        }
        let data = base + header.dataOffset
        let values = [Float](unsafeUninitializedCapacity: header.count) { out, initialized in
            func convert<T>(_ type: T.Type, _ transform: (T) -> Float) {
                for index in 0..<header.count { out[index] = transform(data.loadUnaligned(fromByteOffset: index * header.width, as: T.self)) }
            }
            let swap = header.bigEndian
            switch (header.kind, header.width) {
            case ("f", 4): convert(UInt32.self) { Float(bitPattern: swap ? $0.byteSwapped : $0) }
            case ("f", 8): convert(UInt64.self) { Float(Double(bitPattern: swap ? $0.byteSwapped : $0)) }
            case ("u", 1), ("b", 1): convert(UInt8.self) { Float($0) }
            case ("i", 1): convert(Int8.self) { Float($0) }
            case ("u", 2): convert(UInt16.self) { Float(swap ? $0.byteSwapped : $0) }
            case ("i", 2): convert(Int16.self) { Float(swap ? $0.byteSwapped : $0) }
            case ("u", 4): convert(UInt32.self) { Float(swap ? $0.byteSwapped : $0) }
            case ("i", 4): convert(Int32.self) { Float(swap ? $0.byteSwapped : $0) }
            case ("u", 8): convert(UInt64.self) { Float(swap ? $0.byteSwapped : $0) }
            default: convert(Int64.self) { Float(swap ? $0.byteSwapped : $0) }
            }
            initialized = header.count
        }
        return (values, header.shape)
    }

    /// `.npy` bytes in memory (the fuzz target's way in).
    public static func decode(_ bytes: [UInt8], path: String) throws -> (values: [Float], shape: [Int]) {
        try bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress, buffer.count > 0 else { throw DataError.emptyFile(path: path) }
            return try floats(base, length: buffer.count, path: path)
        }
    }

    /// Every array of an `.npz` archive, by name (without `.npy`).
    public static func load(npz path: String) throws -> [String: (values: [Float], shape: [Int])] {
        let names = try withMappedFile(path) { base, length in
            try ZipDirectory(base: base, length: length, path: path).entries.keys.map { $0.hasSuffix(".npy") ? String($0.dropLast(4)) : $0 }
        }
        return try load(npz: path, members: names)
    }

    /// A `.npy` file, memory-mapped.
    public static func load(path: String) throws -> (values: [Float], shape: [Int]) {
        try withMappedFile(path) { base, length in try floats(base, length: length, path: path) }
    }

    /// The named members of an `.npz` archive.
    public static func load(npz path: String, members names: [String]) throws -> [String: (values: [Float], shape: [Int])] {
        try withMappedFile(path) { base, length in
            let entries = try ZipDirectory(base: base, length: length, path: path)
            var result: [String: (values: [Float], shape: [Int])] = [:]
            for name in names {
                guard let entry = entries.entries[name + ".npy"] ?? entries.entries[name] else {
                    throw DataError.badNumpy(path: path, reason: "no array \(name) in the archive (it holds \(entries.entries.keys.sorted().map { String($0.dropLast(4)) }.joined(separator: ", ")))")
                }
                let member = "\(path)[\(name)]"
                result[name] = try entries.withContents(of: entry, member: member) { try floats($0, length: $1, path: member) }
            }
            return result
        }
    }

    static func withMappedFile<T>(_ path: String, _ body: (UnsafeRawPointer, Int) throws -> T) throws -> T {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw DataError.fileNotFound(path: path) }
            throw DataError.unreadable(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw DataError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw DataError.unreadable(path: path, reason: "is a directory") }
        let length = Int(info.st_size)
        guard length > 0 else { throw DataError.emptyFile(path: path) }
        guard let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor, 0), mapped != MAP_FAILED else {
            throw DataError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { munmap(mapped, length) }
        return try body(UnsafeRawPointer(mapped), length)
    }
}

/// The central directory of a zip archive (what `np.savez` writes: stored or deflated members,
/// zip64 records for large ones). Only what reading members needs; every offset is checked
/// against the file's length.
struct ZipDirectory {
    struct Entry { var method: UInt16, compressedSize: Int, size: Int, localHeader: Int }

    let base: UnsafeRawPointer, length: Int, path: String
    var entries: [String: Entry] = [:]

    init(base: UnsafeRawPointer, length: Int, path: String) throws {
        self.base = base; self.length = length; self.path = path
        func bad(_ reason: String) -> DataError { .badNumpy(path: path, reason: reason) }
        func u16(_ at: Int) -> Int { Int(base.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian) }
        func u32(_ at: Int) -> Int { Int(base.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian) }
        func u64(_ at: Int) -> Int { Int(truncatingIfNeeded: base.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian) }
        // The end-of-central-directory record: within the last 64 KiB + 22 bytes.
        var end = -1
        var at = length - 22
        while at >= max(0, length - 22 - 65_535) {
            if u32(at) == 0x0605_4B50 { end = at; break }
            at -= 1
        }
        guard end >= 0 else { throw bad("not an .npz archive (no zip end-of-directory record)") }
        var count = u16(end + 10), directory = u32(end + 16)
        if (count == 0xFFFF || directory == 0xFFFF_FFFF), end >= 20, u32(end - 20) == 0x0706_4B50 {
            let record = u64(end - 12)
            guard record >= 0, record <= length - 56, u32(record) == 0x0606_4B50 else { throw bad("damaged zip64 end-of-directory record") }
            count = u64(record + 32)
            directory = u64(record + 48)
        }
        guard count >= 0, count <= 100_000, directory >= 0, directory <= length else { throw bad("damaged zip directory") }
        var offset = directory
        for _ in 0..<count {
            guard offset + 46 <= length, u32(offset) == 0x0201_4B50 else { throw bad("damaged zip directory entry at byte \(offset)") }
            let method = UInt16(u16(offset + 10))
            var compressed = u32(offset + 20), size = u32(offset + 24)
            let nameLength = u16(offset + 28), extraLength = u16(offset + 30), commentLength = u16(offset + 32)
            var local = u32(offset + 42)
            guard offset + 46 + nameLength + extraLength <= length else { throw bad("damaged zip directory entry at byte \(offset)") }
            let name = String(decoding: UnsafeRawBufferPointer(start: base + offset + 46, count: nameLength), as: UTF8.self)
            // Zip64 extended information: the 8-byte values of the fields set to 0xFFFFFFFF, in order.
            var extra = offset + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = u16(extra), size16 = u16(extra + 2)
                if id == 0x0001 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF, field + 8 <= extraEnd { size = u64(field); field += 8 }
                    if compressed == 0xFFFF_FFFF, field + 8 <= extraEnd { compressed = u64(field); field += 8 }
                    if local == 0xFFFF_FFFF, field + 8 <= extraEnd { local = u64(field) }
                }
                extra += 4 + size16
            }
            guard compressed >= 0, size >= 0, local >= 0 else { throw bad("damaged zip directory entry \(name)") }
            entries[name] = Entry(method: method, compressedSize: compressed, size: size, localHeader: local)
            offset += 46 + nameLength + extraLength + commentLength
        }
    }

    /// The member's bytes: in place when stored, inflated into a buffer when deflated.
    func withContents<T>(of entry: Entry, member: String, _ body: (UnsafeRawPointer, Int) throws -> T) throws -> T {
        func u16(_ at: Int) -> Int { Int(base.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian) }
        // Offsets come from the file: compared by subtraction, so a huge one cannot wrap.
        guard entry.localHeader >= 0, entry.localHeader <= length - 30, base.loadUnaligned(fromByteOffset: entry.localHeader, as: UInt32.self).littleEndian == 0x0403_4B50 else {
            throw DataError.badNumpy(path: member, reason: "damaged zip member header")
        }
        let start = entry.localHeader + 30 + u16(entry.localHeader + 26) + u16(entry.localHeader + 28)
        guard start <= length, entry.compressedSize <= length - start else {
            throw DataError.truncated(path: member, expectedBytes: start + entry.compressedSize, foundBytes: length)
        }
        switch entry.method {
        case 0:
            return try body(base + start, entry.compressedSize)
        case 8:
            // Deflate expands at most ~1032:1: a larger declared size is a damaged (or hostile) directory.
            // And no member inflates past the largest array the reader takes (2^36 float64s).
            guard entry.compressedSize <= length, entry.size <= min(entry.compressedSize * 1032 + 1024, NumpyReader.maximumValues * 8) else {
                throw DataError.badNumpy(path: member, reason: "declares \(entry.size) bytes inflated from \(entry.compressedSize): damaged zip directory")
            }
            // Grown as bytes really arrive (a directory that lies about the size costs nothing).
            var capacity = max(min(entry.size, 64 << 20), 1)
            guard var buffer = malloc(capacity) else { throw DataError.unreadable(path: member, reason: "out of memory") }
            defer { free(buffer) }
            var stream = z_stream()
            guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw DataError.badNumpy(path: member, reason: "zlib could not start")
            }
            defer { inflateEnd(&stream) }
            var produced = 0, consumed = 0, status = Z_OK
            while status == Z_OK {
                if produced == capacity && capacity < entry.size {
                    capacity = min(capacity * 2, entry.size)
                    guard let grown = realloc(buffer, capacity) else { throw DataError.unreadable(path: member, reason: "out of memory") }
                    buffer = grown
                }
                let input = min(entry.compressedSize - consumed, 1 << 30), output = min(capacity - produced, 1 << 30)
                stream.next_in = UnsafeMutablePointer(mutating: (base + start + consumed).assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(input)
                stream.next_out = (buffer + produced).assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(output)
                status = inflate(&stream, Z_NO_FLUSH)
                consumed += input - Int(stream.avail_in)
                produced += output - Int(stream.avail_out)
                if status == Z_BUF_ERROR && ((output == 0 && capacity == entry.size) || input == 0) { break }
            }
            guard status == Z_STREAM_END, produced == entry.size else {
                throw DataError.corruptGzip(path: member, reason: "deflate stream \(status == Z_STREAM_END ? "holds \(produced) bytes, not \(entry.size)" : "damaged or cut short")")
            }
            return try body(UnsafeRawPointer(buffer), produced)
        default:
            throw DataError.badNumpy(path: member, reason: "zip compression method \(entry.method) (np.savez stores, np.savez_compressed deflates)")
        }
    }
}
