import Foundation
import Testing
@testable import Transport
import WireProtocol

/// The coordinator's defences: the frame size limit and CURVE authentication.
@Suite struct ZMQGuardTests {
    @Test func frameOverMaxMessageSizeIsNeverDeliveredAndTheRouterKeepsWorking() throws {
        let context = try ZMQContext()
        let router = try ZMQMessageTransport.router(context: context, bind: "tcp://127.0.0.1:*",
                                                    options: [.maxMessageSize(1 << 20)])
        let greedy = try ZMQMessageTransport.dealer(context: context, connect: router.endpoint,
                                                    options: [.routingID(PeerID("greedy"))])
        let modest = try ZMQMessageTransport.dealer(context: context, connect: router.endpoint,
                                                    options: [.routingID(PeerID("modest"))])
        defer { greedy.close(); modest.close(); router.close() }

        // One 2 MiB payload frame, twice the limit.
        try greedy.send(TransportTestSupport.gradient(floatCount: 512 << 10), runID: 1, maxFrameBytes: 8 << 20)
        #expect(try router.receive(timeoutMs: 1000) == nil)

        try modest.send(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 1)), runID: 1)
        let delivered = try #require(try router.receiveMessage(timeoutMs: 5000))
        #expect(delivered.peer == PeerID("modest"))

        // The greedy dealer was disconnected; it reconnects, and its next small message arrives
        // instead of the dropped big one.
        try greedy.send(.heartbeat(Heartbeat(sequence: 2, sentAtNanos: 2)), runID: 1)
        let later = try #require(try router.receiveMessage(timeoutMs: 5000))
        #expect(later.peer == PeerID("greedy"))
        #expect(try later.decoded.get().message == .heartbeat(Heartbeat(sequence: 2, sentAtNanos: 2)))
    }

    @Test func curveClientWithTheServerKeyTalks() throws {
        let server = try ZMQ.curveKeypair()
        let client = try ZMQ.curveKeypair()
        let (router, dealer) = try curvePair(server: server, client: client, expectedServerKey: server.public)
        defer { dealer.close(); router.close() }
        try dealer.send(.heartbeat(Heartbeat(sequence: 5, sentAtNanos: 6)), runID: 1)
        let received = try #require(try router.receiveMessage(timeoutMs: 5000))
        try router.send(.leave(Leave(reason: "ok")), runID: 1, to: received.peer)
        let reply = try #require(try dealer.receiveMessage(timeoutMs: 5000))
        #expect(try reply.decoded.get().message == .leave(Leave(reason: "ok")))
    }

    @Test func curveClientWithAWrongServerKeyIsNotHeard() throws {
        let server = try ZMQ.curveKeypair()
        let impostor = try ZMQ.curveKeypair()
        let client = try ZMQ.curveKeypair()
        let (router, dealer) = try curvePair(server: server, client: client, expectedServerKey: impostor.public)
        defer { dealer.close(); router.close() }
        try dealer.send(.heartbeat(Heartbeat(sequence: 5, sentAtNanos: 6)), runID: 1)
        #expect(try router.receive(timeoutMs: 1000) == nil)
    }

    @Test func plainClientIsNotHeardByACurveServer() throws {
        let server = try ZMQ.curveKeypair()
        let context = try ZMQContext()
        let router = try ZMQMessageTransport.router(
            context: context, bind: "tcp://127.0.0.1:*",
            options: [.curveServer(true), .curveSecretKey(server.secret)])
        let dealer = try ZMQMessageTransport.dealer(context: context, connect: router.endpoint)
        defer { dealer.close(); router.close() }
        try dealer.send(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 1)), runID: 1)
        #expect(try router.receive(timeoutMs: 1000) == nil)
    }

    @Test func curveKeypairIsTwoDistinctZ85Keys() throws {
        #expect(ZMQ.hasCurve)
        let keys = try ZMQ.curveKeypair()
        #expect(keys.public.utf8.count == 40 && keys.secret.utf8.count == 40)
        #expect(keys.public != keys.secret)
    }

    @Test func malformedCurveKeyIsRejectedWithItsOptionName() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .dealer)
        #expect(throws: TransportError.self) { try socket.set(.curveServerKey("short")) }
        do { try socket.set(.curveServerKey("short")) } catch {
            #expect("\(error)".contains("ZMQ_CURVE_SERVERKEY"))
        }
    }

    @Test func libzmqVersionIsReported() {
        #expect(ZMQ.version.split(separator: ".").count == 3)
        #expect(ZMQ.version.hasPrefix("4."))
    }

    private func curvePair(server: (public: String, secret: String), client: (public: String, secret: String),
                           expectedServerKey: String) throws -> (ZMQMessageTransport, ZMQMessageTransport) {
        let context = try ZMQContext()
        let router = try ZMQMessageTransport.router(
            context: context, bind: "tcp://127.0.0.1:*",
            options: [.curveServer(true), .curveSecretKey(server.secret)])
        let dealer = try ZMQMessageTransport.dealer(
            context: context, connect: router.endpoint,
            options: [.curveServerKey(expectedServerKey), .curvePublicKey(client.public),
                      .curveSecretKey(client.secret)])
        return (router, dealer)
    }
}
