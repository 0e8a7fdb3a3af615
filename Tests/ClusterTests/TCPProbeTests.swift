#if canImport(Glibc)
import Glibc
#endif
import Cluster
import Testing

/// The probe a worker runs when no coordinator answered: each cause in its own words.
@Suite struct TCPProbeTests {
    /// A listening socket on loopback and its port.
    func listener() throws -> (Int32, Int) {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try #require(bind(socket, $0, length) == 0 && listen(socket, 4) == 0)
                try #require(getsockname(socket, $0, &length) == 0)
            }
        }
        return (socket, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test func aListeningPortIsNoFinding() throws {
        let (socket, port) = try listener()
        defer { close(socket) }
        #expect(TCPProbe.diagnose("tcp://127.0.0.1:\(port)") == nil)
    }

    @Test func aClosedPortIsNamedAsRefused() throws {
        let (socket, port) = try listener()
        close(socket)  // the port is now closed: nothing listens
        let finding = try #require(TCPProbe.diagnose("tcp://127.0.0.1:\(port)"))
        #expect(finding.contains("nothing listens on 127.0.0.1:\(port)") && finding.contains("wrong port"), "\(finding)")
    }

    @Test func aHostThatDoesNotResolveIsNamed() throws {
        let finding = try #require(TCPProbe.diagnose("tcp://no-such-host.invalid:5555"))
        #expect(finding.contains("no-such-host.invalid does not resolve"), "\(finding)")
    }

    @Test func otherTransportsAndMalformedEndpointsAreLeftAlone() {
        #expect(TCPProbe.diagnose("ipc:///tmp/chorus.sock") == nil)
        #expect(TCPProbe.diagnose("tcp://127.0.0.1") == nil)
        #expect(TCPProbe.diagnose("tcp://:5555") == nil)
    }
}
