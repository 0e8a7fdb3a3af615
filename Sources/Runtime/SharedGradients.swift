#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WireProtocol

/// The same-host fast path for gradients: one POSIX shared-memory segment per local worker
/// slot, created by the coordinator (so a SIGKILLed worker leaks nothing) and written by the
/// worker, holding a ring of `slots` gradient buffers.
///
/// Layout: a 64-byte header (magic "CHSG", bytes per slot, slot count), then the slots, each
/// `slotBytes` long (64-byte aligned). A worker writes its next slot, checksums it (CRC32C),
/// and sends a `gradient` message naming the slot and the checksum instead of carrying the
/// bytes; the send is a system call, which orders the writes before the coordinator's reads.
/// The coordinator copies the slot and checks the copy against the checksum: a worker that has
/// already moved on to rewrite the slot (it is `slots` results ahead) or memory that changed
/// under it fails the check, and the shard is recomputed like any corrupted payload. What was
/// aggregated is always exactly what the worker checksummed.
public final class SharedGradients {
    /// The shm object's name (`/chorus-…-gN`).
    public let name: String
    /// Bytes per slot (a gradient in fp32 fits).
    public let slotBytes: Int
    /// Slots in the ring.
    public let slots: Int
    let base: UnsafeMutableRawPointer
    let size: Int
    let owner: Bool
    /// The worker's next slot.
    var next = 0
    static let headerBytes = 64
    static let magic: UInt32 = 0x4753_4843  // "CHSG"

    /// The ring depth for `shards` shards per step: a worker never writes more than S + 2
    /// results per step (its shards, an audit copy, a straggler copy) unless it is handed a dead
    /// worker's shards, and when it does run ahead the checksum catches it.
    public static func slots(forShards shards: Int) -> Int { min(max(shards + 2, 4), 16) }
    /// Above this size per segment, gradients go over the socket instead.
    public static let maximumSegmentBytes = 512 << 20

    private init(name: String, slotBytes: Int, slots: Int, base: UnsafeMutableRawPointer, size: Int, owner: Bool) {
        self.name = name; self.slotBytes = slotBytes; self.slots = slots; self.base = base; self.size = size; self.owner = owner
    }

    static func layout(gradientBytes: Int, slots: Int) -> (slotBytes: Int, size: Int) {
        let slotBytes = (gradientBytes + 63) / 64 * 64
        return (slotBytes, headerBytes + slots * slotBytes)
    }

