import Foundation
import WireProtocol

/// A queue of multipart messages that a receiver can wait on.
final class Mailbox: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [(peer: PeerID?, frames: [Frame])] = []
    private var head = 0
    private(set) var isClosed = false

    func push(_ peer: PeerID?, _ frames: [Frame]) {
        condition.lock()
        defer { condition.unlock() }
        guard !isClosed else { return }
        queue.append((peer, frames))
        condition.signal()
    }

    func pop(timeoutMs: Int) -> (peer: PeerID?, frames: [Frame])? {
        let deadline = Date(timeIntervalSinceNow: Double(timeoutMs) / 1000)
        condition.lock()
        defer { condition.unlock() }
        while head == queue.count && !isClosed {
            if timeoutMs < 0 { condition.wait() } else if !condition.wait(until: deadline) { break }
        }
        guard head < queue.count else { return nil }
        let message = queue[head]
        head += 1
        if head > 64 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
        return message
    }

    func close() {
        condition.lock()
        isClosed = true
        queue.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }
}

/// The ROUTER side of an in-process transport, for tests of coordinator and worker loops.
///
/// Same semantics as `ZMQMessageTransport` over ROUTER/DEALER with ZMQ_ROUTER_MANDATORY:
/// multipart messages, a peer ID per sender, sends to an unknown or closed peer throw
/// `peerUnreachable`, sends from a peer to a closed hub vanish. Frames are shared, not copied,
/// as with zero-copy sends. Each hub and peer may be used from its own thread.
public final class InMemoryHub: MessageTransport, @unchecked Sendable {
    /// The hub's name, e.g. "inproc://coordinator".
    public let endpoint: String
    let mailbox = Mailbox()
    private let lock = NSLock()
    private var peers: [PeerID: InMemoryPeer] = [:]
    private var nextAutomaticID: UInt32 = 0

    /// A hub named `endpoint`.
    public init(endpoint: String = "inproc://hub") { self.endpoint = endpoint }

    /// Connects a new peer (a DEALER); without `routingID` it gets one like libzmq's (0 + 4 bytes).
    public func connect(routingID: PeerID? = nil) -> InMemoryPeer {
        lock.lock()
        defer { lock.unlock() }
        let id = routingID ?? {
            nextAutomaticID += 1
            return PeerID(bytes: [0] + withUnsafeBytes(of: nextAutomaticID.bigEndian) { Array($0) })
        }()
        let peer = InMemoryPeer(id: id, hub: self)
        peers[id] = peer
        return peer
    }

    /// Delivers `frames` to `peer`; throws `peerUnreachable` if it is unknown or closed.
    public func send(_ frames: [Frame], to peer: PeerID?) throws {
        guard !mailbox.isClosed else { throw TransportError.closed(endpoint: endpoint) }
        guard let peer else {
            throw TransportError.invalidOption(name: "peer", value: "nil", reason: "a hub send needs a peer")
        }
        lock.lock()
        let target = peers[peer]
        lock.unlock()
        guard let target else { throw TransportError.peerUnreachable(peer: peer, endpoint: endpoint) }
        target.mailbox.push(nil, frames)
    }

    /// The next message from any peer, or nil after `timeoutMs`.
    public func receive(timeoutMs: Int) throws -> (peer: PeerID?, frames: [Frame])? {
        guard !mailbox.isClosed else { throw TransportError.closed(endpoint: endpoint) }
        return mailbox.pop(timeoutMs: timeoutMs)
    }

    /// Closes the hub; peers' later messages are dropped.
    public func close() { mailbox.close() }

    func remove(_ id: PeerID) {
        lock.lock()
        peers[id] = nil
        lock.unlock()
    }
}

/// The DEALER side of an in-process transport: talks to its hub only.
public final class InMemoryPeer: MessageTransport, @unchecked Sendable {
    /// This peer's ID as the hub sees it.
    public let id: PeerID
    let mailbox = Mailbox()
    private weak var hub: InMemoryHub?

    init(id: PeerID, hub: InMemoryHub) {
        self.id = id
        self.hub = hub
    }

    /// The hub's endpoint.
    public var endpoint: String { hub?.endpoint ?? "inproc://closed" }

    /// Sends to the hub (`peer` is ignored); dropped silently when the hub is gone, as a
    /// DEALER's queued messages are.
    public func send(_ frames: [Frame], to peer: PeerID? = nil) throws {
        guard !mailbox.isClosed else { throw TransportError.closed(endpoint: endpoint) }
        hub?.mailbox.push(id, frames)
    }

    /// The next message from the hub, or nil after `timeoutMs`.
    public func receive(timeoutMs: Int) throws -> (peer: PeerID?, frames: [Frame])? {
        guard !mailbox.isClosed else { throw TransportError.closed(endpoint: endpoint) }
        return mailbox.pop(timeoutMs: timeoutMs)
    }

    /// Disconnects from the hub: the hub's later sends to this peer throw `peerUnreachable`.
    public func close() {
        mailbox.close()
        hub?.remove(id)
    }
}
