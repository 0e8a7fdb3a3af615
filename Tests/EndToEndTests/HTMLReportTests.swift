import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// report.html is well-formed XHTML with every section, for a healthy run and a collapsing one
/// (scripts/render-report.sh renders both in headless Chromium to look at).
@Suite(.serialized, .needsFashionMNIST)
struct HTMLReportTests {
    static let sections = ["verdict", "test", "training", "schedule", "throughput", "gradients", "monitor", "causes",
                           "alerts", "workers", "cluster", "timing", "summary", "config"]

    final class Sections: NSObject, XMLParserDelegate {
        var ids: [String] = []
        var plots = 0, onsetMarks = 0, empty = 0
        var text = ""
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if name == "section", let id = attributes["id"] { ids.append(id) }
            if name == "svg" { plots += 1 }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if string.hasPrefix("collapse (step ") { onsetMarks += 1 }
            if string == "no data" { empty += 1 }
            text += string
        }
    }

    func parse(_ path: String) throws -> Sections {
        let parser = try #require(XMLParser(contentsOf: URL(fileURLWithPath: path)))
        let sections = Sections()
        parser.delegate = sections
        #expect(parser.parse(), "\(path) is not well-formed: \(String(describing: parser.parserError))")
        return sections
    }

    @Test func aHealthyAndACollapsedRunHaveEverySection() throws {
        let healthy = Chorus.temporaryDirectory("html")
        _ = try Chorus.run(Chorus.shortRun(out: healthy, steps: 30) + ["--workers", "2"])
        let h = try parse(healthy + "/report.html")
        #expect(h.ids == Self.sections)
        #expect(h.plots >= 9 && h.onsetMarks == 0)
        #expect(h.text.contains("No collapse detected") && h.text.contains("shards computed") && h.text.contains("\"batch_size\": 64"))
        let collapsed = Chorus.temporaryDirectory("html-collapse")
        _ = try Chorus.run(["train", "--config", Chorus.repositoryRoot + "/scenarios/symmetric_weights--zero-init.json",
                            "--max-steps", "30", "--out", collapsed, "--quiet"])
        let c = try parse(collapsed + "/report.html")
        #expect(c.ids == Self.sections)
        #expect(c.text.contains("Collapse detected") && c.text.contains("symmetric_weights"))
        // The onset is marked on every plot with data whose steps reach it (all but the two
        // test-set plots of a run with one evaluation, at its end).
        #expect(c.onsetMarks >= 5 && c.onsetMarks == c.plots - c.empty - 2, "\(c.onsetMarks) onset marks on \(c.plots) plots, \(c.empty) empty")
    }
}
