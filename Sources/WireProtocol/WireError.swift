/// Why a received message could not be decoded.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The message had no frames at all.
    case noFrames
    /// The header frame is shorter than the fixed prefix and checksum.
    case headerTooShort(byteCount: Int, minimum: Int)
    /// The header does not start with "CHRS": not a Chorus peer.
    case badMagic([UInt8])
    /// The peer speaks another protocol version.
    case versionMismatch(received: UInt16, supported: UInt16)
    /// The header's CRC32C does not match its bytes.
    case headerChecksumMismatch(expected: UInt32, actual: UInt32)
    /// The kind byte names no known message.
    case unknownKind(UInt8)
    /// A field runs past the end of the header.
    case truncated(field: String, needed: Int, available: Int)
    /// A length or count exceeds its limit.
    case lengthTooLarge(field: String, length: Int, limit: Int)
    /// A field holds a value outside its range (an unknown enum code, invalid UTF-8, ...).
    case invalidValue(field: String, value: String)
    /// Bytes are left over after the last header field.
    case trailingBytes(count: Int)
    /// The number of frames differs from what the header declares.
    case frameCountMismatch(expected: Int, actual: Int)
    /// A payload's frames add up to another size than declared, or do not fit its element type.
    case payloadSizeMismatch(kind: MessageKind, payload: Int, declared: Int, actual: Int)
    /// A payload's CRC32C does not match: corrupted in transit; the shard must be recomputed.
    /// `span`: the shards a gradient covers from `shard` (a node sum covers more than one).
    case payloadChecksumMismatch(kind: MessageKind, step: UInt64, shard: UInt32?, span: UInt32 = 1, expected: UInt32, actual: UInt32)

    /// One line naming what is wrong.
    public var description: String {
        switch self {
        case .noFrames:
            return "wire: empty message (no frames)"
        case let .headerTooShort(count, minimum):
            return "wire: header frame of \(count) bytes, at least \(minimum) needed"
        case let .badMagic(bytes):
            return "wire: header starts with \(bytes.map { String($0, radix: 16) }) instead of \"CHRS\" (not a Chorus peer)"
        case let .versionMismatch(received, supported):
            return "wire: peer speaks protocol version \(received), this build speaks \(supported)"
        case let .headerChecksumMismatch(expected, actual):
            return "wire: header CRC32C is 0x\(String(actual, radix: 16)), header says 0x\(String(expected, radix: 16))"
        case let .unknownKind(kind):
            return "wire: unknown message kind \(kind)"
        case let .truncated(field, needed, available):
            return "wire: field \(field) needs \(needed) bytes, only \(available) left in the header"
        case let .lengthTooLarge(field, length, limit):
            return "wire: field \(field) has length \(length), limit \(limit)"
        case let .invalidValue(field, value):
            return "wire: field \(field) has invalid value \(value)"
        case let .trailingBytes(count):
            return "wire: \(count) unexpected bytes after the last header field"
        case let .frameCountMismatch(expected, actual):
            return "wire: message has \(actual) frames, header declares \(expected)"
        case let .payloadSizeMismatch(kind, payload, declared, actual):
            return "wire: \(kind) payload \(payload) is \(actual) bytes, expected \(declared)"
        case let .payloadChecksumMismatch(kind, step, shard, span, expected, actual):
            let what = shard.map { span > 1 ? "step \(step) shards \($0)..<\(UInt64($0) + UInt64(span))" : "step \(step) shard \($0)" } ?? "step \(step)"
            return "wire: \(kind) payload for \(what) corrupted: CRC32C 0x\(String(actual, radix: 16)), header says 0x\(String(expected, radix: 16))"
        }
    }
}
