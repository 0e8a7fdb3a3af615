/// Canonical JSON text: object keys sorted by their UTF-8 bytes, numbers as their literal
/// text, strings escaped minimally; compact, or pretty with two-space indentation.
extension JSONValue {
    /// Writes this value as JSON text.
    public func serialized(pretty: Bool) -> String {
        var out = ""
        write(into: &out, pretty: pretty, indent: 0)
        return out
    }

    private func write(into out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let text): out += text
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let elements):
            if elements.isEmpty { out += "[]"; return }
            // Arrays of scalars stay on one line even when pretty.
            let inline = !pretty || elements.allSatisfy { if case .array = $0 { return false }; if case .object = $0 { return false }; return true }
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += inline && pretty ? ", " : "," }
                if !inline { out += "\n" + String(repeating: "  ", count: indent + 1) }
                element.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if !inline { out += "\n" + String(repeating: "  ", count: indent) }
            out += "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            // UTF-8 byte order, compared in place (no array per comparison: metrics rows are written every step).
            let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            out += "{"
            for (i, member) in sorted.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                JSONValue.writeString(member.key, into: &out)
                out += pretty ? ": " : ":"
                member.value.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "}"
        }
    }

    /// Writes `s` as a JSON string literal, escaping quotes, backslashes and control characters.
    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// A JSON number for a `Float`, using Swift's shortest text that reads back to the same value.
    /// Non-finite values, which JSON cannot hold, become null (and fail validation when read back).
    static func float(_ value: Float) -> JSONValue { value.isFinite ? .number(value.description) : .null }

    /// A JSON number for a `Double`, using Swift's shortest text that reads back to the same value.
    static func double(_ value: Double) -> JSONValue { value.isFinite ? .number(value.description) : .null }

    /// A JSON number for an integer.
    static func int<T: BinaryInteger>(_ value: T) -> JSONValue { .number(String(value)) }

    /// A JSON string, or null for nil.
    static func optional<T>(_ value: T?, _ encode: (T) -> JSONValue) -> JSONValue {
        value.map(encode) ?? .null
    }
}

/// Appends `s` as a JSON string literal (the same escaping the config writer uses; the
/// runtime's metrics writer shares it).
public func appendJSONString(_ s: String, to out: inout String) {
    JSONValue.writeString(s, into: &out)
}
