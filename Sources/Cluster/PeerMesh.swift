import Foundation
import Transport
import WireProtocol

/// The chunk owners' data plane between host agents (issue 12, docs/coordination.md "Chunk
/// owners"): each agent binds one ROUTER, its peer endpoint, and connects one DEALER to every
/// other agent's, with routing ID `p<id>`. A message to agent X goes out on the DEALER to X;
/// everything from the others comes in on the ROUTER, and the routing ID says who sent it.
///
/// Only `chunk` messages of this run from a peer in the table are handed on. Anything else —
/// garbage, another run's chunks, another kind, a sender not in the table — is refused with a
/// line saying why (`takeRefusals`), never thrown: a confused or hostile peer cannot stop an
/// agent. Bytes in and out are counted (frames as sent, headers included) for the run's
/// `cluster.max_host_bytes_per_step`.
public final class PeerMesh {
    /// This agent's id and the run (an agent learns both at its welcome, after it bound the socket;
    /// set them before `connect`).
    public var id: UInt32
    public var runID: UInt64
    let context: ZMQContext
    let inbox: ZMQMessageTransport
    var outboxes: [UInt32: ZMQMessageTransport] = [:]
    var peerEndpoints: [UInt32: String] = [:]
    var refusals: [String] = []
    /// Bytes sent to and received from peers since the start.
    public private(set) var bytesSent: UInt64 = 0
    public private(set) var bytesReceived: UInt64 = 0

    /// Binds `endpoint` (tcp://HOST:PORT, port 0 or * for any free one; or ipc://PATH).
    public init(id: UInt32, runID: UInt64, bind endpoint: String, heartbeatMs: Int = 1000, timeoutMs: Int = 10_000) throws {
        self.id = id
        self.runID = runID
        context = try ZMQContext(ioThreads: 1)
        let bindTo = endpoint.hasSuffix(":0") ? String(endpoint.dropLast()) + "*" : endpoint
        do {
            inbox = try ZMQMessageTransport.router(context: context, bind: bindTo,
                                                   options: [.linger(0), .heartbeatInterval(Int32(heartbeatMs)), .heartbeatTimeout(Int32(timeoutMs))])
        } catch {
            throw RuntimeError.cluster("cannot bind the peer endpoint \(endpoint): \(error); is another process using it?")
        }
    }

    deinit {
        for outbox in outboxes.values { outbox.close() }
        inbox.close()
    }

    /// The ROUTER the peers' messages come in on (to poll beside another socket).
    public var inboxSocket: ZMQSocket { inbox.socket }

    /// The bound endpoint, port resolved: what the other agents connect to.
    public var endpoint: String { inbox.endpoint }

    /// Connects to `peers` (id → endpoint; this agent's own entry is skipped); peers no longer
    /// listed are disconnected, peers whose endpoint changed are reconnected.
    public func connect(peers: [UInt32: String]) throws {
        for (peer, outbox) in outboxes where peers[peer] != peerEndpoints[peer] || peers[peer] == nil {
            outbox.close()
            outboxes[peer] = nil
            peerEndpoints[peer] = nil
        }
        for (peer, endpoint) in peers where peer != id && outboxes[peer] == nil {
            do {
                outboxes[peer] = try ZMQMessageTransport.dealer(context: context, connect: endpoint,
                                                                options: [.linger(0), .routingID(PeerID("p\(id)"))])
            } catch {
                throw RuntimeError.cluster("cannot connect to agent \(peer)'s peer endpoint \(endpoint): \(error)")
            }
            peerEndpoints[peer] = endpoint
        }
    }

    /// The peers connected to, ascending.
    public var peers: [UInt32] { outboxes.keys.sorted() }

    /// Sends `chunk` to agent `peer`.
    public func send(_ chunk: ChunkData, to peer: UInt32) throws {
        guard let outbox = outboxes[peer] else { throw RuntimeError.cluster("agent \(peer) is not a peer of agent \(id)") }
        let frames = WireCodec.encode(.chunk(chunk), runID: runID)
        bytesSent += UInt64(frames.reduce(0) { $0 + $1.count })
        try outbox.send(frames, to: nil)
    }

    /// The next chunk message from a peer, waiting at most `timeoutMs`; nil when none came.
    /// Refused messages are skipped (see the type's comment) and do not end the wait early.
    public func receive(timeoutMs: Int) throws -> (from: UInt32, chunk: ChunkData)? {
        var wait = timeoutMs
        while let (peer, frames) = try inbox.receive(timeoutMs: wait) {
            wait = 0
            bytesReceived += UInt64(frames.reduce(0) { $0 + $1.count })
            let name = peer.map { String(decoding: $0.bytes, as: UTF8.self) } ?? "?"
            guard name.hasPrefix("p"), let sender = UInt32(name.dropFirst()), peerEndpoints[sender] != nil || sender == id else {
                refuse("a message from \(name), not an agent of this run's table")
                continue
            }
            let decoded: (runID: UInt64, message: Message)
            do { decoded = try WireCodec.decode(frames: frames) } catch {
                refuse("agent \(sender)'s message: \(error)")
                continue
            }
            guard decoded.runID == runID else {
                refuse(String(format: "agent \(sender)'s message of run %016llx (this run is %016llx)", decoded.runID, runID))
                continue
            }
            guard case .chunk(let chunk) = decoded.message else {
                refuse("agent \(sender) sent a \(decoded.message.kind) message on the peer socket")
                continue
            }
            return (sender, chunk)
        }
        return nil
    }

    func refuse(_ reason: String) {
        if refusals.count < 1000 { refusals.append(reason) }
    }

    /// Messages refused since the last call, one line each.
    public func takeRefusals() -> [String] {
        defer { refusals.removeAll() }
        return refusals
    }
}
