import Foundation
import ProcessTestSupport
import Testing

/// Runs the real `chorus` binary: CHORUS_BINARY, else the release build, else the debug build.
enum Chorus {
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["CHORUS_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        for candidate in ["\(root)/.build/release/chorus", "\(root)/.build/debug/chorus"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "\(root)/.build/debug/chorus"
    }()

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    struct Result {
        /// How it ended (`status`: the exit code, or 128 + the signal).
        var end: ChildProcess.End
        var output: String
        var error: String
        var status: Int32 { end.status }
    }

    /// Starts chorus with `arguments`; the caller waits.
    static func start(_ arguments: [String]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    /// Runs chorus to completion (killed after `timeout` seconds).
    static func run(_ arguments: [String], timeout: TimeInterval = 300) throws -> Result {
        let (process, out, err) = try start(arguments)
        return finish(process, out, err, timeout: timeout)
    }

    /// Waits for a started chorus (SIGKILLed after `timeout` seconds), draining its pipes meanwhile.
    static func finish(_ process: Process, _ out: Pipe, _ err: Pipe, timeout: TimeInterval = 300) -> Result {
        let (end, output, error) = ChildProcess.collect(process, out, err, timeout: timeout)
        return Result(end: end, output: output, error: error)
    }

    /// report.json of a run directory.
    static func report(_ directory: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/report.json"))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    /// A fresh temporary directory.
    static func temporaryDirectory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "chorus-e2e-\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A TCP connection to 127.0.0.1:`port`: its descriptor, or nil (closed again) if refused.
    static func connectLoopback(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); return nil }
        return fd
    }

    /// VmRSS of process `pid` in bytes (nil once it is gone).
    static func residentBytes(pid: Int32) -> Int? { statusField("VmRSS", pid: pid) }

    /// VmHWM (peak resident memory) of process `pid` in bytes (nil once it is gone).
    static func peakResidentBytes(pid: Int32) -> Int? { statusField("VmHWM", pid: pid) }

    private static func statusField(_ name: String, pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
              let kilobytes = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") else { return nil }
        return kilobytes * 1024
    }

    /// A short Fashion-MNIST run's arguments: 4 shards of a 64-example batch.
    static func shortRun(out: String, steps: Int = 6, shards: Int = 4) -> [String] {
        ["train", "--max-steps", String(steps), "--batch-size", "64", "--shards", String(shards), "--out", out, "--quiet"]
    }

    static var hasFashionMNIST: Bool { FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") }
}
