/// Typed, path-tracking access to a parsed JSON value; every failure is a `ConfigError`
/// that names the file, the key path and the value.
struct ValueReader {
    let value: JSONValue
    let path: String
    let file: String

    /// A reader for the member `key` of this (object) value's path.
    func child(_ key: String, _ value: JSONValue) -> ValueReader {
        ValueReader(value: value, path: ConfigError.join(path, key), file: file)
    }

    func wrongType(_ expected: String) -> ConfigError {
        .wrongType(file: file, path: path, expected: expected, found: value.typeDescription)
    }

    func outOfRange(_ requirement: String) -> ConfigError {
        .outOfRange(file: file, path: path, value: literal, requirement: requirement)
    }

    func invalid(_ message: String) -> ConfigError { .invalid(file: file, path: path, message: message) }

    /// The value as written, for error messages.
    var literal: String {
        switch value {
        case .number(let text): return text
        case .string(let s): return "\"\(s)\""
        default: return value.serialized(pretty: false)
        }
    }

    func string() throws -> String {
        guard case .string(let s) = value else { throw wrongType("a string") }
        return s
    }

    func bool() throws -> Bool {
        guard case .bool(let b) = value else { throw wrongType("true or false") }
        return b
    }

    /// The largest integer a config value may hold: sizes, counts and steps multiply into
    /// allocations and batch indices, and release builds do not check that arithmetic.
    static let maximumInt = Int(Int32.max)

    /// An integer; `2`, `2.0` and `2e0` are accepted, `2.5` is not; at most `maximumInt`.
    func int(atLeast minimum: Int? = nil) throws -> Int {
        guard case .number(let text) = value else { throw wrongType("an integer") }
        let result: Int
        if let exact = Int(text) {
            result = exact
        } else if let d = Double(text), d.rounded() == d, d.magnitude < 9.0e15 {
            result = Int(d)
        } else if let d = Double(text), d.rounded() == d {
            throw outOfRange("too large for an integer")
        } else {
            throw wrongType("an integer")
        }
        if let minimum, result < minimum { throw outOfRange("must be >= \(minimum)") }
        if result > Self.maximumInt { throw outOfRange("must be <= \(Self.maximumInt)") }
        return result
    }

    /// An unsigned 64-bit integer (seeds).
    func uint64() throws -> UInt64 {
        guard case .number(let text) = value else { throw wrongType("a non-negative integer") }
        if let exact = UInt64(text) { return exact }
        let signed = try int()
        guard signed >= 0 else { throw outOfRange("must be >= 0") }
        return UInt64(signed)
    }

    /// A finite `Float` read directly from the number's decimal text.
    func float() throws -> Float {
        guard case .number(let text) = value else { throw wrongType("a number") }
        guard let f = Float(text), f.isFinite else { throw outOfRange("must be a finite 32-bit float") }
        return f
    }

    /// A finite `Double` read from the number's decimal text.
    func double() throws -> Double {
        guard case .number(let text) = value else { throw wrongType("a number") }
        guard let d = Double(text), d.isFinite else { throw outOfRange("must be a finite number") }
        return d
    }

    func array() throws -> [ValueReader] {
        guard case .array(let elements) = value else { throw wrongType("an array") }
        return elements.enumerated().map { ValueReader(value: $1, path: "\(path)[\($0)]", file: file) }
    }

    /// This value as an object whose keys must all be in `allowed`.
    func object(allowed: [String]) throws -> ObjectReader {
        try ObjectReader(self, allowed: allowed)
    }

    /// One of a closed set of names, e.g. an activation; aliases may map to the same case.
    func name<T>(kind: String, _ table: [(String, T)], listed: [String]? = nil) throws -> T {
        let s = try string()
        if let match = table.first(where: { $0.0 == s }) { return match.1 }
        throw ConfigError.unknownName(file: file, path: path, kind: kind, value: s, allowed: listed ?? table.map(\.0))
    }
}

/// An object whose keys have been checked against the schema (no unknown or duplicate keys).
struct ObjectReader {
    let reader: ValueReader
    let allowed: [String]
    private let members: [String: JSONValue]

    init(_ reader: ValueReader, allowed: [String]) throws {
        guard case .object(let list) = reader.value else { throw reader.wrongType("an object") }
        var members: [String: JSONValue] = [:]
        for (key, value) in list {
            guard allowed.contains(key) else {
                throw ConfigError.unknownKey(file: reader.file, path: ConfigError.join(reader.path, key), key: key, allowed: allowed)
            }
            guard members[key] == nil else {
                throw ConfigError.duplicateKey(file: reader.file, path: ConfigError.join(reader.path, key), key: key)
            }
            members[key] = value
        }
        self.reader = reader
        self.allowed = allowed
        self.members = members
    }

    var path: String { reader.path }

    /// Whether `key` is present with a non-null value.
    func has(_ key: String) -> Bool {
        if let value = members[key], value != .null { return true }
        return false
    }

    /// The member `key`, or throws `missingKey` (null counts as missing).
    func required<T>(_ key: String, _ read: (ValueReader) throws -> T) throws -> T {
        guard let value = members[key], value != .null else {
            throw ConfigError.missingKey(file: reader.file, path: reader.path, key: key)
        }
        return try read(reader.child(key, value))
    }

    /// The member `key`, or nil when it is absent or null (keys outside `allowed` are always absent).
    func optional<T>(_ key: String, _ read: (ValueReader) throws -> T) throws -> T? {
        guard let value = members[key], value != .null else { return nil }
        return try read(reader.child(key, value))
    }

    /// The member `key`, or `fallback` when it is absent or null.
    func value<T>(_ key: String, default fallback: T, _ read: (ValueReader) throws -> T) throws -> T {
        try optional(key, read) ?? fallback
    }
}
