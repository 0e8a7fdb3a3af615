import Foundation

/// JSON values for what a run writes (report.json, metrics.jsonl, the stress report, `chorus
/// eval`): built from typed report structs and written by the one writer, `serialized(pretty:)`.
extension JSONValue {
    /// A number as reports write it: integral values below 1e15 without a fraction, others in
    /// Swift's shortest round-trip form; NaN and ±Inf, which JSON cannot hold, become null.
    public static func real(_ value: Double) -> JSONValue {
        guard value.isFinite else { return .null }
        return .number(value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : value.description)
    }

    /// An integer.
    public static func integer<T: BinaryInteger>(_ value: T) -> JSONValue { .number(String(value)) }

    /// An object from members (written with keys sorted).
    public static func members(_ members: [String: JSONValue]) -> JSONValue { .object(members.map { (key: $0.key, value: $0.value) }) }

    /// A value from the monitor's dictionaries (`[String: Any]` of numbers, strings, flags,
    /// arrays, dictionaries and NSNull); anything else becomes null.
    public init(any value: Any) {
        switch value {
        case let json as JSONValue: self = json
        case let flag as Bool: self = .bool(flag)
        case let number as Int: self = .integer(number)
        case let number as Int64: self = .integer(number)
        case let number as UInt64: self = .integer(number)
        case let number as UInt32: self = .integer(number)
        case let number as Double: self = .real(number)
        case let number as Float: self = .real(Double(number))
        case let text as String: self = .string(text)
        case let object as [String: Any]: self = .members(object.mapValues(JSONValue.init(any:)))
        case let array as [Any]: self = .array(array.map(JSONValue.init(any:)))
        default: self = .null
        }
    }

    /// The same value as Foundation objects (for renderers that read dictionaries).
    public var anyValue: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let flag): return flag
        case .number(let text): return Int(text) ?? Double(text) ?? NSNull()
        case .string(let text): return text
        case .array(let elements): return elements.map(\.anyValue)
        case .object(let members):
            var result: [String: Any] = [:]
            for member in members { result[member.key] = member.value.anyValue }
            return result
        }
    }
}

/// Something a run writes as JSON.
public protocol JSONReport {
    /// The report as a JSON value (field names are the interface: ../shared/CONTRACT.md).
    var json: JSONValue { get }
}