    /// Creates the segment for gradients of `gradientBytes` (coordinator side), or nil when it
    /// would exceed `maximumSegmentBytes`.
    public static func create(name: String, gradientBytes: Int, slots: Int) throws -> SharedGradients? {
        let (slotBytes, size) = layout(gradientBytes: gradientBytes, slots: slots)
        guard size <= maximumSegmentBytes else { return nil }
        shm_unlink(name)  // a segment left by a killed coordinator with the same pid and run id
        let descriptor = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600)
        guard descriptor >= 0 else { throw RuntimeError.cluster("shared memory \(name): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        // posix_fallocate reserves the pages now: on a small /dev/shm (containers often have
        // 64 MiB) creation fails cleanly here instead of a SIGBUS at the first write.
        let reserved = posix_fallocate(descriptor, 0, off_t(size))
        guard reserved == 0 else {
            shm_unlink(name)
            throw RuntimeError.cluster("shared memory \(name): cannot reserve \(size) bytes: \(String(cString: strerror(reserved)))")
        }
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, descriptor, 0), base != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            shm_unlink(name)
            throw RuntimeError.cluster("shared memory \(name): \(reason)")
        }
        base.storeBytes(of: magic, toByteOffset: 0, as: UInt32.self)
        base.storeBytes(of: UInt32(slots), toByteOffset: 4, as: UInt32.self)
        base.storeBytes(of: UInt64(slotBytes), toByteOffset: 8, as: UInt64.self)
        return SharedGradients(name: name, slotBytes: slotBytes, slots: slots, base: base, size: size, owner: true)
    }

    /// Opens the coordinator's segment (worker side) for gradients of `gradientBytes`.
    public static func open(name: String, gradientBytes: Int) throws -> SharedGradients {
        let descriptor = shm_open(name, O_RDWR, 0)
        guard descriptor >= 0 else { throw RuntimeError.cluster("shared memory \(name): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, Int(status.st_size) >= headerBytes,
              let base = mmap(nil, Int(status.st_size), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, descriptor, 0), base != MAP_FAILED else {
            throw RuntimeError.cluster("shared memory \(name): not a gradient segment")
        }
        let size = Int(status.st_size)
        let slots = Int(base.load(fromByteOffset: 4, as: UInt32.self))
        let slotBytes = Int(base.load(fromByteOffset: 8, as: UInt64.self))
        guard base.load(fromByteOffset: 0, as: UInt32.self) == magic, slots >= 1, slotBytes >= gradientBytes,
              layout(gradientBytes: slotBytes, slots: slots).size == size else {
            munmap(base, size)
            throw RuntimeError.cluster("shared memory \(name): header does not describe slots for \(gradientBytes)-byte gradients")
        }
        return SharedGradients(name: name, slotBytes: slotBytes, slots: slots, base: base, size: size, owner: false)
    }

    func slot(_ index: Int) -> UnsafeMutableRawPointer {
        base + SharedGradients.headerBytes + index * slotBytes
    }

    /// Writes `values` as `dtype` into the next slot and returns (slot, CRC32C of its bytes) (worker).
    public func write(_ values: UnsafeBufferPointer<Float>, as dtype: WireDType) -> (slot: UInt32, crc: UInt32, bytes: UnsafeMutableRawBufferPointer) {
        let index = next
        next = (next + 1) % slots
        let destination = slot(index)
        let byteCount = values.count * dtype.byteWidth
        precondition(byteCount <= slotBytes, "gradient of \(byteCount) bytes does not fit a \(slotBytes)-byte slot")
        switch dtype {
        case .fp32:
            if let source = values.baseAddress, byteCount > 0 { destination.copyMemory(from: source, byteCount: byteCount) }
        case .fp16:
            HalfPrecision.floatToHalf(values, into: UnsafeMutableBufferPointer(start: destination.assumingMemoryBound(to: UInt16.self), count: values.count))
        case .bf16:
            HalfPrecision.floatToBFloat16(values, into: UnsafeMutableBufferPointer(start: destination.assumingMemoryBound(to: UInt16.self), count: values.count))
        }
        let bytes = UnsafeMutableRawBufferPointer(start: destination, count: byteCount)
        return (UInt32(index), WireChecksum.crc32c(UnsafeRawBufferPointer(bytes)), bytes)
    }

    /// The first `byteCount` bytes of slot `index`, or nil when the slot does not exist or is too
    /// small (coordinator). The worker may rewrite them at any time: copy, then checksum the copy.
    public func bytes(slot index: Int, byteCount: Int) -> UnsafeRawBufferPointer? {
        guard index >= 0, index < slots, byteCount <= slotBytes else { return nil }
        return UnsafeRawBufferPointer(start: slot(index), count: byteCount)
    }

    /// Removes `/dev/shm/chorus-<pid>-…` segments whose coordinator process no longer exists
    /// (one that was SIGKILLed could not remove its own); returns how many it removed.
    @discardableResult
    public static func removeOrphanedSegments(directory: String = "/dev/shm") -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix("chorus-") {
            let fields = name.split(separator: "-")
            guard fields.count >= 3, let pid = Int32(fields[1]), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                if shm_unlink("/" + name) == 0 { removed += 1 }
            }
        }
        return removed
    }

    deinit {
        munmap(base, size)
        if owner { shm_unlink(name) }
    }
}
