#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Transport
import WireProtocol

// CURVE with a sealed bulk channel (docs/protocol.md "Sealed bulk channel").
//
// libzmq's CURVE encrypts every byte with XSalsa20-Poly1305 in its one I/O thread, with copies
// around it: about 1 GB/s here, and a cluster that moves parameters and gradients each step
// runs 2.4× slower under it. So CURVE carries only the handshake:
//
//  1. The peer connects its DEALER to the coordinator's CURVE ROUTER (the control socket) and
//     sends a hello with a random nonce; it sends nothing else there.
//  2. The coordinator draws a session: a 16-byte token and an AES-256-GCM key per direction,
//     and answers over CURVE (encrypted, from the key the peer was given) with the nonce, the
//     token, the keys and its bulk endpoint. A later hello from the same peer replaces it.
//  3. The peer connects a second DEALER, routing id = the token, to the bulk endpoint (a plain
//     ZeroMQ socket) and from then on sends every message there, sealed (`SealedSession`).
//  4. The coordinator opens what arrives on the bulk socket with the token's session, delivers
//     it as the control peer's, and sends to that peer sealed, over the bulk socket. A message
//     that fails to open is dropped and reported (`takeRefusals`); one under a token it has no
//     session for is dropped unanswered.
//  5. The peer starts again at 1 when its CURVE connection completes a new handshake (it
//     reconnected: to a restarted coordinator, say), and when an app message comes over CURVE
//     (the coordinator has no session for it any more; the message is delivered).
//
// With `--curve-bulk off` the coordinator answers the hello with "no bulk channel" and both
// sides keep everything on the CURVE socket, as before.

/// The coordinator's side: the CURVE ROUTER for handshakes and the plain bulk ROUTER.
package final class SealedServerTransport: MessageTransport {
    let control: ZMQMessageTransport
    /// nil: `--curve-bulk off`, everything on the control socket.
    let bulk: ZMQMessageTransport?

    struct Session {
        var peer: PeerID
        var channel: SealedSession
        var trusted = false
        var created: UInt64
    }

    var sessions: [PeerID: Session] = [:]
    var tokenOfPeer: [PeerID: PeerID] = [:]
    var refusals: [String] = []
    var created: UInt64 = 0
    /// Sessions handed out: hellos answered (a peer that seals again counts again).
    package private(set) var sessionsOpened = 0
    /// Sessions of peers that never joined go first when there are more than this.
    static let sessionLimit = 4096

    package init(control: ZMQMessageTransport, bulk: ZMQMessageTransport?) {
        self.control = control
        self.bulk = bulk
    }

    package var endpoint: String { control.endpoint }

    package func send(_ frames: [Frame], to peer: PeerID?) throws {
        if let bulk, let peer, let token = tokenOfPeer[peer], let session = sessions[token] {
            try bulk.send(try session.channel.seal(frames), to: token)
        } else {
            try control.send(frames, to: peer)
        }
    }

    package func receive(timeoutMs: Int) throws -> (peer: PeerID?, frames: [Frame])? {
        let deadline = monotonicNanos() &+ UInt64(max(timeoutMs, 0)) * 1_000_000
        while true {
            let waitMs = timeoutMs < 0 ? -1 : Int((deadline &- min(monotonicNanos(), deadline)) / 1_000_000)
            let ready = try ZMQ.poll([control.socket] + (bulk.map { [$0.socket] } ?? []), timeoutMs: waitMs)
            if ready[0], let (peer, frames) = try control.receive(timeoutMs: 0), let peer {
                if let nonce = SealHandshake.helloNonce(frames) {
                    answerHello(from: peer, nonce: nonce)
                } else {
                    return (peer, frames)
                }
            }
            if let bulk, ready.count > 1, ready[1], let (token, frames) = try bulk.receive(timeoutMs: 0), let token {
                if let opened = open(frames, from: token) { return opened }
            }
            if timeoutMs >= 0 && monotonicNanos() >= deadline { return nil }
        }
    }

    func answerHello(from peer: PeerID, nonce: [UInt8]) {
        guard let bulk else {
            try? control.send(SealHandshake.Reply(nonce: nonce, bulk: nil).frames, to: peer)
            return
        }
        let token = SealHandshake.newToken(), up = SealHandshake.newKey(), down = SealHandshake.newKey()
        // A joined peer that seals again (it reconnected) keeps its joined peer's limits.
        var trusted = false
        if let old = tokenOfPeer[peer] {
            trusted = sessions[old]?.trusted ?? false
            forget(old)
        }
        if sessions.count >= Self.sessionLimit, let oldest = sessions.min(by: { ($0.value.trusted ? 1 : 0, $0.value.created) < ($1.value.trusted ? 1 : 0, $1.value.created) }) {
            forget(oldest.key)
        }
        created += 1
        sessionsOpened += 1
        let id = PeerID(bytes: token)
        sessions[id] = Session(peer: peer, channel: SealedSession(sendKey: down, receiveKey: up), trusted: trusted, created: created)
        tokenOfPeer[peer] = id
        if trusted { bulk.trust(id) }
        let reply = SealHandshake.Reply(nonce: nonce, bulk: (token, up, down, bulk.endpoint))
        try? control.send(reply.frames, to: peer)
    }

    /// Drops a session: its token is a stranger's again.
    func forget(_ token: PeerID) {
        guard let session = sessions.removeValue(forKey: token) else { return }
        if tokenOfPeer[session.peer] == token { tokenOfPeer[session.peer] = nil }
        bulk?.socket.untrust(token)
    }

    func open(_ frames: [Frame], from token: PeerID) -> (peer: PeerID?, frames: [Frame])? {
        // No session: a stranger (answering it would only let it queue replies it never reads).
        guard let session = sessions[token] else { return nil }
        do {
            return (session.peer, try session.channel.open(frames))
        } catch {
            refusals.append("a sealed message from \(session.peer): \(error)")
            return nil
        }
    }

    package func close() {
        if let bulk {
            let path = bulk.endpoint.hasPrefix("ipc://") ? String(bulk.endpoint.dropFirst(6)) : nil
            bulk.close()
            if let path { unlink(path) }
        }
        control.close()
    }

    package func address(of peer: PeerID) -> String? { control.address(of: peer) }

    package func trust(_ peer: PeerID) {
        control.trust(peer)
        if let token = tokenOfPeer[peer] {
            sessions[token]?.trusted = true
            bulk?.trust(token)
        }
    }

    package func takeGuardDrops() -> [String] { control.takeGuardDrops() + (bulk?.takeGuardDrops() ?? []) }

    package func takeRefusals() -> [String] {
        defer { refusals = [] }
        return refusals
    }
}

