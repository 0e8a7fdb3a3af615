#if canImport(Glibc)
import Glibc
#endif
import Cluster
import Foundation
import Signals
import TensorCore

/// Makes every Chorus process run OpenBLAS on the right kernel with one thread.
///
/// Debian's OpenBLAS 0.3.21 misdetects recent Intel CPUs as "Prescott" (fixed upstream in
/// OpenBLAS PR #4268) and runs SGEMM ~5× slower. The library reads `OPENBLAS_CORETYPE` when it
/// loads, before `main`, so the process re-executes itself once with the variable chosen
/// from the CPU's features — unless the user set it. After start-up the live kernel is
/// checked against a naive GEMM; a kernel that disagrees is replaced by the safe Prescott one.
public enum BLASEnvironment {
    static let markerVariable = "CHORUS_BLAS_CONFIGURED"

    /// The OpenBLAS core type for this CPU's features, or nil when detection is trusted.
    public static func recommendedCoreType(cpuFlags: Set<String>) -> String? {
        if cpuFlags.contains("avx512f") && cpuFlags.contains("avx512bw") && cpuFlags.contains("avx512vl") { return "SkylakeX" }
        if cpuFlags.contains("avx2") && cpuFlags.contains("fma") { return "Haswell" }
        return nil
    }

    /// The `flags` of the first processor in /proc/cpuinfo (empty elsewhere).
    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            return Set(line.split(separator: ":", maxSplits: 1).last?.split(separator: " ").map(String.init) ?? [])
        }
        return []
    }

    /// Called first thing in `main`: re-executes the process with `OPENBLAS_CORETYPE` and
    /// `OPENBLAS_NUM_THREADS=1` set when needed; returns when no re-exec is needed.
    public static func configureOrReexec() {
        let environment = ProcessInfo.processInfo.environment
        if environment[markerVariable] != nil { return }
        setenv(markerVariable, "1", 1)
        var changed = false
        if environment["OPENBLAS_NUM_THREADS"] == nil { setenv("OPENBLAS_NUM_THREADS", "1", 1); changed = true }
        if environment["OPENBLAS_CORETYPE"] == nil, let core = recommendedCoreType(cpuFlags: cpuFlags()) {
            setenv("OPENBLAS_CORETYPE", core, 1); changed = true
        }
        guard changed else { return }
        reexec()
    }

    /// Checks the live kernel; if it computes wrong products, re-executes on Prescott.
    public static func verifyOrFallBack() -> String {
        BLAS.setThreads(Int(ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] ?? "1") ?? 1)
        if let error = BLAS.verifyKernel() {
            if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != "Prescott" {
                FileHandle.standardError.write("chorus: OpenBLAS kernel \(BLAS.coreName) failed verification (relative error \(error)); restarting on Prescott\n".data(using: .utf8)!)
                setenv("OPENBLAS_CORETYPE", "Prescott", 1)
                reexec()
            }
            FileHandle.standardError.write("chorus: warning: OpenBLAS kernel \(BLAS.coreName) failed verification (relative error \(error))\n".data(using: .utf8)!)
        }
        return BLAS.coreName
    }

    private static func reexec() {
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", &argv)
        // execv returned: carry on with the current kernel.
    }
}
