import WireProtocol

/// Why a transport operation failed; each case names the endpoint involved.
public enum TransportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A libzmq call failed: the call, the endpoint, errno and `zmq_strerror`'s text.
    case zmq(operation: String, endpoint: String, code: Int32, text: String)
    /// The ROUTER has no connected peer with this routing ID (ZMQ_ROUTER_MANDATORY), or the
    /// peer's connection timed out (ZMTP heartbeats).
    case peerUnreachable(peer: PeerID, endpoint: String)
    /// The send would block: the peer's queue is at its high-water mark, or a send timeout passed.
    case wouldBlock(endpoint: String)
    /// The socket or transport was already closed.
    case closed(endpoint: String)
    /// An option value that libzmq cannot take (a malformed CURVE key, an empty routing ID, ...).
    case invalidOption(name: String, value: String, reason: String)
    /// This libzmq was built without CURVE security (`zmq_has("curve")` is 0).
    case curveUnavailable

    /// One line naming what failed and where.
    public var description: String {
        switch self {
        case let .zmq(operation, endpoint, code, text):
            return "transport: \(operation) on \(endpoint.isEmpty ? "an unbound socket" : endpoint) failed: \(text) (errno \(code))"
        case let .peerUnreachable(peer, endpoint):
            return "transport: peer \(peer) is not connected to \(endpoint) (disconnected or never joined)"
        case let .wouldBlock(endpoint):
            return "transport: send on \(endpoint) would block (peer queue full or send timeout)"
        case let .closed(endpoint):
            return "transport: \(endpoint.isEmpty ? "socket" : endpoint) is closed"
        case let .invalidOption(name, value, reason):
            return "transport: option \(name) = \(value) is invalid: \(reason)"
        case .curveUnavailable:
            return "transport: this libzmq has no CURVE support (zmq_has(\"curve\") = 0); install libzmq built with libsodium"
        }
    }
}
