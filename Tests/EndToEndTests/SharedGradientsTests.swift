import Foundation
import Testing
@testable import Runtime
import WireProtocol

/// The shared-memory gradient ring, in process (coordinator and worker ends of one segment).
struct SharedGradientsTests {
    static func name() -> String { "/chorus-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

    @Test func aWorkerWritesSlotsInARingAndTheCoordinatorReadsWhatWasChecksummed() throws {
        let name = Self.name()
        let coordinator = try #require(try SharedGradients.create(name: name, gradientBytes: 1000 * 4, slots: 3))
        let worker = try SharedGradients.open(name: name, gradientBytes: 1000 * 4)
        #expect(worker.slots == 3 && worker.slotBytes >= 4000)
        for round in 0..<5 {
            let values = (0..<1000).map { Float($0 + round) * 0.5 }
            let written = values.withUnsafeBufferPointer { worker.write($0, as: .fp32) }
            #expect(Int(written.slot) == round % 3)
            let bytes = try #require(coordinator.bytes(slot: Int(written.slot), byteCount: 4000))
            #expect(WireChecksum.crc32c(bytes) == written.crc)
            #expect(Array(bytes.bindMemory(to: Float.self)) == values)
        }
        // bf16: half the bytes, the same rounding as the socket path.
        let values: [Float] = [1.0, 3.14159, -2.5e-3, 65504]
        let written = values.withUnsafeBufferPointer { worker.write($0, as: .bf16) }
        let bytes = try #require(coordinator.bytes(slot: Int(written.slot), byteCount: 8))
        #expect(Array(bytes) == PayloadBuffer.encoding(values, as: .bf16).byteArray())
        #expect(coordinator.bytes(slot: 3, byteCount: 8) == nil)
        #expect(coordinator.bytes(slot: 0, byteCount: coordinator.slotBytes + 1) == nil)
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
