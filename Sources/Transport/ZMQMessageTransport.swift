import WireProtocol

/// `MessageTransport` over libzmq: a ROUTER for the coordinator, a DEALER per worker.
///
/// The ROUTER defaults to ZMQ_ROUTER_MANDATORY (sends to a gone worker fail loudly) and a
/// ZMQ_MAXMSGSIZE frame limit (a peer cannot make the coordinator allocate unbounded memory);
/// callers add heartbeats and CURVE keys through `options`.
public final class ZMQMessageTransport: MessageTransport, @unchecked Sendable {
    /// The underlying socket (owned by the same thread as this transport).
    public let socket: ZMQSocket

    /// Largest inbound frame the ROUTER accepts by default: 256 MiB (a limit per frame, as
    /// libzmq applies ZMQ_MAXMSGSIZE; payload frames are 4 MiB by default).
    public static let defaultMaxMessageSize: Int64 = 256 << 20

    /// Options every ROUTER gets before the caller's: mandatory routing, the frame size guard.
    public static let routerDefaults: [SocketOption] = [
        .routerMandatory(true), .maxMessageSize(defaultMaxMessageSize),
    ]

    /// Wraps an already configured, bound or connected socket.
    public init(socket: ZMQSocket) { self.socket = socket }

    /// A ROUTER bound to `endpoint` with `routerDefaults`, then `options` (later ones win).
    public static func router(context: ZMQContext, bind endpoint: String,
                              options: [SocketOption] = []) throws -> ZMQMessageTransport {
        let socket = try ZMQSocket(context: context, type: .router)
        try socket.set(routerDefaults + options)
        try socket.bind(endpoint)
        return ZMQMessageTransport(socket: socket)
    }

    /// A DEALER connected to `endpoint` with `options` (routing ID, heartbeats, CURVE keys).
    public static func dealer(context: ZMQContext, connect endpoint: String,
                              options: [SocketOption] = []) throws -> ZMQMessageTransport {
        let socket = try ZMQSocket(context: context, type: .dealer)
        try socket.set(options)
        try socket.connect(endpoint)
        return ZMQMessageTransport(socket: socket)
    }

    /// The bound endpoint (port resolved) or the connected one.
    public var endpoint: String { socket.endpoint }

    /// Sends one multipart message (zero-copy for payload frames).
    public func send(_ frames: [Frame], to peer: PeerID?) throws {
        try socket.sendMultipart(frames, to: peer)
    }

    /// Receives one multipart message, or nil after `timeoutMs`.
    public func receive(timeoutMs: Int) throws -> (peer: PeerID?, frames: [Frame])? {
        try socket.receiveMultipart(timeoutMs: timeoutMs)
    }

    /// Closes the socket.
    public func close() { socket.close() }

    /// `peer` has joined: the connection guard, if on, allows its connection the trusted limit.
    public func trust(_ peer: PeerID) { socket.trust(peer) }

    /// Connections the connection guard shut down since the last call, one line each.
    public func takeGuardDrops() -> [String] { socket.takeGuardDrops() }

    /// libzmq's `Peer-Address` of the peer's connection (tcp only).
    public func address(of peer: PeerID) -> String? { socket.peerAddresses[peer] }
}
