import WireProtocol

/// A message-passing endpoint: the one interface the coordinator and worker loops use.
///
/// Four members, as in ps-lite's van: `send`, `receive`, `close` and `endpoint`. A ROUTER-like
/// side (the coordinator) names a peer on every send and learns it on every receive; a
/// DEALER-like side (a worker) passes and gets `nil`. Implementations: `ZMQMessageTransport`
/// (libzmq) and `InMemoryHub`/`InMemoryPeer` (tests). Not thread-safe: one owner thread.
public protocol MessageTransport: AnyObject {
    /// Where this transport is bound or connected, for logs and error messages.
    var endpoint: String { get }
    /// Sends one multipart message; on the hub side `peer` is required and an unknown or
    /// disconnected peer throws `TransportError.peerUnreachable`.
    func send(_ frames: [Frame], to peer: PeerID?) throws
    /// The next multipart message and its sender, waiting at most `timeoutMs` (−1 forever);
    /// nil when the time ran out.
    func receive(timeoutMs: Int) throws -> (peer: PeerID?, frames: [Frame])?
    /// Closes the transport; later sends throw `TransportError.closed`.
    func close()
    /// The network address a peer's messages come from ("10.213.7.2" over tcp), when the
    /// transport knows one; nil over ipc and in memory.
    func address(of peer: PeerID) -> String?
    /// `peer` joined: it may have more in flight than a stranger (ZeroMQ's connection guard).
    func trust(_ peer: PeerID)
    /// Connections shut down for holding too much unfinished input since the last call, one line each.
    func takeGuardDrops() -> [String]
    /// Messages refused since the last call (a sealed one that failed to open), one line each.
    func takeRefusals() -> [String]
}

extension MessageTransport {
    public func address(of peer: PeerID) -> String? { nil }
    public func trust(_ peer: PeerID) {}
    public func takeGuardDrops() -> [String] { [] }
    public func takeRefusals() -> [String] { [] }
}

/// A received message: its sender and the decoded message, or why decoding failed.
public struct IncomingMessage: Sendable {
    /// The sender (nil on the worker side: there is only the coordinator).
    public var peer: PeerID?
    /// The run ID and message, or the `WireError` (the caller decides: reject, recompute, ignore).
    public var decoded: Result<(runID: UInt64, message: Message), WireError>
}

extension MessageTransport {
    /// Encodes `message` with `runID` and sends it, payloads split at `maxFrameBytes`.
    public func send(_ message: Message, runID: UInt64, to peer: PeerID? = nil,
                     maxFrameBytes: Int = FrameSplitter.defaultMaxFrameBytes) throws {
        try send(WireCodec.encode(message, runID: runID, maxFrameBytes: maxFrameBytes), to: peer)
    }

    /// Receives and decodes the next message; nil on timeout.
    public func receiveMessage(timeoutMs: Int) throws -> IncomingMessage? {
        guard let (peer, frames) = try receive(timeoutMs: timeoutMs) else { return nil }
        return IncomingMessage(peer: peer, decoded: Result { () throws(WireError) in try WireCodec.decode(frames: frames) })
    }
}
