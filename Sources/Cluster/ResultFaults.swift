#if canImport(Glibc)
import Glibc
#endif
import WireProtocol

/// The faults a worker injects into each result it sends (`--fault`, docs/operations.md and
/// docs/stress.md), the same for `chorus worker` and `chorus stress-worker`: `bitflip` (bad
/// memory, before the checksum), `memflip` (the same, after the worker measured its gradient), `slow` and `delay` (sleeps), `drop` (the result is never sent)
/// and `corrupt` (a byte garbled after the checksum, in transit or in the shared slot).
/// `kill` is the coordinator's to carry out.
package struct ResultFaults {
    let faults: [FaultSpec]
    var rng = SystemRandomNumberGenerator()

    package init(_ faults: [FaultSpec]) { self.faults = faults }

    /// Applies bitflip, slow and delay to a result of `count` elements, in the order the faults
    /// were given; `flip(index, bit)` flips bit `bit` of element `index` (bits 20…29 of an fp32
    /// value, 4…13 of a 16-bit one: exponent and high mantissa, so the value changes visibly).
    /// Then decides: whether to drop the result, and whether to corrupt it after checksumming.
    /// A fault with `step=N` starts at step N (a worker that turns bad mid-run); `kill`'s own `step` is the coordinator's.
    /// `bitflips: false` leaves `bitflip` to an earlier ``flip(_:count:width:step:flip:)`` call (a
    /// worker that measures its gradient flips `bitflip`'s bits before measuring, `memflip`'s after).
    package mutating func apply(count: Int, width: Int = 4, step: Int, bitflips: Bool = true, flip: (Int, Int) -> Void) -> (drop: Bool, corrupt: Bool) {
        var drop = false
        let faults = self.faults.filter { $0.step.map { step >= $0 } ?? true }
        for fault in faults {
            switch fault.kind {
            case .bitflip where bitflips, .memflip:
                flipBits(fault, count: count, width: width, flip: flip)
            case .slow:
                usleep(UInt32((fault.milliseconds ?? 0) * 1000))
            case .delay where Double.random(in: 0..<1, using: &rng) < (fault.rate ?? 0):
                usleep(UInt32((fault.milliseconds ?? 0) * 1000))
            case .drop where Double.random(in: 0..<1, using: &rng) < (fault.rate ?? 0):
                drop = true
            default: break
            }
        }
        let corrupt = faults.contains { $0.kind == .corrupt && Double.random(in: 0..<1, using: &rng) < ($0.rate ?? 0) }
        return (drop, corrupt)
    }

    /// Applies only the faults of `kind` that flip bits (`bitflip`, `memflip`) at `step`.
    package mutating func flip(_ kind: FaultSpec.Kind, count: Int, width: Int = 4, step: Int, flip: (Int, Int) -> Void) {
        for fault in faults where fault.kind == kind && (fault.step.map { step >= $0 } ?? true) {
            flipBits(fault, count: count, width: width, flip: flip)
        }
    }

    /// With probability min(1, rate × count), flips max(1, rate × count) random bits (exponent and
    /// high mantissa).
    mutating func flipBits(_ fault: FaultSpec, count: Int, width: Int, flip: (Int, Int) -> Void) {
        guard Double.random(in: 0..<1, using: &rng) < min(1, (fault.rate ?? 0) * Double(count)) else { return }
        for _ in 0..<max(1, Int((fault.rate ?? 0) * Double(count))) {
            flip(Int.random(in: 0..<count, using: &rng), width == 4 ? Int.random(in: 20...29, using: &rng) : Int.random(in: 4...13, using: &rng))
        }
    }

    /// Garbles one byte of `bytes` in place (a shared-memory slot after its checksum).
    package mutating func garble(_ bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count > 0 else { return }
        bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= 0x5A
    }

    /// Garbles one byte of one payload frame "in transit": a copy replaces the frame, so the
    /// buffer the checksum was computed over is left alone.
    package mutating func garble(_ frames: inout [Frame]) {
        guard frames.count > 1 else { return }
        let index = 1 + Int.random(in: 0..<(frames.count - 1), using: &rng)
        guard frames[index].bytes.count > 0 else { return }
        let garbled = PayloadBuffer(copying: frames[index].bytes)
        garble(garbled.mutableBytes)
        frames[index] = Frame(buffer: garbled)
    }
}
