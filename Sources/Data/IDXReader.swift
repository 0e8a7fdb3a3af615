/// Reads IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain.
///
/// Layout: a big-endian magic number `0x0000TTRR` (TT = 0x08 for unsigned bytes, RR = rank),
/// RR big-endian UInt32 dimensions, then the data. Images are `0x00000803` (count, rows, cols),
/// labels `0x00000801` (count). Sizes are checked exactly: a short file, trailing bytes,
/// a wrong magic number or zero dimensions are errors, never crashes.
public enum IDXReader {
    /// The magic number of an unsigned-byte rank-3 IDX file (images).
    public static let imagesMagic: UInt32 = 0x0000_0803
    /// The magic number of an unsigned-byte rank-1 IDX file (labels).
    public static let labelsMagic: UInt32 = 0x0000_0801
    /// Header-declared payloads above this many bytes (16 GiB) are rejected as bad dimensions.
    static let maximumPayload = 1 << 34

    /// Reads an images file: returns its dimensions `[count, rows, cols]` and the pixels as Float 0...255.
    public static func readImages(path: String) throws -> (dimensions: [Int], pixels: [Float]) {
        let (dimensions, values) = try read(path: path, magic: imagesMagic, rank: 3)
        return (dimensions, values)
    }

    /// Reads a labels file: one Float (0...255) per example.
    public static func readLabels(path: String) throws -> [Float] {
        try read(path: path, magic: labelsMagic, rank: 1).values
    }

    /// Reads an images file and its labels file into one data set of shape `[1, rows, cols]`.
    public static func loadDataset(images: String, labels: String, name: String) throws -> Dataset {
        let (dimensions, pixels) = try readImages(path: images)
        let labelValues = try readLabels(path: labels)
        guard dimensions[0] == labelValues.count else {
            throw DataError.countMismatch(imagesPath: images, imageCount: dimensions[0], labelsPath: labels, labelCount: labelValues.count)
        }
        return Dataset(name: name, source: "\(images), \(labels)", features: pixels, labels: labelValues,
                       exampleShape: [1, dimensions[1], dimensions[2]])
    }

    /// Reads one unsigned-byte IDX file of the given magic number and rank, converting its bytes to Float.
    static func read(path: String, magic: UInt32, rank: Int) throws -> (dimensions: [Int], values: [Float]) {
        let file = try CompressedFile(path: path)
        let headerSize = 4 + 4 * rank
        var header = [UInt8](repeating: 0, count: headerSize)
        let headerRead = try header.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: headerSize) }
        if headerRead == 0 { throw DataError.emptyFile(path: path) }
        if headerRead >= 4 {
            let found = bigEndianWord(header, at: 0)
            guard found == magic else { throw DataError.badMagic(path: path, expected: magic, found: found) }
        }
        guard headerRead == headerSize else {
            throw DataError.truncated(path: path, expectedBytes: headerSize, foundBytes: headerRead)
        }
        let dimensions = (0..<rank).map { Int(bigEndianWord(header, at: 4 + 4 * $0)) }
        let payload = try payloadSize(dimensions, path: path)

        let values = try readBytesAsFloats(file, count: payload, headerSize: headerSize)
        let extra = try file.skipToEnd()
        if extra > 0 {
            throw DataError.trailingGarbage(path: path, expectedBytes: headerSize + payload, extraBytes: extra)
        }
        return (dimensions, values)
    }

    /// The number of data bytes the dimensions declare, rejecting zeros and absurd sizes.
    static func payloadSize(_ dimensions: [Int], path: String) throws -> Int {
        var product = 1
        for (axis, size) in dimensions.enumerated() {
            guard size > 0 else {
                throw DataError.badDimensions(path: path, reason: "dimension \(axis) is 0 (dimensions \(dimensions))")
            }
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            guard !overflow, next <= maximumPayload else {
                throw DataError.badDimensions(path: path, reason: "dimensions \(dimensions) declare more than \(maximumPayload) bytes")
            }
            product = next
        }
        return product
    }

    /// Reads `count` bytes in large chunks and widens them to Float; grows only as data actually arrives.
    private static func readBytesAsFloats(_ file: CompressedFile, count: Int, headerSize: Int) throws -> [Float] {
        let chunkSize = 1 << 22
        var values = [Float]()
        values.reserveCapacity(min(count, 1 << 26))
        var chunk = [UInt8](repeating: 0, count: min(chunkSize, count))
        var done = 0
        while done < count {
            let want = min(chunk.count, count - done)
            let got = try chunk.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: want) }
            if got > 0 {
                values.append(contentsOf: repeatElement(0, count: got))
                values.withUnsafeMutableBufferPointer { destination in
                    chunk.withUnsafeBufferPointer { source in
                        let out = destination.baseAddress! + done
                        let input = source.baseAddress!
                        for index in 0..<got { out[index] = Float(input[index]) }
                    }
                }
                done += got
            }
            if got < want {
                throw DataError.truncated(path: file.path, expectedBytes: headerSize + count, foundBytes: headerSize + done)
            }
        }
        return values
    }

    @inline(__always) private static func bigEndianWord(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}
