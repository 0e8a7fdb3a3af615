import CZeroMQ
import Foundation
import WireProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Bounds what one TCP peer can make a ROUTER hold in memory before a message is complete.
///
/// libzmq hands a multipart message over only once its last frame is in, and ZMQ_MAXMSGSIZE
/// bounds a frame, not a message: a peer that completes the handshake and sends frame after
/// frame with MORE set makes libzmq buffer all of it. No libzmq option bounds that, so the guard
/// measures it from outside: for each accepted connection (a socket monitor names its fd) the
/// kernel's count of bytes received (`TCP_INFO`'s `tcpi_bytes_received`) minus the bytes libzmq
/// has handed over from that connection (`ZMQ_SRCFD` on each message) is what libzmq still
/// holds, up to ZMTP's framing. A connection over its limit is shut down (`shutdown(2)`: libzmq
/// sees the peer close, drops the pipe and rolls its partial message back).
///
/// Limits: `untrustedLimit` for connections whose peer has not been vouched for (`trust`; a
/// coordinator trusts a peer once it has joined — a join is small), `trustedLimit` for the others
/// (several full results may wait while the coordinator is busy), and `untrustedTotal` over all
/// untrusted connections at once (1000 connections cannot each take the limit: the largest goes
/// first). Allowances keep a healthy peer clear of them: 4 KiB per connection for the
/// handshake, 64 bytes per frame handed over (ZMTP and CURVE framing), and what libzmq consumed
/// itself before each hand-over (ZMTP heartbeats): held input is what grew since the last
/// message came out. What it cannot bound: memory per wire byte — a flood of 1-byte frames
/// costs libzmq ~64 bytes each, so the worst case is ~32× the limit — and an ipc connection
/// (no TCP counters; ipc peers are local processes).
///
/// It measures on a thread of its own every millisecond, so it also bounds what arrives while the
/// coordinator is busy elsewhere (starting workers, writing a checkpoint): a peer gets past its
/// limit by at most what the wire delivers in about a millisecond.
final class ConnectionGuard: @unchecked Sendable {
    struct Connection {
        var address = ""
        /// Wire bytes handed over, with the per-frame allowance.
        var handedOver: Int64 = 0
        /// Received minus handed over right after the last hand-over: what libzmq consumed
        /// itself (handshake, ZMTP heartbeats), so held input is only what grew since.
        var baseline: Int64 = ConnectionGuard.handshakeAllowance
        var trusted = false
        /// The peer whose messages came out of it (the first one; a later peer on the same fd
        /// number is a closed connection's last messages, not this one's).
        var peer: PeerID?
    }

    let untrustedLimit: Int64, trustedLimit: Int64, untrustedTotal: Int64
    private let monitor: UnsafeMutableRawPointer
    private var connections: [Int32: Connection] = [:]
    private var fdOfPeer: [PeerID: Int32] = [:]
    private var trustedPeers = Set<PeerID>()
    /// Connections shut down, with why (the owner logs them).
    private var dropped: [String] = []
    /// Guards everything above: the receiving thread reports hand-overs, the guard's thread measures.
    private let lock = NSLock()
    private var stopping = false
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    static let handshakeAllowance: Int64 = 4 << 10, frameAllowance: Int64 = 64

    /// Monitors `socket` (a bound ROUTER) through an inproc PAIR socket in `context`.
    init(socket: UnsafeMutableRawPointer, context: UnsafeMutableRawPointer, untrustedLimit: Int64, trustedLimit: Int64,
         untrustedTotal: Int64) throws {
        self.untrustedLimit = untrustedLimit
        self.trustedLimit = trustedLimit
        self.untrustedTotal = untrustedTotal
        monitor = try ZMQ.monitor(socket, context: context, events: Int32(ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED),
                                  name: "guard")
        let thread = Thread { [unowned self] in
            while true {
                self.lock.lock()
                let stop = self.stopping
                if !stop { self.check() }
                self.lock.unlock()
                if stop { break }
                usleep(1_000)
            }
            zmq_close(self.monitor)  // on the thread that used it
            self.stopped.signal()
        }
        thread.name = "chorus-connection-guard"
        self.thread = thread
        thread.start()
    }

    /// Stops the guard's thread and closes its monitor socket (before the context ends).
    func close() {
        lock.lock()
        let running = thread != nil && !stopping
        stopping = true
        lock.unlock()
        if running { stopped.wait() }
    }

