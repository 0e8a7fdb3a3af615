import CZeroMQ
import WireProtocol

/// A libzmq socket option, with the C type libzmq expects for it.
public enum SocketOption: Sendable, Equatable {
    /// ZMQ_LINGER: how long close waits to flush queued messages, ms (−1 forever; int).
    case linger(Int32)
    /// ZMQ_MAXMSGSIZE: largest inbound frame in bytes; a peer exceeding it is disconnected (int64).
    case maxMessageSize(Int64)
    /// ZMQ_ROUTER_MANDATORY: sends to an unknown peer fail with EHOSTUNREACH instead of dropping.
    case routerMandatory(Bool)
    /// ZMQ_ROUTING_ID: this socket's identity as a ROUTER peer sees it (1–255 bytes, not starting with 0).
    case routingID(PeerID)
    /// ZMQ_SNDHWM: most messages queued per peer for sending.
    case sendHWM(Int32)
    /// ZMQ_RCVHWM: most messages queued per peer for receiving.
    case receiveHWM(Int32)
    /// ZMQ_SNDTIMEO: how long a blocking send waits, ms (−1 forever).
    case sendTimeout(Int32)
    /// ZMQ_HEARTBEAT_IVL: interval of ZMTP PING frames, ms (0 off).
    case heartbeatInterval(Int32)
    /// ZMQ_HEARTBEAT_TIMEOUT: silence after a PING before the connection is dropped, ms.
    case heartbeatTimeout(Int32)
    /// ZMQ_HEARTBEAT_TTL: how long the remote side waits for traffic before dropping us, ms (rounded to 100 ms).
    case heartbeatTTL(Int32)
    /// ZMQ_TCP_KEEPALIVE: OS-level TCP keepalive on (1) or off (0); −1 leaves the OS default.
    case tcpKeepalive(Int32)
    /// ZMQ_IMMEDIATE: queue messages only on completed connections.
    case immediate(Bool)
    /// ZMQ_CURVE_SERVER: act as CURVE server (needs `curveSecretKey`).
    case curveServer(Bool)
    /// ZMQ_CURVE_SECRETKEY: this socket's secret key, 40-character Z85.
    case curveSecretKey(String)
    /// ZMQ_CURVE_PUBLICKEY: this socket's public key, 40-character Z85.
    case curvePublicKey(String)
    /// ZMQ_CURVE_SERVERKEY: the server's public key a client expects, 40-character Z85.
    case curveServerKey(String)
    /// ZMQ_SNDBUF: kernel send buffer size in bytes (−1 OS default).
    case sendBuffer(Int32)
    /// ZMQ_RCVBUF: kernel receive buffer size in bytes (−1 OS default).
    case receiveBuffer(Int32)

    /// The option's libzmq name, for error messages.
    public var name: String {
        switch self {
        case .linger: return "ZMQ_LINGER"
        case .maxMessageSize: return "ZMQ_MAXMSGSIZE"
        case .routerMandatory: return "ZMQ_ROUTER_MANDATORY"
        case .routingID: return "ZMQ_ROUTING_ID"
        case .sendHWM: return "ZMQ_SNDHWM"
        case .receiveHWM: return "ZMQ_RCVHWM"
        case .sendTimeout: return "ZMQ_SNDTIMEO"
        case .heartbeatInterval: return "ZMQ_HEARTBEAT_IVL"
        case .heartbeatTimeout: return "ZMQ_HEARTBEAT_TIMEOUT"
        case .heartbeatTTL: return "ZMQ_HEARTBEAT_TTL"
        case .tcpKeepalive: return "ZMQ_TCP_KEEPALIVE"
        case .immediate: return "ZMQ_IMMEDIATE"
        case .curveServer: return "ZMQ_CURVE_SERVER"
        case .curveSecretKey: return "ZMQ_CURVE_SECRETKEY"
        case .curvePublicKey: return "ZMQ_CURVE_PUBLICKEY"
        case .curveServerKey: return "ZMQ_CURVE_SERVERKEY"
        case .sendBuffer: return "ZMQ_SNDBUF"
        case .receiveBuffer: return "ZMQ_RCVBUF"
        }
    }

