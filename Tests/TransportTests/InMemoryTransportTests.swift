import Foundation
import Testing
import Transport
import WireProtocol

@Suite struct InMemoryTransportTests {
    @Test func peerMessagesReachTheHubWithTheirPeerID() throws {
        let hub = InMemoryHub()
        let peer = hub.connect(routingID: PeerID("w0"))
        let message = TransportTestSupport.gradient(floatCount: 1000)
        try peer.send(message, runID: 3)
        let received = try #require(try hub.receiveMessage(timeoutMs: 1000))
        #expect(received.peer == PeerID("w0"))
        #expect(try received.decoded.get().message == message)
    }

    @Test func hubRepliesReachOnlyTheAddressedPeer() throws {
        let hub = InMemoryHub()
        let first = hub.connect()
        let second = hub.connect()
        #expect(first.id != second.id)
        try hub.send(.leave(Leave(reason: "bye")), runID: 1, to: second.id)
        #expect(try first.receive(timeoutMs: 50) == nil)
        let received = try #require(try second.receiveMessage(timeoutMs: 1000))
        #expect(received.peer == nil)
        #expect(try received.decoded.get().message == .leave(Leave(reason: "bye")))
    }

    @Test func sendingToAnUnknownOrClosedPeerFails() throws {
        let hub = InMemoryHub()
        let peer = hub.connect(routingID: PeerID("w1"))
        peer.close()
        #expect(throws: TransportError.peerUnreachable(peer: PeerID("w1"), endpoint: hub.endpoint)) {
            try hub.send(.leave(Leave(reason: "x")), runID: 1, to: PeerID("w1"))
        }
        #expect(throws: TransportError.self) { try peer.send([Frame(bytes: [1])]) }
    }

    @Test func messagesArriveInOrderAcrossThreads() throws {
        let hub = InMemoryHub()
        let peer = hub.connect()
        let sender = Thread {
            for sequence in 0..<200 {
                try? peer.send(.heartbeat(Heartbeat(sequence: UInt64(sequence), sentAtNanos: 0)), runID: 1)
            }
        }
        sender.start()
        for expected in 0..<200 {
            let received = try #require(try hub.receiveMessage(timeoutMs: 5000))
            #expect(try received.decoded.get().message == .heartbeat(Heartbeat(sequence: UInt64(expected), sentAtNanos: 0)))
        }
    }

    @Test func receiveWaitsForTheTimeoutThenReturnsNil() throws {
        let hub = InMemoryHub()
        let start = Date()
        #expect(try hub.receive(timeoutMs: 80) == nil)
        #expect(Date().timeIntervalSince(start) >= 0.07)
    }

    @Test func garbledFramesSurfaceAsDecodeErrorsWithTheirSender() throws {
        let hub = InMemoryHub()
        let peer = hub.connect(routingID: PeerID("w2"))
        try peer.send([Frame(bytes: [1, 2, 3])])
        let received = try #require(try hub.receiveMessage(timeoutMs: 1000))
        #expect(received.peer == PeerID("w2"))
        #expect(throws: WireError.self) { try received.decoded.get() }
    }
}
