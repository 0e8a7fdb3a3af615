#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads numeric CSV files: a header row names the columns, one column holds the label, the others are features.
///
/// Fields are parsed straight from the file's bytes with `strtof`; blank lines are skipped, `\r\n`
/// line ends and a UTF-8 byte-order mark are accepted, surrounding spaces and quotes on header
/// names are trimmed. The file may be gzip-compressed. Errors name the file, line and column.
public enum CSVReader {
    /// Reads `path`; returns the data set (shape `[featureCount]`) and the names of its feature columns.
    public static func load(path: String, labelColumn: String = "label", name: String) throws -> (dataset: Dataset, featureColumns: [String]) {
        var bytes = try CompressedFile(path: path).readAll()
        var start = 0
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { start = 3 }
        guard bytes[start...].contains(where: { !isSpace($0) && $0 != newline && $0 != carriageReturn }) else {
            throw DataError.emptyFile(path: path)
        }
        bytes.append(0)  // strtof stops at the terminator whatever the last field holds
        return try bytes.withUnsafeBufferPointer { buffer in
            try parse(buffer, from: start, end: buffer.count - 1, path: path, labelColumn: labelColumn, name: name)
        }
    }

    private static let comma = UInt8(ascii: ","), newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")
    private static let quote = UInt8(ascii: "\"")

    @inline(__always) private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// The end of the line starting at `position` (the index of its `\n`, or `end`), and the index after it.
    @inline(__always) private static func lineBounds(_ bytes: UnsafeBufferPointer<UInt8>, _ position: Int, _ end: Int) -> (contentEnd: Int, next: Int) {
        var cursor = position
        while cursor < end && bytes[cursor] != newline { cursor += 1 }
        var contentEnd = cursor
        if contentEnd > position && bytes[contentEnd - 1] == carriageReturn { contentEnd -= 1 }
        return (contentEnd, min(cursor + 1, end))
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, end: Int, path: String,
                              labelColumn: String, name: String) throws -> (dataset: Dataset, featureColumns: [String]) {
        // Header: the first non-blank line.
        var position = start
        var lineNumber = 0
        var header: [String] = []
        while position < end && header.isEmpty {
            lineNumber += 1
            let (contentEnd, next) = lineBounds(bytes, position, end)
            if (position..<contentEnd).contains(where: { !isSpace(bytes[$0]) }) {
                header = split(bytes, position, contentEnd).map { columnName(bytes, $0) }
            }
            position = next
        }
        guard let labelIndex = header.firstIndex(of: labelColumn) else {
            throw DataError.missingLabelColumn(path: path, column: labelColumn, header: header)
        }
        guard header.count > 1 else { throw DataError.noFeatureColumns(path: path, labelColumn: labelColumn) }
        let columnCount = header.count
        let featureColumns = header.enumerated().filter { $0.offset != labelIndex }.map(\.element)

        var features: [Float] = []
        var labels: [Float] = []
        var lines: [Int32] = []
        features.reserveCapacity(max(0, (end - position) / 2))
        while position < end {
            lineNumber += 1
            let (contentEnd, next) = lineBounds(bytes, position, end)
            defer { position = next }
            guard (position..<contentEnd).contains(where: { !isSpace(bytes[$0]) }) else { continue }
            var fieldStart = position
            lines.append(Int32(clamping: lineNumber))
            for column in 0..<columnCount {
                var fieldEnd = fieldStart
                while fieldEnd < contentEnd && bytes[fieldEnd] != comma { fieldEnd += 1 }
                let atLineEnd = fieldEnd == contentEnd
                if atLineEnd != (column == columnCount - 1) {
                    let found = split(bytes, position, contentEnd).count
                    throw DataError.wrongFieldCount(path: path, line: lineNumber, expected: columnCount, found: found)
                }
                let value = try number(bytes, fieldStart, fieldEnd, path: path, line: lineNumber, column: header[column])
                if column == labelIndex { labels.append(value) } else { features.append(value) }
                fieldStart = fieldEnd + 1
            }
        }
        guard !labels.isEmpty else { throw DataError.noExamples(path: path) }
        var dataset = Dataset(name: name, source: path, features: features, labels: labels,
                              exampleShape: [featureColumns.count])
        dataset.sourceLines = lines
        return (dataset, featureColumns)
    }

    /// Parses one field as a finite Float; the whole field (spaces aside) must be the number.
    @inline(__always) private static func number(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int,
                                                path: String, line: Int, column: String) throws -> Float {
        var first = start, last = end
        while first < last && isSpace(bytes[first]) { first += 1 }
        while last > first && isSpace(bytes[last - 1]) { last -= 1 }
        let text = { String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self) }
        guard first < last else { throw DataError.nonNumeric(path: path, line: line, column: column, value: text()) }
        let base = bytes.baseAddress!
        var stop: UnsafeMutablePointer<CChar>? = nil
        let value = UnsafeRawPointer(base + first).withMemoryRebound(to: CChar.self, capacity: last - first + 1) {
            strtof($0, &stop)
        }
        let consumed = stop.map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? first
        guard consumed == last else { throw DataError.nonNumeric(path: path, line: line, column: column, value: text()) }
        guard value.isFinite else { throw DataError.nonFinite(path: path, line: line, column: column, value: text()) }
        return value
    }

    /// The comma-separated field ranges of `start..<end`.
    private static func split(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> [Range<Int>] {
        var fields: [Range<Int>] = []
        var fieldStart = start
        for index in start..<end where bytes[index] == comma {
            fields.append(fieldStart..<index)
            fieldStart = index + 1
        }
        fields.append(fieldStart..<end)
        return fields
    }

    /// A header field with surrounding spaces and double quotes removed.
    private static func columnName(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        var first = range.lowerBound, last = range.upperBound
        while first < last && isSpace(bytes[first]) { first += 1 }
        while last > first && isSpace(bytes[last - 1]) { last -= 1 }
        if last - first >= 2 && bytes[first] == quote && bytes[last - 1] == quote { first += 1; last -= 1 }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[first..<last]), as: UTF8.self)
    }
}
