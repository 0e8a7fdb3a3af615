#if canImport(Glibc)
import Glibc
#endif

/// What a plain TCP connection to a worker's coordinator endpoint finds, for the error a worker
/// prints when it never got an answer. ZeroMQ retries a refused or dropped connection silently,
/// so without this a wrong port, a firewall and a missing CURVE key would all read the same.
package enum TCPProbe {
    /// A sentence naming what is wrong with `endpoint` (`tcp://host:port`), or nil when a TCP
    /// connection succeeds (something listens: the question is then what) or the endpoint is
    /// not TCP.
    package static func diagnose(_ endpoint: String, timeoutMs: Int32 = 1000) -> String? {
        guard endpoint.hasPrefix("tcp://") else { return nil }
        let address = endpoint.dropFirst("tcp://".count)
        guard let colon = address.lastIndex(of: ":") else { return nil }
        var host = String(address[..<colon])
        let port = String(address[address.index(after: colon)...])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, Int(port) != nil else { return nil }

        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, port, &hints, &found)
        guard resolved == 0, let info = found else {
            return "\(host) does not resolve to an address (\(String(cString: gai_strerror(resolved))))"
        }
        defer { freeaddrinfo(found) }
        let socket = Glibc.socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        defer { Glibc.close(socket) }
        _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
        var error: Int32 = 0
        if connect(socket, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
            error = errno
            if error == EINPROGRESS {
                var poller = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
                guard poll(&poller, 1, timeoutMs) > 0 else {
                    return "\(host):\(port) did not answer a TCP connection within \(timeoutMs) ms (a firewall dropping packets, or no machine at that address)"
                }
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length)
            }
        }
        switch error {
        case 0:
            return nil
        case ECONNREFUSED:
            return "nothing listens on \(host):\(port) (connection refused: a wrong port, or no coordinator started there)"
        case EHOSTUNREACH, ENETUNREACH:
            return "no route to \(host) (\(String(cString: strerror(error))))"
        default:
            return "a TCP connection to \(host):\(port) failed: \(String(cString: strerror(error)))"
        }
    }
}
