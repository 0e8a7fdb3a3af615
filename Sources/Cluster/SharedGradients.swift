#if canImport(Glibc)
import Glibc
#endif
import CKernels
import Foundation
import WireProtocol

/// The same-host fast path for gradients: one POSIX shared-memory segment holding a pool of
/// `slots` gradient buffers that every local worker of a coordinator shares, created by the
/// coordinator (so a SIGKILLed worker leaks nothing).
///
/// Layout: a 128-byte header (magic "CHSG", slot count, bytes per slot, then one 32-bit owner
/// word per slot, at most 16), then the slots, each `slotBytes` long (64-byte aligned).
///
/// Ownership keeps memory bounded whatever the number of workers: a worker *claims* a free slot
/// (its owner word goes 0 → its pid, atomically), writes its gradient there, checksums it
/// (CRC32C) and sends a `gradient` message naming the slot and the checksum instead of carrying
/// the bytes; the send is a system call, which orders the writes before the coordinator's reads.
/// The coordinator copies the slot, checks the copy against the checksum and *releases* the slot
/// (pid → 0) whatever it then does with the result; it also releases every slot of a worker that
/// died. A worker that finds no free slot sends its gradient over the socket instead, so a small
/// pool never blocks anyone. What was aggregated is always exactly what the worker checksummed:
/// memory that changed under the copy (a worker declared dead that is still writing, a bad
/// page) fails the check, and the shard is recomputed like any corrupted payload.
public final class SharedGradients {
    /// The shm object's name (`/chorus-<pid>-<run>-g`).
    public let name: String
    /// Bytes per slot (a gradient in fp32 fits).
    public let slotBytes: Int
    /// Slots in the pool.
    public let slots: Int
    let base: UnsafeMutableRawPointer
    let size: Int
    let owner: Bool
    /// Where the next claim starts looking (spreads claims over the pool).
    var next = 0
    static let headerBytes = 128
    static let ownersOffset = 64
    /// The most slots a pool holds (owner words in the header).
    public static let maximumSlots = 16
    static let magic: UInt32 = 0x4753_4843  // "CHSG"

    /// The pool size for training: a whole step's results unread at once (S shards, an audit
    /// copy, a straggler copy) or one in flight per worker plus two, at least 4, at most 16.
    /// Gradients of training models are small.
    public static func slots(shards: Int, workers: Int) -> Int { min(max(shards + 2, workers + 2, 4), maximumSlots) }
    /// Above this size per segment, gradients go over the socket instead.
    public static let maximumSegmentBytes = 512 << 20

    private init(name: String, slotBytes: Int, slots: Int, base: UnsafeMutableRawPointer, size: Int, owner: Bool) {
        self.name = name; self.slotBytes = slotBytes; self.slots = slots; self.base = base; self.size = size; self.owner = owner
    }

    /// Slot and segment sizes; nil when they overflow (a forged header: release builds do not
    /// check the arithmetic).
    static func layout(gradientBytes: Int, slots: Int) -> (slotBytes: Int, size: Int)? {
        guard gradientBytes >= 0, slots >= 0, gradientBytes <= Int.max - 63 else { return nil }
        let slotBytes = (gradientBytes + 63) / 64 * 64
        let (slotsBytes, overflow) = slots.multipliedReportingOverflow(by: slotBytes)
        guard !overflow, slotsBytes <= Int.max - headerBytes else { return nil }
        return (slotBytes, headerBytes + slotsBytes)
    }

    /// Creates the pool for gradients of `gradientBytes` (coordinator side), or nil when it
    /// would exceed `maximumSegmentBytes`.
    public static func create(name: String, gradientBytes: Int, slots: Int) throws -> SharedGradients? {
        precondition(slots >= 1 && slots <= maximumSlots, "a gradient pool holds 1…\(maximumSlots) slots, not \(slots)")
        guard let (slotBytes, size) = layout(gradientBytes: gradientBytes, slots: slots), size <= maximumSegmentBytes else { return nil }
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
        // The owner words start at 0 (free): fresh tmpfs pages are zero.
        return SharedGradients(name: name, slotBytes: slotBytes, slots: slots, base: base, size: size, owner: true)
    }

