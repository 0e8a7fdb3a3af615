import Testing
@testable import Data

@Suite struct IDXReaderTests {
    @Test func plainRoundTripKeepsPixelsLabelsAndShape() throws {
        let directory = TemporaryDirectory()
        let images = sampleImages(count: 5, rows: 3, cols: 4), labels = sampleLabels(count: 5, classes: 3)
        let dataset = try IDXReader.loadDataset(images: directory.write("img", images.bytes),
                                                labels: directory.write("lbl", labels.bytes), name: "t")
        #expect(dataset.count == 5)
        #expect(dataset.exampleShape == [1, 3, 4])
        #expect(dataset.featureCount == 12)
        #expect(dataset.features == images.pixels.map(Float.init))
        #expect(dataset.labels == labels.labels.map(Float.init))
        #expect(dataset.classCount == 3)
    }

    @Test func gzipRoundTripEqualsPlain() throws {
        let directory = TemporaryDirectory()
        let images = sampleImages(count: 7, rows: 5, cols: 2), labels = sampleLabels(count: 7, classes: 4)
        let plain = try IDXReader.loadDataset(images: directory.write("img", images.bytes),
                                              labels: directory.write("lbl", labels.bytes), name: "t")
        let gzip = try IDXReader.loadDataset(images: directory.writeGzip("img.gz", images.bytes),
                                             labels: directory.writeGzip("lbl.gz", labels.bytes), name: "t")
        #expect(gzip.features == plain.features)
        #expect(gzip.labels == plain.labels)
        #expect(gzip.features == images.pixels.map(Float.init))
    }

    @Test func missingFileIsFileNotFound() {
        let path = TemporaryDirectory().path + "/nothing-here.gz"
        let error = dataError { try IDXReader.readLabels(path: path) }
        #expect(error == .fileNotFound(path: path))
        #expect("\(error!)".contains(path))
    }

    @Test func directoryIsUnreadable() {
        let directory = TemporaryDirectory()
        let error = dataError { try IDXReader.readLabels(path: directory.path) }
        #expect(error == .unreadable(path: directory.path, reason: "is a directory"))
        #expect("\(error!)".contains(directory.path))
    }

    @Test func emptyFileIsReported() {
        let directory = TemporaryDirectory()
        let path = directory.write("empty", [])
        #expect(dataError { try IDXReader.readImages(path: path) } == .emptyFile(path: path))
    }

    @Test func wrongMagicShowsExpectedAndFoundInHex() {
        let directory = TemporaryDirectory()
        let path = directory.write("labels-not-images", sampleLabels(count: 4, classes: 2).bytes)
        let error = dataError { try IDXReader.readImages(path: path) }
        #expect(error == .badMagic(path: path, expected: 0x803, found: 0x801))
        let message = "\(error!)"
        #expect(message.contains(path) && message.contains("0x00000803") && message.contains("0x00000801"))
    }

    @Test func zeroDimensionIsBadDimensions() {
        let directory = TemporaryDirectory()
        let path = directory.write("img", idxBytes(magic: 0x803, dimensions: [2, 0, 3], data: []))
        let error = dataError { try IDXReader.readImages(path: path) }
        guard case .badDimensions(let reported, _) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(reported == path)
        #expect("\(error!)".contains(path))
    }

    @Test func hugeDeclaredSizeIsBadDimensionsNotACrash() {
        let directory = TemporaryDirectory()
        let path = directory.write("img", idxBytes(magic: 0x803, dimensions: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], data: [1, 2, 3]))
        guard case .badDimensions(let reported, _) = dataError({ try IDXReader.readImages(path: path) }) else {
            Issue.record("expected badDimensions"); return
        }
        #expect(reported == path)
    }

    @Test func truncatedPlainFileReportsExpectedAndFoundBytes() {
        let directory = TemporaryDirectory()
        let bytes = sampleImages(count: 3, rows: 4, cols: 4).bytes
        let path = directory.write("img", Array(bytes.dropLast(5)))
        let error = dataError { try IDXReader.readImages(path: path) }
        #expect(error == .truncated(path: path, expectedBytes: bytes.count, foundBytes: bytes.count - 5))
        #expect("\(error!)".contains(path))
    }

    @Test func truncatedHeaderIsTruncated() {
        let directory = TemporaryDirectory()
        let path = directory.write("img", Array(sampleImages(count: 3, rows: 4, cols: 4).bytes.prefix(10)))
        #expect(dataError { try IDXReader.readImages(path: path) } == .truncated(path: path, expectedBytes: 16, foundBytes: 10))
    }

    @Test func trailingGarbageIsReportedWithItsSize() {
        let directory = TemporaryDirectory()
        let bytes = sampleLabels(count: 6, classes: 3).bytes
        let path = directory.writeGzip("lbl.gz", bytes + [9, 9, 9])
        let error = dataError { try IDXReader.readLabels(path: path) }
        #expect(error == .trailingGarbage(path: path, expectedBytes: bytes.count, extraBytes: 3))
        #expect("\(error!)".contains(path))
    }

    @Test func imageAndLabelCountsMustMatch() {
        let directory = TemporaryDirectory()
        let images = directory.write("img", sampleImages(count: 4, rows: 2, cols: 2).bytes)
        let labels = directory.write("lbl", sampleLabels(count: 5, classes: 2).bytes)
        let error = dataError { try IDXReader.loadDataset(images: images, labels: labels, name: "t") }
        #expect(error == .countMismatch(imagesPath: images, imageCount: 4, labelsPath: labels, labelCount: 5))
        #expect("\(error!)".contains(images) && "\(error!)".contains(labels))
    }

    @Test func corruptedGzipDataIsCorruptGzip() {
        let directory = TemporaryDirectory()
        let good = directory.writeGzip("good.gz", sampleImages(count: 20, rows: 8, cols: 8).bytes)
        var compressed = directory.read(good)
        for index in 12..<compressed.count - 8 { compressed[index] ^= 0x5A }  // garble the deflate data, keep header and trailer
        let path = directory.write("bad.gz", compressed)
        guard case .corruptGzip(let reported, _) = dataError({ try IDXReader.readImages(path: path) }) else {
            Issue.record("expected corruptGzip"); return
        }
        #expect(reported == path)
    }

    @Test func cutShortGzipIsCorruptGzip() {
        let directory = TemporaryDirectory()
        let good = directory.writeGzip("good.gz", sampleImages(count: 20, rows: 8, cols: 8).bytes)
        let compressed = directory.read(good)
        let path = directory.write("cut.gz", Array(compressed.prefix(compressed.count / 2)))
        let error = dataError { try IDXReader.readImages(path: path) }
        guard case .corruptGzip(let reported, _) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(reported == path)
        #expect("\(error!)".contains(path))
    }
}
