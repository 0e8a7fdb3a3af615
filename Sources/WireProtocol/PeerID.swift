/// The identity of a peer as the coordinator's ROUTER socket sees it (its routing ID bytes).
///
/// Lives here, not in Transport, so the coordination state machines can name peers without
/// knowing about sockets.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    /// The routing ID bytes (1 to 255 bytes in ZeroMQ).
    public let bytes: [UInt8]

    /// A peer ID from raw routing-ID bytes.
    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// A peer ID from a string's UTF-8 bytes.
    public init(_ name: String) { self.bytes = Array(name.utf8) }

    /// The ID as text when it is printable ASCII, hex otherwise (libzmq's own IDs start with 0).
    public var description: String {
        if !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return "0x" + bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
