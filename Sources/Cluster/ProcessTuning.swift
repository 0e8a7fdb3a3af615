#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Process-wide settings every Chorus process applies at start.
public enum ProcessTuning {
    /// glibc's `mallopt`: one arena (the processes are single-threaded where it matters),
    /// blocks up to 32 MiB from the heap rather than fresh mmaps, and no trimming below 1 GiB —
    /// so the same large buffers (gradients, im2col columns, payloads) are reused step after
    /// step instead of being faulted in anew. Looked up at run time (Swift's Glibc module does
    /// not export `mallopt`); skipped when GLIBC_TUNABLES is set.
    public static func tuneMalloc() {
        guard ProcessInfo.processInfo.environment["GLIBC_TUNABLES"] == nil, let symbol = dlsym(nil, "mallopt") else { return }
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-8, 1)         // M_ARENA_MAX
        _ = mallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD
        _ = mallopt(-1, 1 << 30)   // M_TRIM_THRESHOLD
    }
}
