import Foundation
import Testing
@testable import Data

@Suite struct DataSourceTests {
    @Test func fashionMNISTRootAcceptsPlainAndGzipNames() throws {
        let directory = TemporaryDirectory()
        directory.write("train-images-idx3-ubyte", sampleImages(count: 6, rows: 2, cols: 2).bytes)
        directory.writeGzip("train-labels-idx1-ubyte.gz", sampleLabels(count: 6, classes: 3).bytes)
        directory.writeGzip("t10k-images-idx3-ubyte.gz", sampleImages(count: 3, rows: 2, cols: 2).bytes)
        directory.write("t10k-labels-idx1-ubyte", sampleLabels(count: 3, classes: 3).bytes)
        let split = try DataSource.fashionMNIST(root: directory.path).load()
        #expect(split.train.count == 6 && split.test.count == 3)
        #expect(split.train.exampleShape == [1, 2, 2])
        #expect(split.classCount == 3)
    }

    @Test func missingFashionMNISTFileNamesTheRootAndTheFile() {
        let directory = TemporaryDirectory()
        let error = dataError { try DataSource.fashionMNIST(root: directory.path).load() }
        #expect(error == .datasetNotFound(root: directory.path, missing: "train-images-idx3-ubyte"))
        #expect("\(error!)".contains(directory.path))
    }

    @Test func idxTrainAndTestShapesMustAgree() {
        let directory = TemporaryDirectory()
        let source = DataSource.idx(trainImages: directory.write("a", sampleImages(count: 2, rows: 2, cols: 2).bytes),
                                    trainLabels: directory.write("b", sampleLabels(count: 2, classes: 2).bytes),
                                    testImages: directory.write("c", sampleImages(count: 2, rows: 3, cols: 2).bytes),
                                    testLabels: directory.write("d", sampleLabels(count: 2, classes: 2).bytes))
        guard case .shapeMismatch = dataError({ try source.load() }) else { Issue.record("expected shapeMismatch"); return }
    }

    @Test func csvSourceLoadsBothFiles() throws {
        let directory = TemporaryDirectory()
        let split = try DataSource.csv(train: directory.write("tr.csv", text: "y,a\n1,2\n0,3\n"),
                                       test: directory.write("te.csv", text: "y,a\n1,4\n"), labelColumn: "y").load()
        #expect(split.train.features == [2, 3] && split.test.labels == [1])
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: DataSource.defaultFashionMNISTRoot)))
    func realFashionMNISTTestSplitHasTenBalancedClasses() throws {
        let root = DataSource.defaultFashionMNISTRoot
        let test = try IDXReader.loadDataset(images: root + "/t10k-images-idx3-ubyte.gz",
                                             labels: root + "/t10k-labels-idx1-ubyte.gz", name: "fashion-mnist/test")
        #expect(test.count == 10000)
        #expect(test.exampleShape == [1, 28, 28])
        #expect(test.labels.allSatisfy { (0...9).contains($0) })
        #expect(DataSummary(test).labelHistogram == [Int](repeating: 1000, count: 10))
        #expect(test.features.allSatisfy { (0...255).contains($0) })
    }
}
