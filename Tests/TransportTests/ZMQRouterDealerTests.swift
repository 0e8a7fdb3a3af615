import Foundation
import Testing
@testable import Transport
import WireProtocol

@Suite struct ZMQRouterDealerTests {
    /// Join, then an 8 MiB work message down and an 8 MiB gradient (two 4 MiB frames) up.
    func exchangeBigMessages(bind: String) throws {
        let context = try ZMQContext(ioThreads: 1)
        let router = try ZMQMessageTransport.router(context: context, bind: bind)
        let dealer = try ZMQMessageTransport.dealer(context: context, connect: router.endpoint,
                                                    options: [.routingID(PeerID("worker-1"))])
        defer { dealer.close(); router.close() }

        let join = Message.join(Join(workerName: "w1", buildVersion: "test", dataFingerprint: 9, pid: 1))
        try dealer.send(join, runID: 0)
        let joined = try #require(try router.receiveMessage(timeoutMs: 5000))
        #expect(joined.peer == PeerID("worker-1"))
        #expect(try joined.decoded.get().message == join)

        let floatCount = 2 << 20  // 8 MiB of fp32
        let work = Message.work(Work(step: 12, epoch: 0, stepInEpoch: 11, parameterVersion: 11, shards: [3],
                                     shardCount: 4, parameters: PayloadBuffer(floats: TransportTestSupport.floats(floatCount, seed: 2))))
        try router.send(work, runID: 77, to: joined.peer)
        let received = try #require(try dealer.receiveMessage(timeoutMs: 5000))
        #expect(received.peer == nil)
        let decodedWork = try received.decoded.get()
        #expect(decodedWork.runID == 77 && decodedWork.message == work)

        let gradient = TransportTestSupport.gradient(floatCount: floatCount)
        let frames = WireCodec.encode(gradient, runID: 77)
        #expect(frames.count == 3)
        try dealer.send(frames, to: nil)
        let back = try #require(try router.receiveMessage(timeoutMs: 5000))
        let decodedGradient = try back.decoded.get()
        #expect(decodedGradient.message == gradient)
        if case .gradient(let g) = decodedGradient.message {
            #expect(Array(g.payload.asFloats) == TransportTestSupport.floats(floatCount, seed: 0.5))
        }
    }

    @Test func bigMultiFrameMessagesCrossIPCIntact() throws {
        try exchangeBigMessages(bind: TransportTestSupport.ipcEndpoint())
    }

    @Test func bigMultiFrameMessagesCrossTCPIntact() throws {
        try exchangeBigMessages(bind: "tcp://127.0.0.1:*")
    }

    @Test func wildcardBindResolvesToARealPort() throws {
        let context = try ZMQContext()
        let router = try ZMQMessageTransport.router(context: context, bind: "tcp://127.0.0.1:*")
        defer { router.close() }
        let port = Int(router.endpoint.split(separator: ":").last ?? "")
        #expect(router.endpoint.hasPrefix("tcp://127.0.0.1:"))
        #expect((port ?? 0) > 0)
        #expect(try router.socket.lastEndpoint() == router.endpoint)
    }

    @Test func routerMandatoryMakesSendingToAnUnknownPeerFail() throws {
        let context = try ZMQContext()
        let router = try ZMQMessageTransport.router(context: context, bind: "tcp://127.0.0.1:*")
        defer { router.close() }
        let ghost = PeerID("nobody")
        #expect(throws: TransportError.peerUnreachable(peer: ghost, endpoint: router.endpoint)) {
            try router.send(.leave(Leave(reason: "x")), runID: 1, to: ghost)
        }
    }

    @Test func zeroCopyPayloadIsReleasedAfterItHasBeenSent() throws {
        let context = try ZMQContext()
        let router = try ZMQMessageTransport.router(context: context, bind: TransportTestSupport.ipcEndpoint())
        let dealer = try ZMQMessageTransport.dealer(context: context, connect: router.endpoint)
        defer { dealer.close(); router.close() }
        weak var sentBuffer: PayloadBuffer?
        do {
            let message = TransportTestSupport.gradient(floatCount: 100_000)
            if case .gradient(let g) = message { sentBuffer = g.payload }
            try dealer.send(message, runID: 1)
        }
        _ = try #require(try router.receiveMessage(timeoutMs: 5000))
        let deadline = Date(timeIntervalSinceNow: 2)
        while sentBuffer != nil && Date() < deadline { usleep(1000) }
        #expect(sentBuffer == nil)
    }

    @Test func pollReportsWhichSocketIsReadable() throws {
        let context = try ZMQContext()
        let router = try ZMQMessageTransport.router(context: context, bind: TransportTestSupport.ipcEndpoint())
        let dealer = try ZMQMessageTransport.dealer(context: context, connect: router.endpoint)
        defer { dealer.close(); router.close() }
        #expect(try ZMQ.poll([router.socket, dealer.socket], timeoutMs: 50) == [false, false])
        try dealer.send(.heartbeat(Heartbeat(sequence: 1, sentAtNanos: 2)), runID: 1)
        #expect(try ZMQ.poll([router.socket, dealer.socket], timeoutMs: 5000) == [true, false])
    }

    @Test func receiveTimesOutWithNil() throws {
        let context = try ZMQContext()
        let router = try ZMQMessageTransport.router(context: context, bind: TransportTestSupport.ipcEndpoint())
        defer { router.close() }
        let start = Date()
        #expect(try router.receive(timeoutMs: 100) == nil)
        #expect(Date().timeIntervalSince(start) >= 0.09)
    }

    @Test func usingAClosedSocketThrowsClosed() throws {
        let context = try ZMQContext()
        let router = try ZMQMessageTransport.router(context: context, bind: TransportTestSupport.ipcEndpoint())
        router.close()
        #expect(throws: TransportError.closed(endpoint: router.endpoint)) { try router.receive(timeoutMs: 0) }
    }

    @Test func bindErrorNamesTheEndpointAndTheReason() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .router)
        do {
            try socket.bind("tcp://256.1.1.1:5555")
            Issue.record("bind to an invalid address succeeded")
        } catch let error as TransportError {
            #expect(error.description.contains("tcp://256.1.1.1:5555"))
            #expect(error.description.contains("zmq_bind"))
        }
    }
}

