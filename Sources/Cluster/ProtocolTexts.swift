import Foundation
import WireProtocol

/// The build identity workers and coordinators compare at join.
public enum BuildInfo {
    /// Bumped with any change to what a worker computes.
    public static let version = "chorus-0.1.0"
}

/// Run ids: a coordinator's messages carry its run's, so a worker of another run is told apart.
public enum RunID {
    /// A fresh random run id (never 0, which a hello carries).
    public static func fresh() -> UInt64 { UInt64.random(in: 1...UInt64.max) }
}

/// Monotonic nanoseconds.
@inline(__always) package func monotonicNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Writes one line to stderr.
package func logLine(_ text: String) {
    FileOutput.standardError(text + "\n")
}
