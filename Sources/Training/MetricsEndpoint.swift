import Cluster
import CollapseMonitor
import FlyingFox
import FlyingSocks
import Foundation
import Prometheus

/// `--metrics-port P`: the coordinator's live state in Prometheus's text format at
/// `http://HOST:P/metrics` (HOST 127.0.0.1 unless `--metrics-bind` says otherwise).
///
/// swift-prometheus keeps the registry and writes the exposition format; FlyingFox, a small
/// HTTP server on Swift concurrency, serves it from its own tasks while the training loop runs
/// on the main thread (the registry is thread-safe). The trainer calls `update` after each step.
public final class MetricsEndpoint: @unchecked Sendable {
    public let registry: PrometheusCollectorRegistry
    private let server: HTTPServer
    private var task: Task<Void, Error>?
    /// The bound port (the one asked for, or the kernel's choice for 0).
    public private(set) var port: UInt16 = 0

    private let step, epoch, samplesPerSecond, loss, accuracy, learningRate, gradNorm, workers, hosts: Gauge
    private let testAccuracy, testLoss, collapseDetected: Gauge
    private let evictions, reassignments, corruptPayloads, audits, auditMismatches, bytesSent, bytesReceived: Counter
    private let workersRestarted, collapseAlerts: Counter
    private let stepSeconds: ValueHistogram
    private var last: [String: Int] = [:]

