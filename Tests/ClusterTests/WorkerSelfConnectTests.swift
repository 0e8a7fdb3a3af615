#if canImport(Glibc)
import Glibc
#endif
import Cluster
import Testing
import Transport
import WireProtocol

/// A worker whose endpoint answers with a worker's join is not talking to a coordinator.
@Suite struct WorkerSelfConnectTests {
    /// The workload the hosts hold (unowned).
    let workload = FixedFingerprintWorkload(fingerprint: 1)

    /// A worker over a bare hub; returns it, the hub and the routing id of its first join.
    func workerAndItsJoin() throws -> (WorkerHost<FixedFingerprintWorkload>, InMemoryHub, PeerID, [Frame]) {
        let hub = InMemoryHub(endpoint: "tcp://127.0.0.1:40000")
        let host = WorkerHost(workload: workload, transport: hub.connect(), heartbeatMs: 250, timeoutMs: 5_000, clock: { 1 })
        #expect(host.start() == nil)
        let (peer, frames) = try #require(try hub.receive(timeoutMs: 0))
        let (_, message) = try WireCodec.decode(frames: frames)
        #expect(message.kind == .join)
        return (host, hub, try #require(peer), frames)
    }

    @Test func itsOwnJoinComingBackIsATCPSelfConnect() throws {
        let (host, hub, peer, frames) = try workerAndItsJoin()
        try hub.send(frames, to: peer)  // what a socket connected to itself delivers
        withExtendedLifetime(hub) { #expect(host.poll(timeoutMs: 0) == 1) }
    }

    @Test func anotherWorkersJoinIsNamedAsSuch() throws {
        let (host, hub, peer, _) = try workerAndItsJoin()
        let other = Join(workerName: "elsewhere", buildVersion: "x", dataFingerprint: 1, pid: getpid() + 1)
        try hub.send(Message.join(other), runID: 0, to: peer)
        withExtendedLifetime(hub) { #expect(host.poll(timeoutMs: 0) == 1) }
    }
}
