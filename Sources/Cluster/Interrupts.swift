#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM; the training loop stops at the next step boundary.
nonisolated(unsafe) package var interruptSignal: Int32 = 0

/// Installs handlers so Ctrl-C ends the run cleanly (report written, workers stopped).
/// A process started with those signals blocked (a parent's thread mask is inherited) would
/// otherwise never see them: they are unblocked here.
public func installInterruptHandlers() {
    signal(SIGINT) { interruptSignal = $0 }
    signal(SIGTERM) { interruptSignal = $0 }
    signal(SIGPIPE, SIG_IGN)
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

