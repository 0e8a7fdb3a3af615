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
    /// Set when a process re-executed itself to run the kernel its run requires.
    static let adoptedVariable = "CHORUS_BLAS_ADOPTED"
    /// Test-only: CPU flags to pretend this host lacks (comma-separated), to exercise refusals.
    static let hiddenFlagsVariable = "CHORUS_TEST_HIDE_CPU_FLAGS"

    /// CPU features an OpenBLAS kernel needs (nil: a kernel this check does not know; SSE-era
    /// kernels need nothing beyond what x86-64 guarantees here).
    public static func requiredFlags(kernel: String) -> [String]? {
        switch kernel {
        case "SkylakeX": return ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        case "Cooperlake": return ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx512_bf16"]
        case "SapphireRapids": return ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx512_bf16", "amx_tile"]
        case "Haswell", "Zen": return ["avx2", "fma"]
        case "SandyBridge": return ["avx"]
        case "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Opteron", "Barcelona", "Bobcat", "Katmai", "Northwood": return []
        default: return nil
        }
    }

    /// The features `kernel` needs that this CPU lacks (empty: it can run it).
    public static func missingFlags(kernel: String) -> [String] {
        let flags = cpuFlags()
        return (requiredFlags(kernel: kernel) ?? []).filter { !flags.contains($0) }
    }

    /// Makes this process run `kernel` (a run's kernel, from `--blas-core` or the coordinator's
    /// welcome): returns when it already does, re-executes itself with `OPENBLAS_CORETYPE=kernel`
    /// otherwise, and throws a message naming the kernel, the missing CPU feature and the flag
    /// to choose another when this host cannot run it.
    public static func adopt(kernel: String) throws {
        guard requiredFlags(kernel: kernel) != nil || kernel == BLAS.coreName else {
            throw RuntimeError.invalidSetting("unknown OpenBLAS kernel \"\(kernel)\" (this host runs \(BLAS.coreName); known: SkylakeX, Haswell, Zen, SandyBridge, Prescott, …)")
        }
        let missing = missingFlags(kernel: kernel)
        guard missing.isEmpty else {
            throw RuntimeError.invalidSetting("this host's CPU cannot run the run's OpenBLAS kernel \(kernel): it lacks \(missing.joined(separator: ", ")); start the coordinator with --blas-core \(recommendedCoreType(cpuFlags: cpuFlags()) ?? "Prescott") or another kernel every host can run")
        }
        guard kernel != BLAS.coreName else { return }
        if ProcessInfo.processInfo.environment[adoptedVariable] == kernel {
            throw RuntimeError.invalidSetting("OpenBLAS did not switch to kernel \(kernel) (it runs \(BLAS.coreName)); start the coordinator with --blas-core \(BLAS.coreName)")
        }
        setenv("OPENBLAS_CORETYPE", kernel, 1)
        setenv(adoptedVariable, kernel, 1)
        reexec()
        throw RuntimeError.invalidSetting("cannot re-execute to switch OpenBLAS to kernel \(kernel)")
    }

    /// The OpenBLAS core type for this CPU's features, or nil when detection is trusted.
    public static func recommendedCoreType(cpuFlags: Set<String>) -> String? {
        if cpuFlags.contains("avx512f") && cpuFlags.contains("avx512bw") && cpuFlags.contains("avx512vl") { return "SkylakeX" }
        if cpuFlags.contains("avx2") && cpuFlags.contains("fma") { return "Haswell" }
        return nil
    }

    /// The `flags` of the first processor in /proc/cpuinfo (empty elsewhere).
    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        let hidden = Set((ProcessInfo.processInfo.environment[hiddenFlagsVariable] ?? "").split(separator: ",").map(String.init))
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            return Set(line.split(separator: ":", maxSplits: 1).last?.split(separator: " ").map(String.init) ?? []).subtracting(hidden)
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
            if let adopted = ProcessInfo.processInfo.environment[adoptedVariable] {
                // The run requires this kernel: falling back would compute other bits than the rest.
                FileOutput.standardError("chorus: error: the run's OpenBLAS kernel \(adopted) computes wrong products on this host (relative error \(error)); start the coordinator with --blas-core NAME for a kernel every host computes correctly\n")
                exit(2)
            }
            if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != "Prescott" {
                FileOutput.standardError("chorus: OpenBLAS kernel \(BLAS.coreName) failed verification (relative error \(error)); restarting on Prescott\n")
                setenv("OPENBLAS_CORETYPE", "Prescott", 1)
                reexec()
            }
            FileOutput.standardError("chorus: warning: OpenBLAS kernel \(BLAS.coreName) failed verification (relative error \(error))\n")
        }
        return BLAS.coreName
    }

    static func reexec() {
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", &argv)
        // execv returned: carry on with the current kernel.
    }
}
