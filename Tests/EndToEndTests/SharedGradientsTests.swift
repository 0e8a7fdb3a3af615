import Foundation
import Testing
@testable import Cluster
import Signals
import Stress
import Training
import WireProtocol

/// The shared-memory gradient pool, in process (coordinator and worker ends of one segment).
struct SharedGradientsTests {
    static func name() -> String { "/chorus-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

    @Test func workersClaimSlotsTheCoordinatorReadsWhatWasChecksummedAndReleasesThem() throws {
        let name = Self.name()
        let coordinator = try #require(try SharedGradients.create(name: name, gradientBytes: 1000 * 4, slots: 3))
        let worker = try SharedGradients.open(name: name, gradientBytes: 1000 * 4)
        let other = try SharedGradients.open(name: name, gradientBytes: 1000 * 4)
        #expect(worker.slots == 3 && worker.slotBytes >= 4000)
        for round in 0..<5 {
            let values = (0..<1000).map { Float($0 + round) * 0.5 }
            let written = try #require(values.withUnsafeBufferPointer { worker.write($0, as: .fp32, owner: 101) })
            #expect(coordinator.owner(ofSlot: Int(written.slot)) == 101)
            let copy = UnsafeMutableRawPointer.allocate(byteCount: 4000, alignment: 64)
            defer { copy.deallocate() }
            #expect(coordinator.copy(slot: Int(written.slot), byteCount: 4000, into: copy) == written.crc)
            #expect(Array(UnsafeBufferPointer(start: copy.assumingMemoryBound(to: Float.self), count: 1000)) == values)
            #expect(WireChecksum.crc32c(try #require(coordinator.bytes(slot: Int(written.slot), byteCount: 4000))) == written.crc)
            // Only the owner's release frees it.
            #expect(!coordinator.release(slot: Int(written.slot), owner: 202))
            #expect(coordinator.release(slot: Int(written.slot), owner: 101))
            #expect(coordinator.owner(ofSlot: Int(written.slot)) == 0)
        }
        // A full pool says so (the worker then sends over the socket); a dead owner's slots come back.
        let one: [Float] = [1, 2, 3]
        let a = try #require(one.withUnsafeBufferPointer { worker.write($0, as: .fp32, owner: 101) })
        let b = try #require(one.withUnsafeBufferPointer { other.write($0, as: .fp32, owner: 202) })
        let c = try #require(one.withUnsafeBufferPointer { other.write($0, as: .fp32, owner: 202) })
        #expect(Set([a.slot, b.slot, c.slot]).count == 3)
        #expect(one.withUnsafeBufferPointer { worker.write($0, as: .fp32, owner: 101) } == nil)
        #expect(coordinator.releaseAll(owner: 202) == 2)
        #expect(one.withUnsafeBufferPointer { worker.write($0, as: .fp32, owner: 101) } != nil)
        // bf16: half the bytes, the same rounding as the socket path.
        coordinator.releaseAll(owner: 101)
        let values: [Float] = [1.0, 3.14159, -2.5e-3, 65504]
        let written = try #require(values.withUnsafeBufferPointer { worker.write($0, as: .bf16, owner: 101) })
        let bytes = try #require(coordinator.bytes(slot: Int(written.slot), byteCount: 8))
        #expect(Array(bytes) == PayloadBuffer.encoding(values, as: .bf16).byteArray())
        #expect(coordinator.bytes(slot: 3, byteCount: 8) == nil)
        #expect(coordinator.bytes(slot: 0, byteCount: coordinator.slotBytes + 1) == nil)
        #expect(!coordinator.release(slot: 3, owner: 101))
    }

    @Test func claimsRaceSafelyBetweenThreads() throws {
        // Eight claimers on a 4-slot pool: a slot is never held by two at once.
        let name = Self.name()
        let coordinator = try #require(try SharedGradients.create(name: name, gradientBytes: 64, slots: 4))
        let overlaps = ManagedAtomicCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            guard let pool = try? SharedGradients.open(name: name, gradientBytes: 64) else { overlaps.add(1000); return }
            let owner = UInt32(thread + 1)
            for _ in 0..<2000 {
                guard let (index, memory) = pool.claim(owner: owner) else { continue }
                memory.storeBytes(of: owner, as: UInt32.self)
                if pool.owner(ofSlot: index) != owner || memory.load(as: UInt32.self) != owner { overlaps.add(1) }
                #expect(pool.release(slot: index, owner: owner))
            }
        }
        #expect(overlaps.value == 0)
        #expect((0..<4).allSatisfy { coordinator.owner(ofSlot: $0) == 0 })
    }

    @Test func aSegmentForOtherGradientsOrNoSegmentIsAClearError() throws {
        let name = Self.name()
        let coordinator = try #require(try SharedGradients.create(name: name, gradientBytes: 64, slots: 4))
        #expect(throws: RuntimeError.self) { try SharedGradients.open(name: name, gradientBytes: 1 << 20) }
        #expect(throws: RuntimeError.self) { try SharedGradients.open(name: name + "-missing", gradientBytes: 64) }
        _ = coordinator
    }

    @Test func aSegmentTooLargeForSharedMemoryIsDeclined() throws {
        #expect(try SharedGradients.create(name: Self.name(), gradientBytes: SharedGradients.maximumSegmentBytes, slots: 4) == nil)
    }

    @Test func segmentsOfACoordinatorThatNoLongerExistsAreRemoved() throws {
        // A pid that is not running (the highest pid numbers are never reached in a test run).
        let dead = "/chorus-4194300-123-g0", alive = "/chorus-\(getpid())-123-g0"
        for name in [dead, alive] {
            let fd = shm_open(name, O_CREAT | O_RDWR, 0o600)
            #expect(fd >= 0)
            close(fd)
        }
        #expect(SharedGradients.removeOrphanedSegments() >= 1)
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm" + dead))
        #expect(FileManager.default.fileExists(atPath: "/dev/shm" + alive))
        shm_unlink(alive)
    }

    @Test func theSegmentIsRemovedWithItsOwner() throws {
        let name = Self.name()
        var coordinator = try SharedGradients.create(name: name, gradientBytes: 64, slots: 4)
        #expect(FileManager.default.fileExists(atPath: "/dev/shm" + name))
        coordinator = nil
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm" + name))
        _ = coordinator
    }
}

/// A lock-protected counter for the threads of a test.
final class ManagedAtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add(_ n: Int) { lock.lock(); count += n; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
