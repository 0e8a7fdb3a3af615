#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The same-host fast path for parameters: a POSIX shared-memory segment holding the
/// parameters in two slots, slot `version % 2`, written once per step by the coordinator and
/// read by every local worker — instead of one socket copy and two checksums per worker.
///
/// Layout: a 64-byte header (magic "CHSM", parameter count) then two slots of `count` Float32.
/// The coordinator writes slot `v % 2` before sending the work for version v (the send is a
/// system call, which orders the writes before the worker's reads). A worker that reads a slot
/// while the coordinator rewrites it is at least two steps behind, so its result is for a
/// finished step and is dropped as stale by the coordination layer.
public final class SharedParameters {
    /// The shm object's name (`/chorus-…`).
    public let name: String
    /// Parameters per slot.
    public let count: Int
    let base: UnsafeMutableRawPointer
    let size: Int
    let owner: Bool
    static let headerBytes = 64

    private init(name: String, count: Int, base: UnsafeMutableRawPointer, size: Int, owner: Bool) {
        self.name = name; self.count = count; self.base = base; self.size = size; self.owner = owner
    }

    /// Creates the segment (coordinator side).
    public static func create(name: String, count: Int) throws -> SharedParameters {
        let size = headerBytes + 2 * count * 4
        let descriptor = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600)
        guard descriptor >= 0 else { throw RuntimeError.cluster("shared memory \(name): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard ftruncate(descriptor, off_t(size)) == 0,
              let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, descriptor, 0), base != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            shm_unlink(name)
            throw RuntimeError.cluster("shared memory \(name): \(reason)")
        }
        base.storeBytes(of: 0x4D53_4843 as UInt32, toByteOffset: 0, as: UInt32.self)  // "CHSM"
        base.storeBytes(of: UInt64(count), toByteOffset: 8, as: UInt64.self)
        return SharedParameters(name: name, count: count, base: base, size: size, owner: true)
    }

    /// Opens the coordinator's segment (worker side); the parameter count must match.
    public static func open(name: String, count: Int) throws -> SharedParameters {
        let descriptor = shm_open(name, O_RDONLY, 0)
        guard descriptor >= 0 else { throw RuntimeError.cluster("shared memory \(name): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let size = headerBytes + 2 * count * 4
        var status = stat()
        guard fstat(descriptor, &status) == 0, Int(status.st_size) == size,
              let base = mmap(nil, size, PROT_READ, MAP_SHARED | MAP_POPULATE, descriptor, 0), base != MAP_FAILED else {
            throw RuntimeError.cluster("shared memory \(name): not a parameter segment for \(count) parameters")
        }
        guard base.load(fromByteOffset: 0, as: UInt32.self) == 0x4D53_4843,
              base.load(fromByteOffset: 8, as: UInt64.self) == UInt64(count) else {
            munmap(base, size)
            throw RuntimeError.cluster("shared memory \(name): header does not describe \(count) parameters")
        }
        return SharedParameters(name: name, count: count, base: base, size: size, owner: false)
    }

    func slot(_ version: UInt64) -> UnsafeMutablePointer<Float> {
        (base + SharedParameters.headerBytes + Int(version % 2) * count * 4).assumingMemoryBound(to: Float.self)
    }

    /// Writes the parameters of `version` (coordinator).
    public func write(version: UInt64, from source: UnsafePointer<Float>) {
        slot(version).update(from: source, count: count)
    }

    /// Copies the parameters of `version` into `destination` (worker).
    public func read(version: UInt64, into destination: UnsafeMutablePointer<Float>) {
        destination.update(from: slot(version), count: count)
    }

    deinit {
        munmap(base, size)
        if owner { shm_unlink(name) }
    }
}
