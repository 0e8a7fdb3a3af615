/// Appends little-endian fields to a header.
package struct ByteWriter {
    package var bytes: [UInt8] = []

    package init(capacity: Int) { bytes.reserveCapacity(capacity) }

    package mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: Double) { write(value.bitPattern) }

    /// A u32 length, then the bytes.
    mutating func write(bytes data: [UInt8]) {
        write(UInt32(data.count))
        bytes.append(contentsOf: data)
    }

    /// A u32 length, then the UTF-8 bytes.
    mutating func write(string: String) { write(bytes: Array(string.utf8)) }

    /// A u32 count, then the elements.
    mutating func write(array: [UInt32]) {
        write(UInt32(array.count))
        for element in array { write(element) }
    }
}

/// Reads little-endian fields from a header, never past its end.
package struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    package var position = 0

    package init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }

    private mutating func take(_ count: Int, field: String) throws(WireError) -> Int {
        guard count >= 0, count <= remaining else {
            throw .truncated(field: field, needed: count, available: remaining)
        }
        defer { position += count }
        return position
    }

    package mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: String) throws(WireError) -> T {
        let start = try take(MemoryLayout<T>.size, field: field)
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: T.self))
    }

    mutating func readDouble(_ field: String) throws(WireError) -> Double {
        Double(bitPattern: try read(UInt64.self, field))
    }

    mutating func readBytes(_ field: String, limit: Int) throws(WireError) -> [UInt8] {
        let count = Int(try read(UInt32.self, field))
        guard count <= limit else { throw .lengthTooLarge(field: field, length: count, limit: limit) }
        let start = try take(count, field: field)
        return Array(bytes[start..<(start + count)])
    }

    mutating func readString(_ field: String, limit: Int) throws(WireError) -> String {
        let utf8 = try readBytes(field, limit: limit)
        let string = String(decoding: utf8, as: UTF8.self)
        guard string.utf8.elementsEqual(utf8) else {
            throw .invalidValue(field: field, value: "invalid UTF-8 (\(utf8.count) bytes)")
        }
        return string
    }

    mutating func readArray(_ field: String, limit: Int) throws(WireError) -> [UInt32] {
        let count = Int(try read(UInt32.self, field))
        guard count <= limit else { throw .lengthTooLarge(field: field, length: count, limit: limit) }
        guard count * 4 <= remaining else {
            throw .truncated(field: field, needed: count * 4, available: remaining)
        }
        var array: [UInt32] = []
        array.reserveCapacity(count)
        for _ in 0..<count { array.append(try read(UInt32.self, field)) }
        return array
    }

    mutating func readEnum<E: RawRepresentable>(_: E.Type, _ field: String) throws(WireError) -> E
    where E.RawValue == UInt8 {
        let raw = try read(UInt8.self, field)
        guard let value = E(rawValue: raw) else { throw .invalidValue(field: field, value: String(raw)) }
        return value
    }
}
