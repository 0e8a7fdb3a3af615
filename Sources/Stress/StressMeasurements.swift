#if canImport(Glibc)
import Glibc
#endif
import Cluster
import Foundation
import Histogram

/// Process-level measurements of the stress coordinator: CPU time, peak memory, latencies.
public enum StressMeasurements {
    /// User and system CPU seconds of this process so far (getrusage).
    public static func cpuSeconds() -> (user: Double, system: Double) {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return (seconds(usage.ru_utime), seconds(usage.ru_stime))
    }

    /// Peak resident set size of this process in bytes (VmHWM in /proc/self/status; nil where unreadable).
    public static func peakResidentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kib = Int(fields[1]) { return kib * 1024 }
        }
        return nil
    }

    /// Whether `tc netem` can shape loopback traffic here, and why not.
    ///
    /// Probes in a throwaway network namespace (`unshare -n`), so the host's `lo` is never
    /// touched: `ip link set lo up && tc qdisc add dev lo root netem delay 1ms`. Needs root (or
    /// CAP_NET_ADMIN), iproute2 and the kernel's sch_netem.
    public static func netemStatus() -> (usable: Bool, reason: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["unshare", "-n", "sh", "-c", "ip link set lo up && tc qdisc add dev lo root netem delay 1ms"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { return (false, "cannot run unshare/tc: \(error)") }
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate(); return (false, "the tc netem probe did not finish within 5 s") }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if process.terminationStatus == 0 { return (true, "tc netem works (probed in a private network namespace)") }
        if text.contains("unknown") { return (false, "the kernel has no sch_netem (tc: \(text)); delay and drop are injected by the workers instead") }
        if text.contains("Operation not permitted") || text.contains("ermission") {
            return (false, "tc netem needs root or CAP_NET_ADMIN (\(text)); delay and drop are injected by the workers instead")
        }
        return (false, "tc netem is unusable here (\(text.isEmpty ? "exit status \(process.terminationStatus)" : text)); delay and drop are injected by the workers instead")
    }
}

/// Step latencies in microseconds, in an HdrHistogram (3 significant digits, 1 µs … 1 h).
public struct StressLatencies {
    var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)

    /// An empty histogram.
    public init() {}

    /// Records one step's latency.
    public mutating func record(nanoseconds: UInt64) { _ = histogram.record(max(1, min(nanoseconds / 1000, 3_600_000_000))) }

    /// Steps recorded.
    public var count: Int { Int(histogram.totalCount) }

    /// The latency at `percentile` (0…100) in milliseconds.
    public func milliseconds(atPercentile percentile: Double) -> Double {
        count == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    /// The largest latency recorded, in milliseconds.
    public var maximumMilliseconds: Double { count == 0 ? 0 : Double(histogram.max) / 1000 }

    /// The mean latency in milliseconds.
    public var meanMilliseconds: Double { count == 0 ? 0 : histogram.mean / 1000 }

    /// p50, p90, p99, max and mean in milliseconds, for the report.
    public var summary: [String: Double] {
        ["p50": milliseconds(atPercentile: 50), "p90": milliseconds(atPercentile: 90), "p99": milliseconds(atPercentile: 99),
         "max": maximumMilliseconds, "mean": meanMilliseconds]
    }
}
