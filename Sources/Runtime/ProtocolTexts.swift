import Foundation
import WireProtocol

/// The build identity workers and coordinators compare at join.
public enum BuildInfo {
    /// Bumped with any change to what a worker computes.
    public static let version = "chorus-0.1.0"
}

extension WireError {
    /// Whether the error is a corrupted gradient payload (recompute the shard).
    var isPayloadCorruption: Bool {
        if case .payloadChecksumMismatch = self { return true }
        return false
    }
}

/// Monotonic nanoseconds.
@inline(__always) func monotonicNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Writes one line to stderr.
func logLine(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}
