import CZeroMQ
import WireProtocol
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The libzmq socket types Chorus uses.
public enum ZMQSocketType: Sendable, CustomStringConvertible {
    case router, dealer, push, pull, pair

    var rawValue: Int32 {
        switch self {
        case .router: return ZMQ_ROUTER
        case .dealer: return ZMQ_DEALER
        case .push: return ZMQ_PUSH
        case .pull: return ZMQ_PULL
        case .pair: return ZMQ_PAIR
        }
    }

    /// The type's name in lower case.
    public var description: String { "\(self)" }
}

/// A libzmq socket; multipart sends are zero-copy for big frames.
///
/// Thread rule: libzmq sockets are not thread-safe. One thread owns a socket at a time; hand it
/// to another thread only through a synchronising operation (a lock, a queue). The class is
/// `@unchecked Sendable` so it can be handed over; it does not make concurrent use safe.
public final class ZMQSocket: @unchecked Sendable {
    /// The socket type.
    public let type: ZMQSocketType
    /// The endpoint last bound or connected (for error messages); empty before.
    public private(set) var endpoint = ""
    private var handle: UnsafeMutableRawPointer?
    private let context: ZMQContext

    /// Frames at least this long are sent zero-copy; shorter ones are copied (64 KiB).
    public static let zeroCopyThreshold = 64 << 10

