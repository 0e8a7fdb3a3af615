import CZeroMQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Library-wide libzmq facts and helpers: version, CURVE support, key pairs, polling.
public enum ZMQ {
    /// The linked libzmq's version, e.g. "4.3.4".
    public static var version: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    /// Whether libzmq was built with CURVE security (`zmq_has("curve")`).
    public static var hasCurve: Bool { zmq_has("curve") == 1 }

    /// A new CURVE key pair as 40-character Z85 strings (for `chorus keygen`).
    public static func curveKeypair() throws -> (public: String, secret: String) {
        guard hasCurve else { throw TransportError.curveUnavailable }
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else {
            throw error(operation: "zmq_curve_keypair", endpoint: "")
        }
        return (String(cString: publicKey), String(cString: secretKey))
    }

    /// Which of `sockets` have a message ready, waiting at most `timeoutMs` (−1: forever).
    ///
    /// An interrupted wait (EINTR) returns all `false`.
    public static func poll(_ sockets: [ZMQSocket], timeoutMs: Int) throws -> [Bool] {
        var items = try sockets.map { socket in
            zmq_pollitem_t(socket: try socket.rawHandle(), fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        }
        let result = zmq_poll(&items, Int32(items.count), timeoutMs)
        if result < 0 {
            if zmq_errno() == EINTR { return Array(repeating: false, count: sockets.count) }
            throw error(operation: "zmq_poll", endpoint: sockets.map(\.endpoint).joined(separator: ","))
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }

    /// A PAIR socket in `context` that receives `socket`'s monitor events (`zmq_socket_monitor`
    /// for `events` over a fresh inproc address named after `name`); the caller reads and closes it.
    static func monitor(_ socket: UnsafeMutableRawPointer, context: UnsafeMutableRawPointer, events: Int32, name: String) throws -> UnsafeMutableRawPointer {
        let address = "inproc://chorus-\(name)-\(UInt(bitPattern: socket))-\(UInt32.random(in: 0...UInt32.max))"
        guard zmq_socket_monitor(socket, address, events) == 0 else { throw error(operation: "zmq_socket_monitor", endpoint: address) }
        guard let pair = zmq_socket(context, ZMQ_PAIR) else { throw error(operation: "zmq_socket(pair)", endpoint: address) }
        var linger: Int32 = 0
        zmq_setsockopt(pair, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size)
        guard zmq_connect(pair, address) == 0 else {
            let failure = error(operation: "zmq_connect", endpoint: address)
            zmq_close(pair)
            throw failure
        }
        return pair
    }

    /// The `TransportError` for the current `zmq_errno()`.
    static func error(operation: String, endpoint: String, code: Int32 = zmq_errno()) -> TransportError {
        return .zmq(operation: operation, endpoint: endpoint, code: code, text: String(cString: zmq_strerror(code)))
    }
}

/// A libzmq context: owns the I/O threads; thread-safe; terminated when the last socket and
/// the last reference are gone.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// A context with `ioThreads` I/O threads (ps-lite uses 4; one moves ~1 GB/s per thread).
    public init(ioThreads: Int = 1) throws {
        guard let handle = zmq_ctx_new() else { throw ZMQ.error(operation: "zmq_ctx_new", endpoint: "") }
        self.handle = handle
        guard zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads)) == 0 else {
            let failure = ZMQ.error(operation: "zmq_ctx_set(ZMQ_IO_THREADS=\(ioThreads))", endpoint: "")
            zmq_ctx_term(handle)
            throw failure
        }
    }

    deinit {
        // Sockets hold a reference to their context, so all are closed by now; linger bounds the wait.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}
