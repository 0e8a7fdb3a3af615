import Foundation
import Transport
import WireProtocol

/// Shared helpers: unique endpoints, fixtures, waiting for a message.
enum TransportTestSupport {
    static func ipcEndpoint() -> String {
        "ipc://\(NSTemporaryDirectory())chorus-test-\(UUID().uuidString.prefix(8)).sock"
    }

    static func floats(_ count: Int, seed: Float) -> [Float] {
        (0..<count).map { Float($0 % 9973) * 0.001 + seed }
    }

    static func gradient(floatCount: Int, shard: UInt32 = 3) -> Message {
        .gradient(Gradient(step: 12, shard: shard, exampleCount: 128, parameterVersion: 11, lossSum: 40.5,
                           correct: 100, payload: PayloadBuffer(floats: floats(floatCount, seed: 0.5))))
    }

    /// Receives until a message arrives or `timeoutMs` passes in total.
    static func receiveMessage(_ transport: MessageTransport, timeoutMs: Int) throws -> IncomingMessage? {
        try transport.receiveMessage(timeoutMs: timeoutMs)
    }
}
