#if canImport(Glibc)
import Glibc
#endif
@testable import Cluster
import Foundation
import Testing
import Transport
import WireProtocol

/// CURVE for the handshake, AES-256-GCM for the messages: real sockets over loopback.
@Suite struct SealedTransportTests {
    static let payload = (0..<300_000).map { Float($0 % 977) * 0.25 }

    static func gradient(_ seed: Double = 0) -> Message {
        .gradient(Gradient(step: 12, shard: 3, exampleCount: 128, parameterVersion: 11, lossSum: 40.5 + seed, correct: 100,
                           payload: PayloadBuffer(floats: payload)))
    }

    /// A coordinator bound over tcp loopback with a fresh key pair and a worker connected to it.
    func pair(bulk: ClusterSocket.CurveBulk = .port(0), endpoint: String = "tcp://127.0.0.1:*",
              keys: CurveKeys? = nil) throws -> (server: MessageTransport, client: MessageTransport, keys: CurveKeys, owners: [AnyObject]) {
        let keys = try keys ?? CurveKeys.generate()
        let (serverContext, server) = try ClusterSocket.bindCoordinator(endpoint: endpoint, heartbeatMs: 100, timeoutMs: 2_000,
                                                                        curve: keys, curveBulk: bulk)
        let (clientContext, client) = try ClusterSocket.connectWorker(name: "test", endpoint: server.endpoint, identityPrefix: "t",
                                                                      heartbeatMs: 100, timeoutMs: 2_000, curveServerKey: keys.publicKey)
        return (server, client, keys, [serverContext, clientContext])
    }

    /// Sends until the server hears it (the first sends may go out before the handshake ends).
    func deliver(_ message: Message, from client: MessageTransport, to server: MessageTransport,
                 serving: [MessageTransport] = []) throws -> IncomingMessage? {
        for _ in 0..<50 {
            try? client.send(message, runID: 7)
            for _ in 0..<5 {
                _ = try client.receive(timeoutMs: 0)
                if let got = try server.receiveMessage(timeoutMs: 20) { return got }
            }
        }
        return nil
    }