    /// Opens a socket; `linger` (ms) defaults to 1 s so close never hangs on a dead peer.
    public init(context: ZMQContext, type: ZMQSocketType, linger: Int32 = 1000) throws {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQ.error(operation: "zmq_socket(\(type))", endpoint: "")
        }
        self.context = context
        self.type = type
        self.handle = handle
        try set(.linger(linger))
    }

    deinit { close() }

    /// The raw libzmq handle; throws once closed.
    func rawHandle() throws -> UnsafeMutableRawPointer {
        guard let handle else { throw TransportError.closed(endpoint: endpoint) }
        return handle
    }

    /// Sets one option (call before bind/connect for connection options such as CURVE).
    public func set(_ option: SocketOption) throws {
        try option.apply(to: try rawHandle(), endpoint: endpoint)
    }

    /// Sets several options in order.
    public func set(_ options: [SocketOption]) throws {
        for option in options { try set(option) }
    }

    /// Binds to `endpoint` (`tcp://127.0.0.1:*` picks a free port; see `lastEndpoint`).
    public func bind(_ endpoint: String) throws {
        let handle = try rawHandle()
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQ.error(operation: "zmq_bind", endpoint: endpoint) }
        self.endpoint = (try? lastEndpoint()) ?? endpoint
    }

    /// Connects to `endpoint`; libzmq connects (and reconnects) in the background.
    public func connect(_ endpoint: String) throws {
        let handle = try rawHandle()
        guard zmq_connect(handle, endpoint) == 0 else {
            throw ZMQ.error(operation: "zmq_connect", endpoint: endpoint)
        }
        self.endpoint = endpoint
    }

    /// The endpoint actually bound (ZMQ_LAST_ENDPOINT), with the port a wildcard resolved to.
    public func lastEndpoint() throws -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        guard zmq_getsockopt(try rawHandle(), ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
            throw ZMQ.error(operation: "zmq_getsockopt(ZMQ_LAST_ENDPOINT)", endpoint: endpoint)
        }
        return String(cString: buffer)
    }

    /// Closes the socket (idempotent); queued messages get `linger` ms to leave.
    public func close() {
        // The guard first: its thread must stop using the connections' fds before libzmq closes them.
        // Its monitor is stopped first of all: a monitored socket closed after another guarded
        // one in the same context otherwise kept its listening port (seen with two ROUTERs).
        if connectionGuard != nil || handshakeMonitor != nil, let handle { zmq_socket_monitor(handle, nil, 0) }
        connectionGuard?.close()
        connectionGuard = nil
        if let handshakeMonitor { zmq_close(handshakeMonitor) }
        handshakeMonitor = nil
        if let handle {
            zmq_close(handle)
            self.handle = nil
        }
    }

    // MARK: Sending

    /// Sends `frames` as one multipart message, to `peer` on a ROUTER (required there).
    ///
    /// Frames of `zeroCopyThreshold` bytes or more go out without a copy: libzmq keeps the
    /// buffer retained until written, so it must not change afterwards. With `dontWait`, a full
    /// queue throws `wouldBlock` instead of blocking.
    public func sendMultipart(_ frames: [Frame], to peer: PeerID? = nil, dontWait: Bool = false) throws {
        let handle = try rawHandle()
        let wait = dontWait ? ZMQ_DONTWAIT : 0
        if type == .router {
            guard let peer else {
                throw TransportError.invalidOption(name: "peer", value: "nil", reason: "a ROUTER send needs a peer")
            }
            let more = frames.isEmpty ? 0 : ZMQ_SNDMORE
            let sent = peer.bytes.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, more | wait) }
            if sent < 0 { throw sendError(peer: peer) }
        }
        for (index, frame) in frames.enumerated() {
            let more = index + 1 < frames.count ? ZMQ_SNDMORE : 0
            try send(frame, on: handle, flags: more | wait, peer: peer)
        }
    }

    private func send(_ frame: Frame, on handle: UnsafeMutableRawPointer, flags: Int32, peer: PeerID?) throws {
        var message = zmq_msg_t()
        let data = frame.buffer.baseAddress + frame.offset
        if frame.count >= Self.zeroCopyThreshold {
            let retained = Unmanaged.passRetained(frame.buffer).toOpaque()
            guard zmq_msg_init_data(&message, data, frame.count, releaseRetainedBuffer, retained) == 0 else {
                Unmanaged<PayloadBuffer>.fromOpaque(retained).release()
                throw ZMQ.error(operation: "zmq_msg_init_data", endpoint: endpoint)
            }
        } else {
            guard zmq_msg_init_size(&message, frame.count) == 0 else {
                throw ZMQ.error(operation: "zmq_msg_init_size", endpoint: endpoint)
            }
            if frame.count > 0 { zmq_msg_data(&message).copyMemory(from: data, byteCount: frame.count) }
        }
        if zmq_msg_send(&message, handle, flags) < 0 {
            let failure = sendError(peer: peer)
            zmq_msg_close(&message)  // still ours after a failed send; runs the release callback
            throw failure
        }
    }

    private func sendError(peer: PeerID?) -> TransportError {
        switch zmq_errno() {
        case EHOSTUNREACH: return .peerUnreachable(peer: peer ?? PeerID(bytes: []), endpoint: endpoint)
        case EAGAIN: return .wouldBlock(endpoint: endpoint)
        case ETERM, ENOTSOCK: return .closed(endpoint: endpoint)
        default: return ZMQ.error(operation: "zmq_msg_send", endpoint: endpoint)
        }
    }

    // MARK: Receiving

    /// The `Peer-Address` of each ROUTER peer heard from over tcp (libzmq's message metadata).
    public private(set) var peerAddresses: [PeerID: String] = [:]

    /// Bounds what each TCP peer can make libzmq buffer (see ``ConnectionGuard``); nil until enabled.
    var connectionGuard: ConnectionGuard?

    /// Turns the connection guard on (a bound ROUTER): `untrustedLimit` bytes held for a peer not
    /// yet trusted, `trustedLimit` for one that is (``trust(_:)``), `untrustedTotal` for all
    /// untrusted ones together.
    public func enableConnectionGuard(untrustedLimit: Int64, trustedLimit: Int64, untrustedTotal: Int64) throws {
        guard connectionGuard == nil else { return }
        connectionGuard = try ConnectionGuard(socket: try rawHandle(), context: context.handle, untrustedLimit: untrustedLimit,
                                              trustedLimit: trustedLimit, untrustedTotal: untrustedTotal)
    }

    /// `peer` has joined: the connection guard allows it the trusted limit.
    public func trust(_ peer: PeerID) { connectionGuard?.trust(peer) }

    /// `peer` is gone for good (a replaced session): back to the stranger's limit.
    public func untrust(_ peer: PeerID) { connectionGuard?.untrust(peer) }

    // MARK: Handshakes (a connecting socket)

    private var handshakeMonitor: UnsafeMutableRawPointer?

    /// Starts counting the connection's completed ZMTP handshakes (CURVE's included), read with
    /// ``takeHandshakes()``: a second one means the socket reconnected (to a restarted peer, say).
    public func watchHandshakes() throws {
        guard handshakeMonitor == nil else { return }
        handshakeMonitor = try ZMQ.monitor(try rawHandle(), context: context.handle, events: Int32(ZMQ_EVENT_HANDSHAKE_SUCCEEDED), name: "handshakes")
    }

    /// Handshakes completed since the last call (0 when not watching).
    public func takeHandshakes() -> Int {
        guard let monitor = handshakeMonitor else { return 0 }
        var count = 0
        var part = zmq_msg_t()
        zmq_msg_init(&part)
        defer { zmq_msg_close(&part) }
        // Each event is two parts: event number and value, then the endpoint.
        while zmq_msg_recv(&part, monitor, ZMQ_DONTWAIT) >= 0 {
            if zmq_msg_more(&part) == 0 { count += 1 }
        }
        return count
    }

    /// Connections the guard shut down since the last call, one line each.
    public func takeGuardDrops() -> [String] { connectionGuard?.takeDropped() ?? [] }

    /// Receives one multipart message, waiting at most `timeoutMs` (−1 forever); nil on timeout.
    ///
    /// On a ROUTER the routing-ID frame is split off into `peer`; elsewhere `peer` is nil.
    /// Frames longer than 4 KiB keep libzmq's memory (no copy) until the frame is released.
    public func receiveMultipart(timeoutMs: Int) throws -> (peer: PeerID?, frames: [Frame])? {
        let handle = try rawHandle()
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let ready = zmq_poll(&item, 1, timeoutMs)
        if ready < 0 {
            if zmq_errno() == EINTR { return nil }
            throw ZMQ.error(operation: "zmq_poll", endpoint: endpoint)
        }
        if ready == 0 { return nil }
        var frames: [Frame] = []
        var more = true
        var address: String?
        var sourceFD: Int32 = -1
        while more {
            let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
            zmq_msg_init(message)
            // A multipart message arrives whole, so once the first part is ready all parts are.
            guard zmq_msg_recv(message, handle, frames.isEmpty ? ZMQ_DONTWAIT : 0) >= 0 else {
                let code = zmq_errno()
                zmq_msg_close(message)
                message.deallocate()
                if frames.isEmpty && (code == EAGAIN || code == EINTR) { return nil }
                throw ZMQ.error(operation: "zmq_msg_recv", endpoint: endpoint, code: code)
            }
            more = zmq_msg_more(message) != 0
            // The routing-ID frame is the ROUTER's own; the peer's first frame carries the metadata.
            if frames.count == 1 && type == .router, let text = zmq_msg_gets(message, "Peer-Address") {
                address = String(cString: text)
            }
            if frames.count == 1 && connectionGuard != nil { sourceFD = zmq_msg_get(message, ZMQ_SRCFD) }
            frames.append(Self.frame(adopting: message))
        }
        if type == .router {
            let identity = frames.removeFirst()
            let peer = PeerID(bytes: identity.byteArray)
            if let address, !address.isEmpty, peerAddresses[peer] == nil { peerAddresses[peer] = address }
            // The routing-id frame is the ROUTER's own, not on the wire.
            connectionGuard?.handedOver(fd: sourceFD, peer: peer, bytes: frames.reduce(0) { $0 + $1.count }, frames: frames.count)
            return (peer, frames)
        }
        return (nil, frames)
    }

    /// A frame over a received message: small ones copied, big ones kept in libzmq's memory.
    private static func frame(adopting message: UnsafeMutablePointer<zmq_msg_t>) -> Frame {
        let size = zmq_msg_size(message)
        guard size > 4096, let data = zmq_msg_data(message) else {
            let copy = PayloadBuffer(copying: UnsafeRawBufferPointer(start: zmq_msg_data(message), count: size))
            zmq_msg_close(message)
            message.deallocate()
            return Frame(buffer: copy)
        }
        let buffer = PayloadBuffer(adopting: data, byteCount: size) { _ in
            zmq_msg_close(message)
            message.deallocate()
        }
        return Frame(buffer: buffer)
    }
}

/// libzmq's free callback for zero-copy frames: drops the retain taken at send.
private let releaseRetainedBuffer: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = {
    _, hint in
    if let hint { Unmanaged<PayloadBuffer>.fromOpaque(hint).release() }
}
