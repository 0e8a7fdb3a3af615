#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Local worker processes started by `chorus train --workers N`: spawned with posix_spawn,
/// reaped with waitpid, stopped with SIGTERM then SIGKILL, so none outlives the run.
public final class ChildProcesses {
    public struct Child {
        public let pid: pid_t
        public let index: Int
    }
    public private(set) var children: [Child] = []
    let executable: String

    public init() {
        executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Starts `chorus <arguments>` and returns its pid.
    @discardableResult
    public func spawn(arguments: [String], index: Int) throws -> pid_t {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let status = posix_spawn(&pid, executable, nil, nil, argv, environ)
        guard status == 0 else {
            throw RuntimeError.cluster("cannot start worker process \(executable): \(String(cString: strerror(status)))")
        }
        children.append(Child(pid: pid, index: index))
        return pid
    }

    /// Children that exited since the last call (reaped), with their exit description.
    public func reapExited() -> [(child: Child, status: String)] {
        var exited: [(Child, String)] = []
        children.removeAll { child in
            var status: Int32 = 0
            let result = waitpid(child.pid, &status, WNOHANG)
            guard result == child.pid else { return false }
            let signalled = (status & 0x7f) != 0
            exited.append((child, signalled ? "killed by signal \(status & 0x7f)" : "exited with status \((status >> 8) & 0xff)"))
            return true
        }
        return exited
    }

    /// Waits for the child with `pid` to exit (one just SIGKILLed, say) and reaps it; nil when
    /// `pid` is not a child of ours.
    public func reap(pid: pid_t) -> (child: Child, status: String)? {
        guard let index = children.firstIndex(where: { $0.pid == pid }) else { return nil }
        var status: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(pid, &status, 0) } while result < 0 && errno == EINTR
        guard result == pid else { return nil }
        let child = children.remove(at: index)
        let signalled = (status & 0x7f) != 0
        return (child, signalled ? "killed by signal \(status & 0x7f)" : "exited with status \((status >> 8) & 0xff)")
    }

    /// Sends `signal` to the child with `pid`.
    public func signal(_ pid: pid_t, _ signal: Int32) { kill(pid, signal) }

    /// Stops every child: SIGTERM, a grace period, then SIGKILL; reaps them all.
    public func stopAll(grace: TimeInterval = 2) {
        for child in children { kill(child.pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while !children.isEmpty && Date() < deadline {
            _ = reapExited()
            if !children.isEmpty { usleep(20_000) }
        }
        for child in children { kill(child.pid, SIGKILL) }
        for child in children { var status: Int32 = 0; waitpid(child.pid, &status, 0) }
        children.removeAll()
    }

    deinit { stopAll(grace: 0.5) }
}
