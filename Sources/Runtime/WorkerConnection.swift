#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Transport
import WireProtocol

/// What `chorus worker` (``WorkerRunner``) and `chorus stress-worker` (``StressWorker``) share:
/// the DEALER socket to the coordinator, the run id, heartbeats, and the receive loop that ends
/// the worker when it is interrupted, its parent is gone or the coordinator falls silent. Each
/// worker supplies only what it does with a message.
final class WorkerConnection {
    /// Log-line prefix: `chorus worker`, `chorus stress-worker`.
    let name: String
    let connect: String
    let context: ZMQContext
    let transport: ZMQMessageTransport
    let heartbeatMs: Int
    let parentPID: Int32?
    /// The run this worker was welcomed into (0 until then).
    var runID: UInt64 = 0
    /// Coordinator silence that ends the worker: the option until welcomed, then the coordinator's.
    var silenceLimitMs: Int
    /// When the coordinator was last heard; reset it after long work such as loading data.
    var lastHeard = monotonicNanos()
    var lastBeat: UInt64 = 0
    var beatSequence: UInt64 = 0

    /// Connects the DEALER socket (`identityPrefix` tells workers apart in the coordinator's logs).
    init(name: String, connect: String, identityPrefix: String, heartbeatMs: Int, timeoutMs: Int, parentPID: Int32?,
         curveServerKey: String? = nil) throws {
        self.name = name
        self.connect = connect
        self.heartbeatMs = heartbeatMs
        self.parentPID = parentPID
        silenceLimitMs = timeoutMs
        context = try ZMQContext(ioThreads: 1)
        do {
            transport = try ClusterSocket.dealer(context: context, endpoint: connect, identityPrefix: identityPrefix, heartbeatMs: heartbeatMs,
                                                 timeoutMs: timeoutMs, curveServerKey: curveServerKey)
        } catch {
            throw RuntimeError.cluster("\(name): cannot connect to \(connect): \(error)")
        }
    }

    /// Sends `message` in this worker's run.
    func send(_ message: Message) throws { try transport.send(message, runID: runID) }

    /// Sends encoded frames.
    func send(_ frames: [Frame]) throws { try transport.send(frames, to: nil) }

    /// Calls `start`, then hands every well-formed message (with its run id) to `handle` until
    /// `handle` returns an exit status; sends heartbeats once welcomed. Returns the process exit
    /// status: 130 when interrupted (after a `leave`), 1 when the parent or the coordinator is
    /// gone or on an error, 2 when the coordinator speaks another protocol version.
    func run(start: () throws -> Void, handle: (Message, UInt64) throws -> Int32?) -> Int32 {
        do {
            try start()
            while true {
                if interruptSignal != 0 { try? send(.leave(Leave(reason: "worker interrupted"))); return 130 }
                if let parentPID, getppid() != parentPID {
                    logLine("\(name): parent process \(parentPID) is gone; exiting")
                    return 1
                }
                let now = monotonicNanos()
                if now - lastHeard > UInt64(silenceLimitMs) * 1_000_000 {
                    logLine("\(name): coordinator at \(connect) silent for \(silenceLimitMs) ms; exiting")
                    return 1
                }
                if runID != 0, now - lastBeat > UInt64(heartbeatMs) * 1_000_000 {
                    lastBeat = now
                    beatSequence += 1
                    try? send(.heartbeat(Heartbeat(sequence: beatSequence, sentAtNanos: now)))
                }
                guard let incoming = try transport.receiveMessage(timeoutMs: min(heartbeatMs, 100)) else { continue }
                switch incoming.decoded {
                case .failure(let error):
                    if case let .versionMismatch(received, supported) = error {
                        logLine("\(name): coordinator speaks protocol version \(received), this worker \(supported); exiting")
                        return 2
                    }
                    logLine("\(name): dropped malformed message: \(error)")
                case .success(let (messageRunID, message)):
                    lastHeard = monotonicNanos()
                    if let status = try handle(message, messageRunID) { return status }
                }
            }
        } catch {
            logLine("\(name): error: \(error)")
            return 1
        }
    }
}