    /// Binds `host:port` and starts serving; throws naming the address when it cannot.
    public init(host: String, port requested: Int) throws {
        guard (0...65535).contains(requested) else {
            throw RuntimeError.invalidSetting("--metrics-port \(requested): must be 0…65535")
        }
        let made = PrometheusCollectorRegistry()
        registry = made
        func gauge(_ name: String, _ help: String) -> Gauge { made.makeGauge(name: "chorus_" + name, help: help) }
        func counter(_ name: String, _ help: String) -> Counter { made.makeCounter(name: "chorus_" + name + "_total", help: help) }
        step = gauge("step", "Steps completed.")
        epoch = gauge("epoch", "Epoch of the last step (1-based).")
        samplesPerSecond = gauge("samples_per_second", "Training examples per second in the last step.")
        loss = gauge("loss", "Training loss of the last step.")
        accuracy = gauge("accuracy", "Training accuracy of the last step.")
        learningRate = gauge("learning_rate", "Learning rate applied in the last step.")
        gradNorm = gauge("grad_norm", "Global gradient norm of the last step, before clipping.")
        workers = gauge("live_workers", "Workers computing shards.")
        hosts = gauge("hosts", "Worker hosts seen (the coordinator's own worker processes count as one).")
        testAccuracy = gauge("test_accuracy", "Test accuracy at the last evaluation.")
        testLoss = gauge("test_loss", "Test loss at the last evaluation.")
        collapseDetected = gauge("collapse_detected", "1 once the collapse monitor has detected a collapse.")
        evictions = counter("evictions", "Workers evicted after silence.")
        reassignments = counter("reassignments", "Shards reassigned to another worker.")
        corruptPayloads = counter("corrupt_payloads", "Gradient payloads that failed their checksum (recomputed).")
        audits = counter("audits", "Audited shards compared bit for bit.")
        auditMismatches = counter("audit_mismatches", "Audits whose two results differed.")
        bytesSent = counter("bytes_sent", "Wire bytes the coordinator sent.")
        bytesReceived = counter("bytes_received", "Wire bytes the coordinator received.")
        workersRestarted = counter("workers_restarted", "Local worker processes replaced.")
        collapseAlerts = counter("collapse_alerts", "Alerts the collapse monitor raised.")
        stepSeconds = made.makeValueHistogram(name: "chorus_step_seconds", buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
                                                  help: "Wall time of a training step.")
        let address: sockaddr_in
        do { address = try sockaddr_in.inet(ip4: host, port: UInt16(requested)) } catch {
            throw RuntimeError.invalidSetting("--metrics-bind \(host): not an IPv4 address")
        }
        server = HTTPServer(address: address, logger: .disabled)
        let exposition = registry
        let server = server
        let start = StartState()
        task = Task {
            await server.appendRoute("GET /metrics") { _ in
                HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                             body: Data(exposition.emitToBuffer()))
            }
            do { try await server.run() } catch {
                start.finish(error)
                throw error
            }
        }
        // Wait until it listens (or failed to bind), 10 s at most.
        Task {
            for _ in 0..<1000 {
                if await server.listeningAddress != nil { break }
                try? await Task.sleep(nanoseconds: 10_000_000)
            }
            start.finish(nil)
        }
        let failure = start.wait()
        let bound = failure == nil ? Self.boundPort(Self.listening(server)) : nil
        guard let bound else {
            stop()  // the server task must not outlive a failed start (nor bind the port later)
            if let failure { throw RuntimeError.invalidSetting("--metrics-port \(requested): cannot listen on \(host):\(requested) (\(failure))") }
            throw RuntimeError.invalidSetting("--metrics-port \(requested): \(host):\(requested) did not start listening within 10 s")
        }
        port = bound
    }

    /// The first of "failed to start" and "listening", said once across the two tasks.
    private final class StartState: @unchecked Sendable {
        private let lock = NSLock()
        private let done = DispatchSemaphore(value: 0)
        private var finished = false
        private var failure: Error?

        func finish(_ error: Error?) {
            lock.lock()
            defer { lock.unlock() }
            guard !finished else { return }
            finished = true
            failure = error
            done.signal()
        }

        func wait() -> Error? {
            done.wait()
            lock.lock()
            defer { lock.unlock() }
            return failure
        }
    }

    private static func listening(_ server: HTTPServer) -> Socket.Address? {
        let semaphore = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var address: Socket.Address?
        Task {
            address = await server.listeningAddress
            semaphore.signal()
        }
        semaphore.wait()
        return address
    }

    private static func boundPort(_ address: Socket.Address?) -> UInt16? {
        if case .ip4(_, let port)? = address { return port }
        if case .ip6(_, let port)? = address { return port }
        return nil
    }

    /// The state after a step.
    public func update(row: MetricsRow, stepSeconds seconds: Double, cluster: ClusterReport?, workers live: Int,
                       collapse: CollapseVerdict?, alerts: Int) {
        step.set(to: Double(row.step))
        epoch.set(to: Double(row.epoch))
        samplesPerSecond.set(to: row.samplesPerSecond)
        loss.set(to: row.loss)
        accuracy.set(to: row.accuracy)
        learningRate.set(to: row.learningRate)
        gradNorm.set(to: row.gradNorm)
        workers.set(to: Double(live))
        stepSeconds.record(seconds)
        collapseDetected.set(to: collapse?.detected == true ? 1 : 0)
        advance(collapseAlerts, "alerts", to: alerts)
        guard let cluster else { return }
        hosts.set(to: Double(cluster.hosts.count))
        advance(evictions, "evictions", to: cluster.evictions)
        advance(reassignments, "reassignments", to: cluster.reassignments)
        advance(corruptPayloads, "corrupt", to: cluster.corruptPayloads)
        advance(audits, "audits", to: cluster.audits)
        advance(auditMismatches, "mismatches", to: cluster.auditMismatches)
        advance(bytesSent, "sent", to: cluster.bytesSent)
        advance(bytesReceived, "received", to: cluster.bytesReceived)
        advance(workersRestarted, "restarted", to: cluster.workersRestarted)
    }

    /// Test loss and accuracy at an evaluation.
    public func evaluated(loss: Double, accuracy: Double) {
        testLoss.set(to: loss)
        testAccuracy.set(to: accuracy)
    }

    /// Counters only go up: each is advanced by what its running total grew.
    private func advance(_ counter: Counter, _ key: String, to total: Int) {
        let grown = total - last[key, default: 0]
        if grown > 0 { counter.increment(by: Int64(grown)) }
        last[key] = max(total, last[key, default: 0])
    }

    /// Stops serving.
    public func stop() {
        let server = server
        let semaphore = DispatchSemaphore(value: 0)
        Task {
            await server.stop(timeout: 0.5)
            semaphore.signal()
        }
        semaphore.wait()
        task?.cancel()
        task = nil
    }
}