    /// Applies the option with `zmq_setsockopt`, passing the exact C size libzmq checks.
    func apply(to handle: UnsafeMutableRawPointer, endpoint: String) throws {
        let result: Int32
        switch self {
        case .linger(let value): result = Self.set(handle, ZMQ_LINGER, value)
        case .maxMessageSize(let value): result = Self.set(handle, ZMQ_MAXMSGSIZE, value)
        case .routerMandatory(let on): result = Self.set(handle, ZMQ_ROUTER_MANDATORY, Int32(on ? 1 : 0))
        case .routingID(let peer):
            guard !peer.bytes.isEmpty, peer.bytes.count <= 255, peer.bytes[0] != 0 else {
                throw TransportError.invalidOption(name: name, value: peer.description,
                                                   reason: "needs 1 to 255 bytes, not starting with a zero byte")
            }
            result = peer.bytes.withUnsafeBytes { zmq_setsockopt(handle, ZMQ_ROUTING_ID, $0.baseAddress, $0.count) }
        case .sendHWM(let value): result = Self.set(handle, ZMQ_SNDHWM, value)
        case .receiveHWM(let value): result = Self.set(handle, ZMQ_RCVHWM, value)
        case .sendTimeout(let value): result = Self.set(handle, ZMQ_SNDTIMEO, value)
        case .heartbeatInterval(let value): result = Self.set(handle, ZMQ_HEARTBEAT_IVL, value)
        case .heartbeatTimeout(let value): result = Self.set(handle, ZMQ_HEARTBEAT_TIMEOUT, value)
        case .heartbeatTTL(let value): result = Self.set(handle, ZMQ_HEARTBEAT_TTL, value)
        case .tcpKeepalive(let value): result = Self.set(handle, ZMQ_TCP_KEEPALIVE, value)
        case .immediate(let on): result = Self.set(handle, ZMQ_IMMEDIATE, Int32(on ? 1 : 0))
        case .curveServer(let on):
            guard ZMQ.hasCurve else { throw TransportError.curveUnavailable }
            result = Self.set(handle, ZMQ_CURVE_SERVER, Int32(on ? 1 : 0))
        case .curveSecretKey(let key): result = try Self.setKey(handle, ZMQ_CURVE_SECRETKEY, key, name)
        case .curvePublicKey(let key): result = try Self.setKey(handle, ZMQ_CURVE_PUBLICKEY, key, name)
        case .curveServerKey(let key): result = try Self.setKey(handle, ZMQ_CURVE_SERVERKEY, key, name)
        case .sendBuffer(let value): result = Self.set(handle, ZMQ_SNDBUF, value)
        case .receiveBuffer(let value): result = Self.set(handle, ZMQ_RCVBUF, value)
        }
        guard result == 0 else { throw ZMQ.error(operation: "zmq_setsockopt(\(name))", endpoint: endpoint) }
    }

    private static func set<T: FixedWidthInteger>(_ handle: UnsafeMutableRawPointer, _ option: Int32, _ value: T) -> Int32 {
        var copy = value
        return zmq_setsockopt(handle, option, &copy, MemoryLayout<T>.size)
    }

    private static func setKey(_ handle: UnsafeMutableRawPointer, _ option: Int32, _ key: String,
                               _ name: String) throws -> Int32 {
        guard ZMQ.hasCurve else { throw TransportError.curveUnavailable }
        let bytes = Array(key.utf8)
        guard bytes.count == 40 else {
            throw TransportError.invalidOption(name: name, value: "\(bytes.count) characters",
                                               reason: "a CURVE key is 40 Z85 characters (see chorus keygen)")
        }
        return bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, 40) }
    }
}
