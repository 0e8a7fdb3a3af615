#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Runs programs for tests and waits for them without trusting Foundation's exit notification:
/// on Linux, `Process.waitUntilExit()` can miss a child's exit when many run at once, and a
/// test then waits forever on a zombie (CI once hung 80 minutes that way). The kernel is
/// asked instead, with `waitid(WNOWAIT)`, which leaves the child for Foundation to reap.
public enum ChildProcess {
    /// How a child ended.
    public enum End: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)

        /// As a shell reports it: the exit code, or 128 + the signal.
        public var status: Int32 {
            switch self {
            case .exited(let code): return code
            case .signaled(let signal): return 128 + signal
            }
        }
    }

    /// Waits for `process` to end; after `timeout` seconds it is SIGKILLed (and then waited for).
    public static func wait(_ process: Process, timeout: TimeInterval = 300) -> End {
        let pid = process.processIdentifier
        let deadline = Date().addingTimeInterval(timeout)
        var killed = false
        while true {
            var info = siginfo_t()
            let result = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
            if result == 0 && info._sifields._sigchld.si_pid == pid {
                let status = info._sifields._sigchld.si_status
                return info.si_code == CLD_EXITED ? .exited(status) : .signaled(status)
            }
            if result != 0 && errno == ECHILD && !process.isRunning {
                // Foundation reaped it and noticed.
                return process.terminationReason == .exit ? .exited(process.terminationStatus) : .signaled(process.terminationStatus)
            }
            if !killed && Date() >= deadline {
                killed = true
                kill(pid, SIGKILL)
            }
            usleep(10_000)
        }
    }

    /// Runs `executable` with `arguments` to its end (killed after `timeout` seconds), reading
    /// its stdout and stderr while it runs (a chatty child never blocks on a full pipe); with
    /// `mergeOutput` stderr goes to the same pipe as stdout.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           timeout: TimeInterval = 300, mergeOutput: Bool = false) throws -> (end: End, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = mergeOutput ? out : err
        try process.run()
        return collect(process, out, mergeOutput ? nil : err, timeout: timeout)
    }

    /// Waits for a started `process` while draining its pipes; the pipes' write ends are
    /// closed here so that the reads end with the child (and its children).
    public static func collect(_ process: Process, _ out: Pipe, _ err: Pipe?, timeout: TimeInterval = 300) -> (end: End, output: String, error: String) {
        final class Collected: @unchecked Sendable { var output = Data(), error = Data() }
        let collected = Collected()
        let group = DispatchGroup()
        try? out.fileHandleForWriting.close()
        try? err?.fileHandleForWriting.close()
        group.enter(); DispatchQueue.global().async { collected.output = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        if let err { group.enter(); DispatchQueue.global().async { collected.error = err.fileHandleForReading.readDataToEndOfFile(); group.leave() } }
        let end = wait(process, timeout: timeout)
        // A grandchild may still hold the pipes: give the readers a few seconds, not forever.
        guard group.wait(timeout: .now() + 10) == .success else {
            return (end, "", "(the output pipes are still held open by a process the child started)")
        }
        return (end, String(decoding: collected.output, as: UTF8.self), String(decoding: collected.error, as: UTF8.self))
    }
}