    /// A message of `frames` frames and `bytes` bytes from `peer` came out of connection `fd`.
    func handedOver(fd: Int32, peer: PeerID, bytes: Int, frames: Int) {
        guard fd >= 0 else { return }
        let received = chorus_tcp_bytes_received(fd)
        lock.lock()
        defer { lock.unlock() }
        // Only connections the monitor announced, and only their own peer's messages: no entry
        // for a closed fd, no credit or trust from a closed connection's late messages.
        guard var connection = connections[fd], connection.peer == nil || connection.peer == peer else { return }
        connection.peer = peer
        connection.handedOver += Int64(bytes) + Self.frameAllowance * Int64(frames)
        if received >= 0 { connection.baseline = max(Int64(received) - connection.handedOver, 0) }
        if trustedPeers.contains(peer) { connection.trusted = true }
        connections[fd] = connection
        fdOfPeer[peer] = fd
    }

    /// `peer` is known (it joined): its connection gets the larger limit.
    func trust(_ peer: PeerID) {
        lock.lock()
        defer { lock.unlock() }
        trustedPeers.insert(peer)
        if let fd = fdOfPeer[peer], connections[fd]?.peer == peer { connections[fd]?.trusted = true }
    }

    /// `peer` is no longer a member: its connection gets the stranger's limit again.
    func untrust(_ peer: PeerID) {
        lock.lock()
        defer { lock.unlock() }
        trustedPeers.remove(peer)
        if let fd = fdOfPeer[peer], connections[fd]?.peer == peer { connections[fd]?.trusted = false }
    }

    /// Reads the monitor's events, then measures every connection and shuts down those over
    /// their limit (on the guard's thread, under the lock).
    private func check() {
        drainEvents()
        var untrusted: [(fd: Int32, held: Int64)] = []
        for (fd, connection) in connections {
            let received = chorus_tcp_bytes_received(fd)
            guard received >= 0 else { continue }
            let held = Int64(received) - connection.handedOver - connection.baseline
            let limit = connection.trusted ? trustedLimit : untrustedLimit
            if held > limit {
                drop(fd, "\(held) bytes buffered without a complete message (limit \(limit) for a \(connection.trusted ? "joined" : "new") peer)")
            } else if !connection.trusted && held > 0 {
                untrusted.append((fd, held))
            }
        }
        var total = untrusted.reduce(0) { $0 + $1.held }
        for (fd, held) in untrusted.sorted(by: { $0.held > $1.held }) where total > untrustedTotal {
            drop(fd, "\(held) bytes buffered without a complete message while new peers together hold \(total) (limit \(untrustedTotal))")
            total -= held
        }
    }

    private func drop(_ fd: Int32, _ why: String) {
        let address = connections[fd]?.address ?? ""
        shutdown(fd, Int32(SHUT_RDWR))
        connections[fd] = nil
        dropped.append("closed the connection from \(address.isEmpty ? "fd \(fd)" : address): \(why)")
    }

    /// Takes the drop lines recorded since the last call.
    func takeDropped() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        defer { dropped.removeAll() }
        return dropped
    }

    /// "ADDRESS:PORT" of a TCP connection's far end ("" if unknown).
    static func peerName(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let got = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard got == 0 else { return "" }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST)), port = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let named = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &port, socklen_t(port.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard named == 0 else { return "" }
        return String(cString: host) + ":" + String(cString: port)
    }

    private func drainEvents() {
        while true {
            // On the heap: a small message's data lives inside the zmq_msg_t itself.
            let event = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 2), endpoint = event + 1  // the endpoint part is unused
            zmq_msg_init(event)
            zmq_msg_init(endpoint)
            defer {
                zmq_msg_close(event)
                zmq_msg_close(endpoint)
                event.deallocate()
            }
            guard zmq_msg_recv(event, monitor, ZMQ_DONTWAIT) >= 0 else { return }
            guard zmq_msg_more(event) != 0, zmq_msg_recv(endpoint, monitor, 0) >= 0, zmq_msg_size(event) >= 6,
                  let data = zmq_msg_data(event) else { continue }
            let number = Int32(data.loadUnaligned(as: UInt16.self))
            let fd = Int32(bitPattern: data.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            switch number {
            case ZMQ_EVENT_ACCEPTED:
                connections[fd] = Connection(address: Self.peerName(fd))
            case ZMQ_EVENT_DISCONNECTED, ZMQ_EVENT_CLOSED:
                // (trustedPeers keeps joined peers: one that reconnects under its routing id is
                // still a member, and only joined peers are ever in it.)
                if let peer = connections.removeValue(forKey: fd)?.peer, fdOfPeer[peer] == fd { fdOfPeer[peer] = nil }
            default: break
            }
        }
    }
}
