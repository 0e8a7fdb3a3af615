#if canImport(Glibc)
import Glibc
#endif
@testable import Cluster
import Foundation
import Testing

/// What a SIGKILLed coordinator leaves behind is removed by the next one, and nothing else.
@Suite struct OrphanedFilesTests {
    /// The pid of a process that has exited (and been reaped), so `kill(pid, 0)` fails.
    func deadPID() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        let pid = process.processIdentifier
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        return pid
    }

    /// A Unix socket file at `path`, bound (and listening when `listening`); returns the descriptor.
    func unixSocket(_ path: String, listening: Bool) throws -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (index, byte) in path.utf8.enumerated() { raw[index] = byte } }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        if listening { try #require(listen(descriptor, 1) == 0) }
        return descriptor
    }

    @Test func namesAreReadForTheirCreatorsPID() throws {
        let dead = try deadPID(), alive = getpid()
        #expect(SharedGradients.creatorIsGone("chorus-\(dead)-12.sock"))
        #expect(SharedGradients.creatorIsGone("chorus-stress-raw-\(dead).sock"))
        #expect(SharedGradients.creatorIsGone("chorus-agent-\(dead).sock"))
        #expect(SharedGradients.creatorIsGone("chorus-\(dead)-77-grad"))
        #expect(!SharedGradients.creatorIsGone("chorus-\(alive)-12.sock"))
        #expect(!SharedGradients.creatorIsGone("chorus-notes.sock"))
        #expect(!SharedGradients.creatorIsGone("other-\(dead).sock"))
    }

    @Test func aDeadCoordinatorsSocketGoesAndEverythingElseStays() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orphans-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let dead = try deadPID()
        let orphan = directory + "/chorus-\(dead)-1.sock"
        let mine = directory + "/chorus-\(getpid())-1.sock"
        let listened = directory + "/chorus-stress-\(dead)-2.sock"  // a dead pid's name, but someone listens
        let regular = directory + "/chorus-\(dead)-3.sock"          // not a socket
        let sockets = try [unixSocket(orphan, listening: false), unixSocket(mine, listening: false), unixSocket(listened, listening: true)]
        defer { sockets.forEach { close($0) } }
        try "x".write(toFile: regular, atomically: false, encoding: .utf8)
        #expect(ClusterSocket.removeOrphanedIPCSockets(directory: directory) == 1)
        #expect(!FileManager.default.fileExists(atPath: orphan))
        for kept in [mine, listened, regular] { #expect(FileManager.default.fileExists(atPath: kept), "\(kept)") }
    }
}
