import Foundation
import ProcessTestSupport
import Testing

/// `--metrics-port`: scraped by a plain HTTP client in the middle of a real 2-worker run, the
/// exposition checked by Prometheus's own `promtool check metrics`.
@Suite(.serialized, .needsFashionMNIST)
struct MetricsEndpointTests {
    static let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// GET http://127.0.0.1:`port``path` over a bare TCP socket: the status line and the body.
    static func get(port: Int, path: String = "/metrics") -> (status: String, body: String)? {
        guard let fd = Chorus.connectLoopback(port: port) else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        return (String(text[..<split.lowerBound]).components(separatedBy: "\r\n")[0], String(text[split.upperBound...]))
    }

    static func value(_ name: String, in body: String) -> Double? {
        body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
    }

    @Test func aLiveRunIsScrapedMidRunAndTheExpositionIsValid() throws {
        let port = Int.random(in: 20_000...40_000)
        let out = Chorus.temporaryDirectory("metrics")
        let (process, stdout, stderr) = try Chorus.start(Chorus.shortRun(out: out, steps: 2000) + ["--workers", "2", "--metrics-port", String(port)])
        var scraped: (status: String, body: String)?
        for _ in 0..<300 {
            if let got = Self.get(port: port), (Self.value("chorus_step", in: got.body) ?? 0) >= 5 { scraped = got; break }
            usleep(50_000)
        }
        let result = Chorus.finish(process, stdout, stderr)
        #expect(result.status == 0, "\(result.error)")
        let body = try #require(scraped?.body, "never scraped a step from port \(port): \(result.error)")
        #expect(scraped?.status == "HTTP/1.1 200 OK")
        let steps = try #require(Self.value("chorus_step", in: body))
        #expect(steps >= 5 && steps < 2000, "scraped at step \(steps): not mid-run")
        #expect(Self.value("chorus_live_workers", in: body) == 2)
        for name in ["chorus_samples_per_second", "chorus_loss", "chorus_accuracy", "chorus_hosts", "chorus_evictions_total",
                     "chorus_reassignments_total", "chorus_corrupt_payloads_total", "chorus_audits_total", "chorus_audit_mismatches_total",
                     "chorus_bytes_sent_total", "chorus_bytes_received_total", "chorus_step_seconds_count", "chorus_collapse_detected"] {
            #expect(Self.value(name, in: body) != nil, "\(name) missing")
        }
        #expect(Self.value("chorus_step_seconds_count", in: body) == steps)
        let promtool = try #require(Self.promtool ?? (Chorus.isCI ? nil : "skip"), "CI=true but promtool is not installed (apt-get install prometheus)")
        if promtool != "skip" {
            let file = out + "/scraped.prom"
            try body.write(toFile: file, atomically: true, encoding: .utf8)
            let check = try ChildProcess.run("/bin/sh", ["-c", "\(promtool) check metrics < \(file)"], timeout: 60, mergeOutput: true)
            #expect(check.end.status == 0, "promtool: \(check.output)")
        }
    }

    @Test func aPortInUseIsAClearError() throws {
        let port = Int.random(in: 20_000...40_000)
        let out = Chorus.temporaryDirectory("metrics-busy")
        let (first, stdout, stderr) = try Chorus.start(Chorus.shortRun(out: out, steps: 3000) + ["--metrics-port", String(port)])
        defer { first.terminate(); _ = Chorus.finish(first, stdout, stderr) }
        for _ in 0..<100 where Self.get(port: port) == nil { usleep(50_000) }
        let second = try Chorus.run(Chorus.shortRun(out: out + "-2", steps: 2) + ["--metrics-port", String(port)])
        #expect(second.status == 1, "\(second.status) \(second.error)")
        #expect(second.error.contains("--metrics-port \(port)"), "\(second.error)")
    }
}
