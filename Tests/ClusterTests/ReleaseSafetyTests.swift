#if canImport(Glibc)
import Glibc
#endif
@testable import Cluster
import Foundation
@testable import Stress
import Testing
import Transport
import WireProtocol

/// Input-derived sizes and indices that release builds (`-Ounchecked`) would not check: each is
/// refused where it enters (docs/architecture.md, "Release-build safety").
@Suite struct ReleaseSafetyTests {
    /// A worker workload that counts the work it is asked to compute.
    final class CountingWorkload: WorkerWorkload {
        var computed: [UInt64] = []
        var logName: String { "test worker" }
        func prepare(_ welcome: Welcome) throws -> UInt64 { 1 }
        func compute(_ work: Work, runID: UInt64, send: ([Frame]) throws -> Void) throws { computed.append(work.step) }
    }

    @Test func workForAStepBeyondInt32IsDroppedNotComputed() throws {
        let workload = CountingWorkload()
        let hub = InMemoryHub(endpoint: "tcp://127.0.0.1:40001")
        let host = WorkerHost(workload: workload, transport: hub.connect(), heartbeatMs: 250, timeoutMs: 5_000, clock: { 1 })
        #expect(host.start() == nil)
        let (peer, _) = try #require(try hub.receive(timeoutMs: 0))
        let runID: UInt64 = 77
        try hub.send(Message.welcome(Welcome(workerID: 0, configJSON: [], configHash: 1, heartbeatIntervalMs: 250, timeoutMs: 5_000,
                                             parameterVersion: 1)), runID: runID, to: peer)
        #expect(host.poll(timeoutMs: 0) == nil)
        for step in [UInt64.max, UInt64(Int32.max) + 1, 1] {
            try hub.send(Message.work(Work(step: step, epoch: 0, stepInEpoch: 0, parameterVersion: 1, shards: [0], shardCount: 1,
                                          parameters: PayloadBuffer(byteCount: 4))),
                         runID: runID, to: peer)
            #expect(host.poll(timeoutMs: 0) == nil)
        }
        withExtendedLifetime(hub) { #expect(workload.computed == [1]) }
    }

    @Test func aForgedGradientSegmentHeaderWhoseSizeWrapsIsRefused() throws {
        // 16 slots of 2^60 + 64 bytes: 16 × that wraps to 1024, so header + slots "fits" 1152 bytes.
        let name = "/chorus-test-forged-\(getpid())"
        let size = SharedGradients.headerBytes + 16 * 64
        let descriptor = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600)
        try #require(descriptor >= 0)
        defer { shm_unlink(name) }
        #expect(ftruncate(descriptor, off_t(size)) == 0)
        let base = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0))
        close(descriptor)
        base.storeBytes(of: SharedGradients.magic, toByteOffset: 0, as: UInt32.self)
        base.storeBytes(of: UInt32(16), toByteOffset: 4, as: UInt32.self)
        base.storeBytes(of: UInt64(1) << 60 + 64, toByteOffset: 8, as: UInt64.self)
        munmap(base, size)
        #expect(SharedGradients.layout(gradientBytes: (1 << 60) + 64, slots: 16) == nil)
        #expect(throws: (any Error).self) { try SharedGradients.open(name: name, gradientBytes: 256) }
    }

    @Test func aStressWelcomeWithAnImpossibleParameterCountIsRefused() throws {
        for params in [0, -1, Int.max, StressDescription.maximumParams + 1] {
            #expect(throws: (any Error).self) { try StressDescription(json: StressDescription(params: params, seed: 1).json) }
        }
        #expect(try StressDescription(json: StressDescription(params: 1000, seed: 1).json).params == 1000)
    }
}
