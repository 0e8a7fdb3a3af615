import Testing
@testable import Data

@Suite struct CSVReaderTests {
    @Test func parsesHeaderLabelAndFeaturesInColumnOrder() throws {
        let directory = TemporaryDirectory()
        let path = directory.write("train.csv", text: "a,label,b\n1.5,2,-3\n4,0,5e-1\n")
        let (dataset, columns) = try CSVReader.load(path: path, name: "t")
        #expect(columns == ["a", "b"])
        #expect(dataset.exampleShape == [2])
        #expect(dataset.features == [1.5, -3, 4, 0.5])
        #expect(dataset.labels == [2, 0])
        #expect(dataset.classCount == 3)
    }

    @Test func acceptsCRLFBlankLinesBOMSpacesQuotedHeaderAndGzip() throws {
        let directory = TemporaryDirectory()
        let text = "\u{FEFF}\"x\" , y ,target\r\n 1 , 2 ,0.25\r\n\r\n3,4,-1\r\n"
        let plain = try CSVReader.load(path: directory.write("t.csv", text: text), labelColumn: "target", name: "t")
        let gzip = try CSVReader.load(path: directory.writeGzip("t.csv.gz", Array(text.utf8)), labelColumn: "target", name: "t")
        #expect(plain.featureColumns == ["x", "y"])
        #expect(plain.dataset.features == [1, 2, 3, 4])
        #expect(plain.dataset.labels == [0.25, -1])
        #expect(plain.dataset.classCount == 0)
        #expect(gzip.dataset.features == plain.dataset.features && gzip.dataset.labels == plain.dataset.labels)
        // Each example's line in the file (the blank line 3 holds none), kept by subsets.
        #expect(plain.dataset.sourceLines == [2, 4])
        #expect(plain.dataset.subset([1, 0, 1]).sourceLines == [4, 2, 4])
    }

    @Test func lastLineWithoutNewlineIsRead() throws {
        let directory = TemporaryDirectory()
        let (dataset, _) = try CSVReader.load(path: directory.write("t.csv", text: "label,f\n1,2\n0,7"), name: "t")
        #expect(dataset.features == [2, 7])
        #expect(dataset.labels == [1, 0])
    }

    @Test func emptyFileIsAnError() {
        let directory = TemporaryDirectory()
        let path = directory.write("t.csv", text: " \n\n")
        let error = dataError { try CSVReader.load(path: path, name: "t") }
        #expect(error == .emptyFile(path: path))
        #expect("\(error!)".contains(path))
    }

    @Test func headerWithoutRowsIsNoExamples() {
        let directory = TemporaryDirectory()
        let path = directory.write("t.csv", text: "label,a\n")
        #expect(dataError { try CSVReader.load(path: path, name: "t") } == .noExamples(path: path))
    }

    @Test func missingLabelColumnListsTheHeader() {
        let directory = TemporaryDirectory()
        let path = directory.write("t.csv", text: "a,b\n1,2\n")
        let error = dataError { try CSVReader.load(path: path, labelColumn: "y", name: "t") }
        #expect(error == .missingLabelColumn(path: path, column: "y", header: ["a", "b"]))
        #expect("\(error!)".contains(path) && "\(error!)".contains("\"y\""))
    }

    @Test func labelOnlyHeaderHasNoFeatures() {
        let directory = TemporaryDirectory()
        let path = directory.write("t.csv", text: "label\n1\n")
        #expect(dataError { try CSVReader.load(path: path, name: "t") } == .noFeatureColumns(path: path, labelColumn: "label"))
    }

    @Test func nonNumericFieldNamesLineAndColumn() {
        let directory = TemporaryDirectory()
        let path = directory.write("t.csv", text: "label,width,height\n1,2,3\n0,abc,4\n")
        let error = dataError { try CSVReader.load(path: path, name: "t") }
        #expect(error == .nonNumeric(path: path, line: 3, column: "width", value: "abc"))
        let message = "\(error!)"
        #expect(message.contains(path) && message.contains(":3") && message.contains("width"))
    }

    @Test func numberFollowedByTextIsNonNumeric() {
        let directory = TemporaryDirectory()
        let path = directory.write("t.csv", text: "label,a\n1,2.5x\n")
        #expect(dataError { try CSVReader.load(path: path, name: "t") } == .nonNumeric(path: path, line: 2, column: "a", value: "2.5x"))
    }

    @Test func emptyFieldIsNonNumeric() {
        let directory = TemporaryDirectory()
        let path = directory.write("t.csv", text: "label,a,b\n1,,3\n")
        #expect(dataError { try CSVReader.load(path: path, name: "t") } == .nonNumeric(path: path, line: 2, column: "a", value: ""))
    }

    @Test func nanIsNonFinite() {
        let directory = TemporaryDirectory()
        let path = directory.write("t.csv", text: "label,a\n1,NaN\n")
        let error = dataError { try CSVReader.load(path: path, name: "t") }
        #expect(error == .nonFinite(path: path, line: 2, column: "a", value: "NaN"))
        #expect("\(error!)".contains(path))
    }

    @Test func infinityAndOverflowAreNonFinite() {
        let directory = TemporaryDirectory()
        let infinite = directory.write("i.csv", text: "label,a\ninf,1\n")
        let overflow = directory.write("o.csv", text: "label,a\n1,1e60\n")
        #expect(dataError { try CSVReader.load(path: infinite, name: "t") } == .nonFinite(path: infinite, line: 2, column: "label", value: "inf"))
        #expect(dataError { try CSVReader.load(path: overflow, name: "t") } == .nonFinite(path: overflow, line: 2, column: "a", value: "1e60"))
    }

    @Test func tooFewFieldsIsWrongFieldCount() {
        let directory = TemporaryDirectory()
        let path = directory.write("t.csv", text: "label,a,b\n1,2,3\n1,2\n")
        let error = dataError { try CSVReader.load(path: path, name: "t") }
        #expect(error == .wrongFieldCount(path: path, line: 3, expected: 3, found: 2))
        #expect("\(error!)".contains(path))
    }

    @Test func tooManyFieldsIsWrongFieldCount() {
        let directory = TemporaryDirectory()
        let path = directory.write("t.csv", text: "label,a\n\n1,2,3,4\n")
        #expect(dataError { try CSVReader.load(path: path, name: "t") } == .wrongFieldCount(path: path, line: 3, expected: 2, found: 4))
    }

    @Test func trainAndTestMustShareFeatureColumns() {
        let directory = TemporaryDirectory()
        let train = directory.write("train.csv", text: "label,a,b\n1,2,3\n")
        let test = directory.write("test.csv", text: "label,a,c\n1,2,3\n")
        guard case .shapeMismatch(let trainPath, let testPath, _) = dataError({ try DataSource.csv(train: train, test: test).load() }) else {
            Issue.record("expected shapeMismatch"); return
        }
        #expect(trainPath == train && testPath == test)
    }
}
