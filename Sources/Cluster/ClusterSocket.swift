#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Transport
import WireProtocol

/// The socket set-up every coordinator and worker of Chorus shares: no linger, ZMTP
/// heartbeats, unbounded queues (back-pressure comes from the protocol's reorder window), and
/// optional CURVE encryption.
package enum ClusterSocket {
    /// A coordinator's ROUTER on `endpoint` with its context; a clear error when the endpoint is
    /// in use (an ipc socket someone listens on: binding would steal it) or cannot be bound.
    ///
    /// Over tcp the connection guard bounds what one peer can make libzmq buffer before a message
    /// is complete (``ConnectionGuard``): `guardLimits.newPeer` bytes until it has joined
    /// (`MessageTransport.trust`), `joinedPeer` after (the results a worker may have in flight),
    /// `newPeersTogether` for all peers not yet joined.
    ///
    /// With CURVE, the ROUTER carries only the sealing handshake and a second, plain ROUTER at
    /// `curveBulk`'s endpoint carries every message sealed (``SealedServerTransport``), unless
    /// `curveBulk` is `.off`.
    package static func bindCoordinator(endpoint: String, heartbeatMs: Int, timeoutMs: Int, curve: CurveKeys? = nil,
                                        curveBulk: CurveBulk = .nextPort,
                                        guardLimits: GuardLimits = GuardLimits()) throws -> (ZMQContext, MessageTransport) {
        if endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":"), endpoint.distance(from: endpoint.startIndex, to: colon) > 5 {
            let port = endpoint[endpoint.index(after: colon)...]
            guard port == "*" || (Int(port).map { (1...65535).contains($0) } ?? false) else {
                throw RuntimeError.invalidSetting("cannot bind \(endpoint): port \(port) is not 1…65535 (or * for any free one)")
            }
        } else if endpoint.hasPrefix("tcp://") {
            throw RuntimeError.invalidSetting("cannot bind \(endpoint): no port (write tcp://HOST:PORT)")
        }
        if endpoint.hasPrefix("ipc://") {
            removeOrphanedIPCSockets()
            if ipcSocketIsLive(String(endpoint.dropFirst(6))) {
                throw RuntimeError.cluster("cannot bind \(endpoint): in use (another process is listening on that socket); choose another endpoint")
            }
        }
        let context = try ZMQContext(ioThreads: 1)
        func bound(_ endpoint: String, curve: CurveKeys?) throws -> ZMQMessageTransport {
            do {
                let transport = try router(context: context, endpoint: endpoint, heartbeatMs: heartbeatMs, timeoutMs: timeoutMs, curve: curve)
                if endpoint.hasPrefix("tcp://") {
                    try transport.socket.enableConnectionGuard(untrustedLimit: guardLimits.newPeer, trustedLimit: guardLimits.joinedPeer,
                                                               untrustedTotal: guardLimits.newPeersTogether)
                }
                return transport
            } catch {
                throw RuntimeError.cluster("cannot bind \(endpoint): \(error); is another process using it?")
            }
        }
        let control = try bound(endpoint, curve: curve)
        guard curve != nil else { return (context, control) }
        guard let bulkEndpoint = try curveBulk.endpoint(beside: control.endpoint, requested: endpoint) else {
            return (context, SealedServerTransport(control: control, bulk: nil))
        }
        do {
            return (context, SealedServerTransport(control: control, bulk: try bound(bulkEndpoint, curve: nil)))
        } catch {
            control.close()
            throw RuntimeError.cluster("\(error) (the sealed bulk channel beside CURVE's \(control.endpoint); choose its port with --curve-bulk PORT, or --curve-bulk off)")
        }
    }

    /// Where the sealed bulk channel beside a CURVE coordinator binds.
    package enum CurveBulk: Equatable, Sendable {
        /// The control port + 1 (any free port when the control port asked for was `*`); ipc: PATH-bulk.sock.
        case nextPort
        /// This tcp port (0: any free one).
        case port(Int)
        /// No bulk channel: everything through libzmq's CURVE.
        case off

        /// Parses `--curve-bulk`: `next`, a port number, `any` or `off`.
        package init(parsing text: String) throws {
            switch text {
            case "next": self = .nextPort
            case "off": self = .off
            case "any": self = .port(0)
            default:
                guard let port = Int(text), (1...65535).contains(port) else {
                    throw RuntimeError.invalidSetting("--curve-bulk \(text): expected next, off, any or a port 1…65535")
                }
                self = .port(port)
            }
        }

        /// The bulk endpoint beside the control endpoint bound (`control`) for the one asked for
        /// (`requested`: a `*` port asked for makes the next port any free one too); nil when off.
        func endpoint(beside control: String, requested: String? = nil) throws -> String? {
            if self == .off { return nil }
            if control.hasPrefix("ipc://") {
                let path = control.hasSuffix(".sock") ? String(control.dropLast(5)) : control
                return path + "-bulk.sock"
            }
            guard control.hasPrefix("tcp://"), let colon = control.lastIndex(of: ":") else { return nil }
            let host = control[..<colon], port = Int(control[control.index(after: colon)...]) ?? 0
            switch self {
            case .port(let chosen): return "\(host):\(chosen == 0 ? "*" : String(chosen))"
            case .nextPort where requested?.hasSuffix(":*") == true: return "\(host):*"
            default:
                guard port < 65535 else { throw RuntimeError.invalidSetting("--curve-bulk: the control port is 65535, so there is no next port; give one") }
                return "\(host):\(port + 1)"
            }
        }
    }

    /// What the connection guard lets one tcp peer have buffered without a complete message.
    package struct GuardLimits {
        /// A peer that has not joined: a hello is a few hundred bytes. Small, because memory per
        /// wire byte can be ~32× (a flood of 1-byte frames): 2 MiB at most for a stranger.
        package var newPeer: Int64 = 64 << 10
        /// A joined worker: its results for every shard of a step, and two more (64 MiB at least).
        package var joinedPeer: Int64 = 64 << 20
        /// All peers not yet joined together (the largest goes first): 32 MiB of memory at most.
        package var newPeersTogether: Int64 = 1 << 20

        package init() {}

        /// Room for `shards + 2` results of `resultBytes` each, plus 16 MiB.
        package init(resultBytes: Int, shards: Int) {
            joinedPeer = max(joinedPeer, Int64(shards + 2) * Int64(resultBytes + (64 << 10)) + (16 << 20))
        }
    }

    /// A worker's DEALER connected to `endpoint` with its context; `name` starts the error message.
    /// With the coordinator's CURVE key, a ``SealedClientTransport``: the CURVE DEALER for the
    /// handshake, a plain one to the bulk channel it names for everything else.
    package static func connectWorker(name: String, endpoint: String, identityPrefix: String, heartbeatMs: Int, timeoutMs: Int,
                                      curveServerKey: String? = nil) throws -> (ZMQContext, MessageTransport) {
        let context = try ZMQContext(ioThreads: 1)
        do {
            let control = try dealer(context: context, endpoint: endpoint, identityPrefix: identityPrefix, heartbeatMs: heartbeatMs,
                                     timeoutMs: timeoutMs, curveServerKey: curveServerKey)
            guard curveServerKey != nil else { return (context, control) }
            return (context, try SealedClientTransport(control: control, sendWaitMs: sendTimeoutMs(heartbeatMs)) { bulkEndpoint, token in
                var options = dealerOptions(heartbeatMs: heartbeatMs, timeoutMs: timeoutMs)
                options.append(.routingID(token))
                return try ZMQMessageTransport.dealer(context: context, connect: bulkEndpoint, options: options)
            })
        } catch {
            throw RuntimeError.cluster("\(name): cannot connect to \(endpoint): \(error)")
        }
    }

    /// Removes `chorus-…<pid>….sock` ipc sockets in `directory` whose process no longer exists
    /// and that nobody listens on (a SIGKILLed coordinator cannot remove its own); returns how many.
    @discardableResult
    package static func removeOrphanedIPCSockets(directory: String = "/tmp") -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return 0 }
        var removed = 0
        for name in names where name.hasSuffix(".sock") && SharedGradients.creatorIsGone(name) {
            let path = directory + "/" + name
            var status = stat()
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK, !ipcSocketIsLive(path) else { continue }
            if unlink(path) == 0 { removed += 1 }
        }
        return removed
    }

    /// Whether a unix socket at `path` accepts connections (someone is listening).
    static func ipcSocketIsLive(_ path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (index, byte) in bytes.enumerated() { raw[index] = byte } }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }

    /// A coordinator's ROUTER bound to `endpoint`.
    package static func router(context: ZMQContext, endpoint: String, heartbeatMs: Int, timeoutMs: Int, curve: CurveKeys? = nil) throws -> ZMQMessageTransport {
        var options: [SocketOption] = [
            .linger(0), .heartbeatInterval(Int32(heartbeatMs)), .heartbeatTimeout(Int32(timeoutMs)), .sendHWM(0), .receiveHWM(0),
        ]
        if let curve { options += [.curveServer(true), .curveSecretKey(curve.secretKey)] }
        return try ZMQMessageTransport.router(context: context, bind: endpoint, options: options)
    }

    /// A worker's DEALER connected to `endpoint` with routing id `<prefix><pid>-<random>`;
    /// with the coordinator's CURVE public key, encrypted under a fresh key pair of its own.
    package static func dealer(context: ZMQContext, endpoint: String, identityPrefix: String, heartbeatMs: Int, timeoutMs: Int,
                       curveServerKey: String? = nil) throws -> ZMQMessageTransport {
        var options = dealerOptions(heartbeatMs: heartbeatMs, timeoutMs: timeoutMs)
        options.append(.routingID(PeerID("\(identityPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))")))
        if let curveServerKey {
            let mine = try CurveKeys.generate()
            options += [.curveServerKey(curveServerKey), .curvePublicKey(mine.publicKey), .curveSecretKey(mine.secretKey)]
        }
        return try ZMQMessageTransport.dealer(context: context, connect: endpoint, options: options)
    }

    /// A worker DEALER's options but its routing id.
    static func dealerOptions(heartbeatMs: Int, timeoutMs: Int) -> [SocketOption] {
        [
            .linger(0), .heartbeatInterval(Int32(heartbeatMs)), .heartbeatTimeout(Int32(timeoutMs)), .sendHWM(0), .receiveHWM(0),
            // A send waits for a connection at most this long (none while the coordinator is
            // gone, or while a CURVE handshake keeps failing): the worker keeps its clock going.
            .sendTimeout(Int32(sendTimeoutMs(heartbeatMs))),
        ]
    }

    static func sendTimeoutMs(_ heartbeatMs: Int) -> Int { min(max(heartbeatMs, 10), 1_000) }
}
