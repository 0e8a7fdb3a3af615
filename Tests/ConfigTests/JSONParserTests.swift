import Foundation
import Testing
@testable import Config

/// Converts a parsed value to Foundation types so it can be compared with `JSONSerialization`.
private func foundationValue(_ value: JSONValue) -> NSObject {
    switch value {
    case .null: return NSNull()
    case .bool(let b): return NSNumber(value: b)
    case .number(let text): return NSNumber(value: Double(text)!)
    case .string(let s): return s as NSString
    case .array(let elements): return elements.map(foundationValue) as NSArray
    case .object(let members): return Dictionary(uniqueKeysWithValues: members.map { ($0.key, foundationValue($0.value)) }) as NSDictionary
    }
}

@Test func parserAgreesWithFoundationOnValidDocuments() throws {
    let documents = [
        #"{"a": [1, -2.5, 3e2, 0.000001, -0], "b": {"c": null, "d": true, "e": false}}"#,
        #"["\u00e9\ud83d\ude00", "tab\there", "quote\"back\\slash\/", "\b\f\n\r"]"#,
        #"  {"nested": [[[]], {}, [{"x": "ü"}]]}  "#,
        "123", "\"just a string\"",
    ]
    for document in documents {
        let ours = foundationValue(try JSONParser.parse(Array(document.utf8)))
        let theirs = try JSONSerialization.jsonObject(with: Data(document.utf8), options: [.fragmentsAllowed]) as! NSObject
        #expect(ours.isEqual(theirs), "\(document)")
    }
}

@Test func parserRejectsWhatRFC8259Rejects() {
    for document in ["{'a': 1}", "[1,]", "{\"a\" 1}", "[01]", "[1.]", "[.5]", "[+1]", "[NaN]", "[\"\\x\"]", "[\"a\nb\"]",
                     "[\"\\ud800\"]", "{\"a\": 1", "[true false]", "nul"] {
        #expect(throws: JSONParseError.self, "\(document)") { try JSONParser.parse(Array(document.utf8)) }
    }
}

@Test func parserStopsAtAbsurdNesting() {
    let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
    #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(deep.utf8)) }
}

@Test func writerOutputIsReadBackIdentically() throws {
    let value = try JSONParser.parse(Array(#"{"z": [1, {"b": "\u0001\"", "a": null}], "a": -1.5e-7}"#.utf8))
    let written = value.serialized(pretty: false)
    #expect(written == #"{"a":-1.5e-7,"z":[1,{"a":null,"b":"\u0001\""}]}"#)
    let reparsed = try JSONParser.parse(Array(written.utf8))
    #expect(reparsed.serialized(pretty: true) == value.serialized(pretty: true))
}