/// A peer's side: hello over its CURVE DEALER, then everything sealed over a bulk DEALER.
package final class SealedClientTransport: MessageTransport {
    let control: ZMQMessageTransport
    /// Makes the bulk DEALER: endpoint, routing id.
    let makeBulk: (String, PeerID) throws -> ZMQMessageTransport
    /// How long one send may wait for the handshake (the control socket's send timeout).
    let sendWaitMs: Int

    enum Phase {
        case idle
        case waiting(nonce: [UInt8], since: UInt64)
        case sealed(SealedSession, bulk: ZMQMessageTransport)
        /// The coordinator has no bulk channel: everything on the control socket.
        case plain
    }

    var phase = Phase.idle
    var refusals: [String] = []
    /// App messages that came over CURVE while sealing, delivered by the next receive.
    var pending: [[Frame]] = []
    /// A hello unanswered this long is sent again (the coordinator may have restarted).
    static let resendNanos: UInt64 = 1_000_000_000

    package init(control: ZMQMessageTransport, sendWaitMs: Int, makeBulk: @escaping (String, PeerID) throws -> ZMQMessageTransport) throws {
        self.control = control
        self.sendWaitMs = sendWaitMs
        self.makeBulk = makeBulk
        try control.socket.watchHandshakes()
    }

    /// Back to the start (the next send says hello again): the CURVE connection was made anew.
    func unseal() {
        if case let .sealed(_, bulk) = phase { bulk.close() }
        phase = .idle
    }

    /// A message on the control socket: a late reply to an earlier hello is ignored; anything
    /// else is the coordinator talking over CURVE because it has no session for this peer (it
    /// lost it): kept for the app, and the peer seals again.
    func controlMessage(_ frames: [Frame]) {
        guard SealHandshake.Reply(frames) == nil else { return }
        pending.append(frames)
        if case .sealed = phase { unseal() }
    }

    package var endpoint: String { control.endpoint }

    package func send(_ frames: [Frame], to peer: PeerID?) throws {
        if case .plain = phase { return try control.send(frames, to: nil) }
        if control.socket.takeHandshakes() > 0 { unseal() }
        if case .sealed = phase {} else { try handshake(waitMs: sendWaitMs) }
        switch phase {
        case .plain: try control.send(frames, to: nil)
        case let .sealed(session, bulk): try bulk.send(try session.seal(frames), to: nil)
        default: throw TransportError.wouldBlock(endpoint: control.endpoint)
        }
    }

    package func receive(timeoutMs: Int) throws -> (peer: PeerID?, frames: [Frame])? {
        switch phase {
        case .plain:
            guard let received = try control.receive(timeoutMs: timeoutMs), SealHandshake.Reply(received.frames) == nil else { return nil }
            return received
        case let .sealed(session, bulk):
            if !pending.isEmpty { return (nil, pending.removeFirst()) }
            if control.socket.takeHandshakes() > 0 {
                unseal()
                return nil
            }
            let ready = try ZMQ.poll([bulk.socket, control.socket], timeoutMs: timeoutMs)
            if ready[1], let (_, frames) = try control.receive(timeoutMs: 0) {
                controlMessage(frames)
                return pending.isEmpty ? nil : (nil, pending.removeFirst())
            }
            guard ready[0], let (_, frames) = try bulk.receive(timeoutMs: 0) else { return nil }
            do { return (nil, try session.open(frames)) } catch {
                refusals.append("dropped a sealed message from the coordinator: \(error)")
                return nil
            }
        case .idle, .waiting:
            if pending.isEmpty { try handshake(waitMs: max(timeoutMs, 0)) }
            return pending.isEmpty ? nil : (nil, pending.removeFirst())
        }
    }

    /// Sends a hello (again, when the last is a second old) and waits up to `waitMs` for the
    /// reply that echoes its nonce; sets up the bulk socket when one comes.
    func handshake(waitMs: Int) throws {
        let deadline = monotonicNanos() &+ UInt64(waitMs) * 1_000_000
        while true {
            let now = monotonicNanos()
            switch phase {
            case .idle:
                let nonce = SealHandshake.newToken()
                // No connection yet (the coordinator is not up, or CURVE keeps failing): later.
                do { try control.send(SealHandshake.hello(nonce: nonce), to: nil) } catch TransportError.wouldBlock { return }
                phase = .waiting(nonce: nonce, since: now)
            case let .waiting(_, since) where now &- since >= Self.resendNanos:
                phase = .idle
                continue
            default:
                break
            }
            guard case let .waiting(nonce, since) = phase else { return }
            let waitNanos = min(deadline &- min(now, deadline), Self.resendNanos &- (now &- since))
            if let (_, frames) = try control.receive(timeoutMs: Int(waitNanos / 1_000_000)) {
                guard let reply = SealHandshake.Reply(frames) else {
                    controlMessage(frames)
                    continue
                }
                guard reply.nonce == nonce else { continue }
                // The handshakes so far led to this reply: only a later one is a reconnection.
                _ = control.socket.takeHandshakes()
                guard let bulk = reply.bulk else {
                    phase = .plain
                    return
                }
                let socket = try makeBulk(Self.bulkEndpoint(control: control.endpoint, advertised: bulk.endpoint), PeerID(bytes: bulk.token))
                phase = .sealed(SealedSession(sendKey: bulk.peerToCoordinator, receiveKey: bulk.coordinatorToPeer), bulk: socket)
                return
            }
            if monotonicNanos() >= deadline { return }
        }
    }

    /// The bulk endpoint to connect to: the advertised one over ipc; over tcp its port on the
    /// host this peer reached the control socket at (the coordinator may have bound 0.0.0.0).
    static func bulkEndpoint(control: String, advertised: String) -> String {
        guard control.hasPrefix("tcp://"), advertised.hasPrefix("tcp://"),
              let controlColon = control.lastIndex(of: ":"), let advertisedColon = advertised.lastIndex(of: ":") else { return advertised }
        return String(control[..<controlColon]) + String(advertised[advertisedColon...])
    }

    package func close() {
        if case let .sealed(_, bulk) = phase { bulk.close() }
        control.close()
    }

    package func takeRefusals() -> [String] {
        defer { refusals = [] }
        return refusals
    }
}
