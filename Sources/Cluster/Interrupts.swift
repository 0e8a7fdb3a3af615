#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM; the training loop stops at the next step boundary.
nonisolated(unsafe) package var interruptSignal: Int32 = 0

/// Installs handlers so Ctrl-C ends the run cleanly (report written, workers stopped).
public func installInterruptHandlers() {
    signal(SIGINT) { interruptSignal = $0 }
    signal(SIGTERM) { interruptSignal = $0 }
    signal(SIGPIPE, SIG_IGN)
}