    @Test func aWorkerAndItsCoordinatorTalkSealedOverTheBulkChannel() throws {
        let (server, client, _, owners) = try pair()
        defer { client.close(); server.close(); withExtendedLifetime(owners) {} }
        // A join-sized message first; then the coordinator trusts the peer with more (the
        // connection guard cuts a stranger off at 64 KiB, on the bulk socket as on the control one).
        let hello = try #require(try deliver(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 1)), from: client, to: server))
        let peer = try #require(hello.peer)
        server.trust(peer)
        let got = try #require(try deliver(Self.gradient(), from: client, to: server))
        #expect(got.peer == peer)
        #expect(try got.decoded.get().message == Self.gradient())
        #expect(peer.description.hasPrefix("t\(getpid())-"), "the control socket's routing id names the peer, not the token")
        let sealedServer = try #require(server as? SealedServerTransport)
        #expect(sealedServer.tokenOfPeer[peer] != nil)
        guard case .sealed = try #require(client as? SealedClientTransport).phase else {
            Issue.record("the worker is not on the bulk channel")
            return
        }
        try server.send(.leave(Leave(reason: "done")), runID: 7, to: peer)
        var reply: IncomingMessage?
        for _ in 0..<100 where reply == nil { reply = try client.receiveMessage(timeoutMs: 20) }
        #expect(try reply?.decoded.get().message == .leave(Leave(reason: "done")))
    }

    @Test func withBulkOffEverythingStaysOnTheCurveSocket() throws {
        let (server, client, _, owners) = try pair(bulk: .off)
        defer { client.close(); server.close(); withExtendedLifetime(owners) {} }
        let hello = try #require(try deliver(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 1)), from: client, to: server))
        server.trust(try #require(hello.peer))
        let got = try #require(try deliver(Self.gradient(), from: client, to: server))
        #expect(try got.decoded.get().message == Self.gradient())
        guard case .plain = try #require(client as? SealedClientTransport).phase else {
            Issue.record("the worker did not fall back to the CURVE socket")
            return
        }
        #expect((server as? SealedServerTransport)?.bulk == nil)
    }

    @Test func aSealedMessageHidesItsPayloadAndRefusesChangesReplaysAndMixedFrames() throws {
        let up = SealHandshake.newKey(), down = SealHandshake.newKey()
        let sender = SealedSession(sendKey: up, receiveKey: down), receiver = SealedSession(sendKey: down, receiveKey: up)
        let frames = try WireCodec.encode(Self.gradient(), runID: 7)
        let sealed = try sender.seal(frames)
        #expect(sealed.count == frames.count + 1)
        // Ciphertext, not the floats: the plain payload's bytes appear nowhere.
        let plainPayload = frames.last!.byteArray
        #expect(!sealed.contains { $0.byteArray == plainPayload })
        #expect(!sealed.last!.byteArray.starts(with: plainPayload.prefix(64)))

        // One bit changed in the payload's ciphertext: refused.
        var tampered = sealed
        let copy = PayloadBuffer(copying: sealed.last!.bytes)
        copy.mutableBytes[1000] ^= 0x10
        tampered[tampered.count - 1] = Frame(buffer: copy)
        #expect(throws: SealedSession.Refusal.self) { try receiver.open(tampered) }
        // A frame dropped: refused.
        #expect(throws: SealedSession.Refusal.self) { try receiver.open(Array(sealed.dropLast())) }
        // The real one opens, to the same frames; then it is a replay.
        let opened = try receiver.open(sealed)
        #expect(opened.map(\.byteArray) == frames.map(\.byteArray))
        #expect(try WireCodec.decode(frames: opened).message == Self.gradient())
        #expect(throws: SealedSession.Refusal.self) { try receiver.open(sealed) }
        // The next message's header with this message's frames (same counter-free bodies): refused.
        let next = try sender.seal(frames)
        #expect(throws: SealedSession.Refusal.self) { try receiver.open([next[0]] + sealed.dropFirst()) }
        #expect(try receiver.open(next).map(\.byteArray) == frames.map(\.byteArray))
        // A header with no frames (nothing authenticated) that would move the counter far ahead: refused,
        // and the next real message still opens.
        var empty = SealedSession.magic
        withUnsafeBytes(of: UInt64.max.littleEndian) { empty += $0 }
        empty += [0, 0, 0, 0]
        #expect(throws: SealedSession.Refusal.self) { try receiver.open([Frame(bytes: empty)]) }
        let third = try sender.seal(frames)
        #expect(try receiver.open(third).map(\.byteArray) == frames.map(\.byteArray))
        // Sealed the other way (the receiver's own send key): refused.
        #expect(throws: SealedSession.Refusal.self) { try receiver.open(try receiver.seal(frames)) }
    }

    @Test func aStrangerOnTheBulkPortIsNotHeardAndTheWorkerStillIs() throws {
        let (server, client, _, owners) = try pair()
        defer { client.close(); server.close(); withExtendedLifetime(owners) {} }
        let hello = try #require(try deliver(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 1)), from: client, to: server))
        server.trust(try #require(hello.peer))
        let bulkEndpoint = try #require((server as? SealedServerTransport)?.bulk?.endpoint)
        let context = try ZMQContext()
        // A stranger that guessed nothing: plain wire messages, and a CHSL header it made up.
        let stranger = try ZMQMessageTransport.dealer(context: context, connect: bulkEndpoint, options: [.linger(0), .routingID(PeerID("stranger"))])
        defer { stranger.close() }
        let forger = SealedSession(sendKey: SealHandshake.newKey(), receiveKey: SealHandshake.newKey())
        let small = Message.heartbeat(Heartbeat(sequence: 9, sentAtNanos: 9))
        for _ in 0..<3 {
            try stranger.send(small, runID: 7)
            try stranger.send(try forger.seal(try WireCodec.encode(small, runID: 7)), to: nil)
        }
        for _ in 0..<20 { #expect(try server.receive(timeoutMs: 10) == nil) }
        // And it hears nothing back (answers to strangers would be a queue they never read).
        #expect(try stranger.receive(timeoutMs: 300) == nil)
        let got = try #require(try deliver(Self.gradient(1), from: client, to: server))
        #expect(try got.decoded.get().message == Self.gradient(1))
    }

    @Test func aRestartedCoordinatorMakesItsWorkersSealAgain() throws {
        let keys = try CurveKeys.generate()
        let port = try Self.freePortPair()
        let endpoint = "tcp://127.0.0.1:\(port)"
        var (server, client, _, owners) = try pair(bulk: .nextPort, endpoint: endpoint, keys: keys)
        defer { client.close(); withExtendedLifetime(owners) {} }
        let first = try #require(try deliver(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 1)), from: client, to: server))
        server.close()
        // libzmq releases the ports in its I/O thread, soon after close.
        var bound: (ZMQContext, MessageTransport)?
        for _ in 0..<300 where bound == nil {
            bound = try? ClusterSocket.bindCoordinator(endpoint: endpoint, heartbeatMs: 100, timeoutMs: 2_000, curve: keys, curveBulk: .nextPort)
            if bound == nil { usleep(10_000) }
        }
        let (context, restarted) = try #require(bound)
        server = restarted
        owners.append(context)
        defer { restarted.close() }
        // The worker's CURVE connection makes a new handshake with the restarted coordinator, so it seals again.
        let again = try #require(try deliver(.heartbeat(Heartbeat(sequence: 2, sentAtNanos: 2)), from: client, to: restarted))
        #expect(again.peer == first.peer)
        #expect(try again.decoded.get().message == .heartbeat(Heartbeat(sequence: 2, sentAtNanos: 2)))
    }

    /// A worker started before its coordinator: sends fail as "would block" (the host retries),
    /// receives come back empty within about a send timeout, and once the coordinator binds the
    /// worker seals and is heard.
    @Test func aWorkerStartedBeforeItsCoordinatorWaitsWithoutErrorsAndThenSeals() throws {
        let keys = try CurveKeys.generate()
        let endpoint = "tcp://127.0.0.1:\(try Self.freePortPair())"
        let (clientContext, client) = try ClusterSocket.connectWorker(name: "test", endpoint: endpoint, identityPrefix: "t",
                                                                      heartbeatMs: 100, timeoutMs: 2_000, curveServerKey: keys.publicKey)
        defer { client.close(); withExtendedLifetime(clientContext) {} }
        let started = Date()
        #expect(throws: TransportError.self) { try client.send(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 1)), runID: 7) }
        for _ in 0..<3 { #expect(try client.receive(timeoutMs: 50) == nil) }
        #expect(Date().timeIntervalSince(started) < 5, "waiting for an absent coordinator must not block for long")
        let (serverContext, server) = try ClusterSocket.bindCoordinator(endpoint: endpoint, heartbeatMs: 100, timeoutMs: 2_000,
                                                                        curve: keys, curveBulk: .nextPort)
        defer { server.close(); withExtendedLifetime(serverContext) {} }
        let got = try #require(try deliver(.heartbeat(Heartbeat(sequence: 2, sentAtNanos: 2)), from: client, to: server))
        #expect(try got.decoded.get().message == .heartbeat(Heartbeat(sequence: 2, sentAtNanos: 2)))
    }

    /// A joined worker that seals again keeps its joined limits (a big result still gets through
    /// the connection guard); and a coordinator that lost the session talks over CURVE, which the
    /// worker hears and answers by sealing again.
    @Test func sealingAgainKeepsTrustAndALostSessionFallsBackToCurve() throws {
        let (server, client, _, owners) = try pair()
        defer { client.close(); server.close(); withExtendedLifetime(owners) {} }
        let sealedServer = try #require(server as? SealedServerTransport), sealedClient = try #require(client as? SealedClientTransport)
        let hello = try #require(try deliver(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 1)), from: client, to: server))
        let peer = try #require(hello.peer)
        server.trust(peer)
        let first = try #require(sealedServer.tokenOfPeer[peer])
        sealedClient.unseal()  // as after a reconnection
        let big = try #require(try deliver(Self.gradient(2), from: client, to: server))
        #expect(try big.decoded.get().message == Self.gradient(2))
        let second = try #require(sealedServer.tokenOfPeer[peer])
        #expect(second != first && sealedServer.sessions[first] == nil && sealedServer.sessions[second]?.trusted == true)

        sealedServer.forget(second)
        try server.send(.leave(Leave(reason: "over CURVE")), runID: 7, to: peer)
        var reply: IncomingMessage?
        for _ in 0..<100 where reply == nil { reply = try client.receiveMessage(timeoutMs: 20) }
        #expect(try reply?.decoded.get().message == .leave(Leave(reason: "over CURVE")))
        guard case .idle = sealedClient.phase else {
            Issue.record("the worker did not start sealing again")
            return
        }
        let again = try #require(try deliver(.heartbeat(Heartbeat(sequence: 3, sentAtNanos: 3)), from: client, to: server))
        #expect(again.peer == peer && sealedServer.tokenOfPeer[peer] != nil)
    }

    @Test func curveBulkParsesItsValuesAndNamesABadOne() throws {
        #expect(try ClusterSocket.CurveBulk(parsing: "next") == .nextPort)
        #expect(try ClusterSocket.CurveBulk(parsing: "off") == .off)
        #expect(try ClusterSocket.CurveBulk(parsing: "any") == .port(0))
        #expect(try ClusterSocket.CurveBulk(parsing: "6000") == .port(6000))
        #expect(throws: RuntimeError.self) { try ClusterSocket.CurveBulk(parsing: "70000") }
        #expect(try ClusterSocket.CurveBulk.nextPort.endpoint(beside: "tcp://10.0.0.1:5555") == "tcp://10.0.0.1:5556")
        #expect(try ClusterSocket.CurveBulk.port(0).endpoint(beside: "tcp://10.0.0.1:5555") == "tcp://10.0.0.1:*")
        #expect(try ClusterSocket.CurveBulk.nextPort.endpoint(beside: "tcp://127.0.0.1:41234", requested: "tcp://127.0.0.1:*") == "tcp://127.0.0.1:*")
        #expect(try ClusterSocket.CurveBulk.nextPort.endpoint(beside: "ipc:///tmp/chorus-1.sock") == "ipc:///tmp/chorus-1-bulk.sock")
        #expect(try ClusterSocket.CurveBulk.off.endpoint(beside: "tcp://10.0.0.1:5555") == nil)
        #expect(throws: RuntimeError.self) { try ClusterSocket.CurveBulk.nextPort.endpoint(beside: "tcp://10.0.0.1:65535") }
        #expect(SealedClientTransport.bulkEndpoint(control: "tcp://10.0.0.1:5555", advertised: "tcp://0.0.0.0:5556") == "tcp://10.0.0.1:5556")
    }

    /// A port P with P + 1 free too (bound and released).
    static func freePortPair() throws -> Int {
        for _ in 0..<20 {
            let context = try ZMQContext()
            let probe = try ZMQMessageTransport.router(context: context, bind: "tcp://127.0.0.1:*")
            let port = Int(probe.endpoint.split(separator: ":").last!)!
            probe.close()
            guard port < 65535, let next = try? ZMQMessageTransport.router(context: context, bind: "tcp://127.0.0.1:\(port + 1)") else { continue }
            next.close()
            return port
        }
        throw RuntimeError.cluster("no free pair of ports")
    }
}