    /// Opens the coordinator's pool (worker side) for gradients of `gradientBytes`.
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
        guard base.load(fromByteOffset: 0, as: UInt32.self) == magic, slots >= 1, slots <= maximumSlots, slotBytes >= gradientBytes,
              layout(gradientBytes: slotBytes, slots: slots)?.size == size else {
            munmap(base, size)
            throw RuntimeError.cluster("shared memory \(name): header does not describe slots for \(gradientBytes)-byte gradients")
        }
        return SharedGradients(name: name, slotBytes: slotBytes, slots: slots, base: base, size: size, owner: false)
    }

    var owners: UnsafeMutablePointer<UInt32> { (base + SharedGradients.ownersOffset).assumingMemoryBound(to: UInt32.self) }

    func slot(_ index: Int) -> UnsafeMutableRawPointer {
        base + SharedGradients.headerBytes + index * slotBytes
    }

    /// Claims a free slot for `owner` (non-zero: a worker's pid) and returns its memory, or nil
    /// when every slot is taken (worker). The slot stays the worker's until the coordinator
    /// releases it.
    public func claim(owner: UInt32) -> (index: Int, bytes: UnsafeMutableRawBufferPointer)? {
        precondition(owner != 0, "slot owner 0 means free")
        let index = Int(chorus_slot_claim(owners, Int32(slots), owner, Int32(next)))
        guard index >= 0 else { return nil }
        next = (index + 1) % slots
        return (index, UnsafeMutableRawBufferPointer(start: slot(index), count: slotBytes))
    }

    /// Claims a slot for `owner`, writes `values` there as `dtype` and returns (slot, CRC32C of
    /// its bytes), or nil when no slot is free (worker).
    public func write(_ values: UnsafeBufferPointer<Float>, as dtype: WireDType, owner: UInt32) -> (slot: UInt32, crc: UInt32, bytes: UnsafeMutableRawBufferPointer)? {
        let byteCount = values.count * dtype.byteWidth
        precondition(byteCount <= slotBytes, "gradient of \(byteCount) bytes does not fit a \(slotBytes)-byte slot")
        guard let (index, memory) = claim(owner: owner) else { return nil }
        let destination = memory.baseAddress!
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

    /// Frees slot `index` if `owner` holds it; returns whether it did. Both sides use it: the
    /// coordinator after reading a result, a worker that claimed a slot and then sent nothing.
    @discardableResult
    public func release(slot index: Int, owner: UInt32) -> Bool {
        guard index >= 0, index < slots, owner != 0 else { return false }
        return chorus_slot_release(owners, Int32(index), owner) == 1
    }

    /// Makes slot `index` `to`'s if `from` holds it; returns whether it did. The coordinator
    /// takes over a slot it reads in place, so that the slot outlives its writer's death.
    @discardableResult
    public func transfer(slot index: Int, from: UInt32, to: UInt32) -> Bool {
        guard index >= 0, index < slots, from != 0, to != 0 else { return false }
        return chorus_slot_transfer(owners, Int32(index), from, to) == 1
    }

    /// Frees every slot `owner` holds (coordinator, when that worker died); returns how many.
    @discardableResult
    public func releaseAll(owner: UInt32) -> Int {
        (0..<slots).reduce(0) { $0 + (release(slot: $1, owner: owner) ? 1 : 0) }
    }

    /// The owner of slot `index` (0: free).
    public func owner(ofSlot index: Int) -> UInt32 { chorus_slot_owner(owners, Int32(index)) }

    /// The first `byteCount` bytes of slot `index`, or nil when the slot does not exist or is too
    /// small (coordinator). Others may write them at any time: copy, then checksum the copy.
    public func bytes(slot index: Int, byteCount: Int) -> UnsafeRawBufferPointer? {
        guard index >= 0, index < slots, byteCount <= slotBytes else { return nil }
        return UnsafeRawBufferPointer(start: slot(index), count: byteCount)
    }

    /// Copies the first `byteCount` bytes of slot `index` to `destination`, 64 KiB at a time so
    /// that the checksum reads the copy from cache, and returns the CRC32C of the copy; nil when
    /// the slot does not exist or is too small (coordinator).
    public func copy(slot index: Int, byteCount: Int, into destination: UnsafeMutableRawPointer) -> UInt32? {
        guard let source = bytes(slot: index, byteCount: byteCount) else { return nil }
        var running: UInt32 = 0, offset = 0
        while offset < byteCount {
            let n = min(1 << 16, byteCount - offset)
            (destination + offset).copyMemory(from: source.baseAddress! + offset, byteCount: n)
            running = WireChecksum.crc32c(UnsafeRawBufferPointer(start: destination + offset, count: n), continuing: running)
            offset += n
        }
        return running
    }

    /// Whether `name` is `chorus-[word-…]<pid>[-…][.sock]` (a shared-memory segment or an ipc
    /// socket a Chorus process made) and process `pid` no longer exists.
    package static func creatorIsGone(_ name: String) -> Bool {
        guard name.hasPrefix("chorus-") else { return false }
        let stem = name.hasSuffix(".sock") ? String(name.dropLast(5)) : name
        guard let pid = stem.split(separator: "-").dropFirst().lazy.compactMap({ Int32($0) }).first, pid > 0 else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// Removes `/dev/shm/chorus-<pid>-…` segments whose coordinator process no longer exists
    /// (one that was SIGKILLed could not remove its own); returns how many it removed.
    @discardableResult
    public static func removeOrphanedSegments(directory: String = "/dev/shm") -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return 0 }
        var removed = 0
        for name in names where creatorIsGone(name) {
            if shm_unlink("/" + name) == 0 { removed += 1 }
        }
        return removed
    }

    deinit {
        munmap(base, size)
        if owner { shm_unlink(name) }
    }
}
