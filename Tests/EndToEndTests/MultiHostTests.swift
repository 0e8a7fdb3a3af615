import Foundation
import ProcessTestSupport
import Testing

/// Test hosts: network namespaces on a bridge (cluster/testhosts.sh), each with its own
/// address on a private test subnet; processes on them talk over real TCP between real kernels'
/// network stacks. Needs root (CI is).
enum TestHosts {
    static let script = Chorus.repositoryRoot + "/cluster/testhosts.sh"
    static var available: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") }

    static func address(_ host: Int) -> String { "10.213.7.\(host + 1)" }
    static func endpoint(_ host: Int, port: Int = 5555) -> String { "tcp://\(address(host)):\(port)" }

    /// Runs the script with `arguments`; throws with its output when it fails.
    @discardableResult
    static func control(_ arguments: [String]) throws -> String {
        let run = try ChildProcess.run("/bin/bash", [script] + arguments, timeout: 120, mergeOutput: true)
        guard run.end == .exited(0) else {
            throw NSError(domain: "testhosts", code: Int(run.end.status), userInfo: [NSLocalizedDescriptionKey: "testhosts \(arguments.joined(separator: " ")): \(run.output)"])
        }
        return run.output
    }

    /// Makes `count` hosts, runs `body`, and removes the hosts again whatever happens.
    static func with(_ count: Int, _ body: () throws -> Void) throws {
        try control(["up", String(count)])
        defer { _ = try? control(["down"]) }
        try body()
    }

    /// Starts `chorus arguments` on `host` with extra environment variables.
    static func start(on host: Int, _ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", "chorus-h\(host)", "/usr/bin/env"] + environment.map { "\($0.key)=\($0.value)" } + [Chorus.binary] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    /// Lines of metrics.jsonl so far.
    static func stepsWritten(_ directory: String) -> Int {
        ((try? String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    /// Waits until `directory`'s metrics.jsonl has `steps` lines (false after `timeout` seconds).
    static func waitForSteps(_ directory: String, _ steps: Int, timeout: TimeInterval = 120) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stepsWritten(directory) >= steps { return true }
            usleep(5_000)
        }
        return false
    }
}

/// Every suite that makes test hosts, one test at a time: the hosts' names and subnet are shared.
@Suite(.serialized, .enabled(if: TestHosts.available || Chorus.isCI, "needs root for network-namespace test hosts (cluster/testhosts.sh)"))
struct TestHostSuites {}

/// Coordinator and workers on separate test hosts.
extension TestHostSuites {
@Suite(.needsFashionMNIST)
struct MultiHostTests {
    let run = ["--shards", "4", "--max-steps", "60", "--batch-size", "128", "--seed", "9", "--quiet"]

    /// params_sha256 of the same run in one process.
    func inProcessHash(_ run: [String]) throws -> String {
        let out = Chorus.temporaryDirectory("mh-ref")
        let result = try Chorus.run(["train", "--workers", "0", "--out", out] + run, timeout: 300)
        #expect(result.status == 0, "\(result.error)")
        return try Chorus.report(out)["params_sha256"] as? String ?? "?"
    }

    @Test func aWorkerHostOnAnotherKernelRunsTheCoordinatorsAndGivesTheSameBitsWithCurve() throws {
        let expected = try inProcessHash(run)
        let directory = Chorus.temporaryDirectory("mh-kernel")
        let keys = directory + "/cluster.key"
        let keygen = try Chorus.run(["keygen", "--out", keys])
        let publicKey = keygen.output.replacingOccurrences(of: "public: ", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
        try TestHosts.with(3) {
            let coordinator = try TestHosts.start(on: 0, ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "2", "--curve-keys", keys,
                                                          "--out", directory + "/out"] + run)
            let same = try TestHosts.start(on: 1, ["worker", "--connect", TestHosts.endpoint(0), "--curve-server-key=\(publicKey)"])
            // This host's environment asks for another kernel (as an AVX2-only or differently
            // configured host would pick): the worker must run the coordinator's anyway.
            let other = try TestHosts.start(on: 2, ["worker", "--connect", TestHosts.endpoint(0), "--curve-server-key=\(publicKey)"],
                                            environment: ["OPENBLAS_CORETYPE": "Prescott"])
            let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 300)
            let a = Chorus.finish(same.0, same.1, same.2, timeout: 30), b = Chorus.finish(other.0, other.1, other.2, timeout: 30)
            #expect(result.status == 0, "\(result.error)")
            #expect(a.status == 0 && b.status == 0, "\(a.error) / \(b.error)")
            let report = try Chorus.report(directory + "/out")
            #expect(report["params_sha256"] as? String == expected)
            let causes = (report["collapse"] as? [String: Any])?["causes"] as? [Any] ?? []
            #expect(!"\(causes)".contains("replica_fault"), "\(causes)")
            #expect(!result.error.contains("differ from worker"), "\(result.error)")
        }
    }

    /// One worker per host and S = 4: each sends one node sum of two shards per step, so the
    /// coordinator receives about M (the parameters' bytes) per host and step, not 2 M.
    @Test func eachWorkerHostSendsOneNodeSumPerStepAndTheReportCountsItsBytes() throws {
        let expected = try inProcessHash(run)
        let directory = Chorus.temporaryDirectory("mh-bytes")
        try TestHosts.with(3) {
            let coordinator = try TestHosts.start(on: 0, ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "2", "--audit-every", "0",
                                                          "--out", directory + "/out"] + run)
            let workers = try [1, 2].map { try TestHosts.start(on: $0, ["worker", "--connect", TestHosts.endpoint(0)]) }
            let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 300)
            for worker in workers { _ = Chorus.finish(worker.0, worker.1, worker.2, timeout: 30) }
            #expect(result.status == 0, "\(result.error)")
            let report = try Chorus.report(directory + "/out")
            #expect(report["params_sha256"] as? String == expected)
            let parameterBytes = Double(report["parameters"] as? Int ?? 0) * 4
            let cluster = report["cluster"] as? [String: Any] ?? [:]
            let hosts = cluster["hosts"] as? [[String: Any]] ?? []
            #expect(hosts.compactMap { $0["host"] as? String }.sorted() == [TestHosts.address(1), TestHosts.address(2)], "\(hosts)")
            for host in hosts {
                #expect(host["workers"] as? Int == 1)
                let sent = Double(host["bytes_sent"] as? Int ?? 0) / 60, received = Double(host["bytes_received"] as? Int ?? 0) / 60
                #expect(sent >= parameterBytes && sent <= 1.05 * parameterBytes, "sent \(sent) B/step, M = \(parameterBytes)")
                #expect(received >= parameterBytes && received <= 1.05 * parameterBytes, "received \(received) B/step, M = \(parameterBytes)")
            }
            let busiest = cluster["max_host_bytes_per_step"] as? Double ?? 0
            #expect(busiest >= 2 * parameterBytes && busiest <= 2.1 * parameterBytes, "\(busiest)")
        }
    }

    /// Two hosts, each one agent with two local workers (S = 4): the coordinator moves about M
    /// per host and step each way (plain workers, one per core, would make it 2 M out and 4 M in
    /// with four of them), and the bits are the in-process run's.
    @Test func twoHostAgentsWithTwoLocalWorkersEachMoveAboutMPerHostAndStep() throws {
        let expected = try inProcessHash(run)
        let directory = Chorus.temporaryDirectory("mh-agents")
        try TestHosts.with(3) {
            let coordinator = try TestHosts.start(on: 0, ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "2", "--audit-every", "0",
                                                          "--out", directory + "/out"] + run)
            let agents = try [1, 2].map { try TestHosts.start(on: $0, ["worker", "--connect", TestHosts.endpoint(0), "--local-workers", "2"]) }
            let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 300)
            for agent in agents {
                let ended = Chorus.finish(agent.0, agent.1, agent.2, timeout: 30)
                #expect(ended.status == 0, "\(ended.error)")
            }
            #expect(result.status == 0, "\(result.error)")
            let report = try Chorus.report(directory + "/out")
            #expect(report["params_sha256"] as? String == expected)
            let parameterBytes = Double(report["parameters"] as? Int ?? 0) * 4
            let cluster = report["cluster"] as? [String: Any] ?? [:]
            let hosts = cluster["hosts"] as? [[String: Any]] ?? []
            #expect(hosts.compactMap { $0["host"] as? String }.sorted() == [TestHosts.address(1), TestHosts.address(2)], "\(hosts)")
            var sentTotal = 0.0, receivedTotal = 0.0
            for host in hosts {
                let sent = Double(host["bytes_sent"] as? Int ?? 0) / 60, received = Double(host["bytes_received"] as? Int ?? 0) / 60
                sentTotal += sent
                receivedTotal += received
                #expect(sent <= 1.05 * parameterBytes && received <= 1.05 * parameterBytes, "sent \(sent), received \(received) B/step, M = \(parameterBytes)")
            }
            #expect(sentTotal <= 1.2 * 2 * parameterBytes && receivedTotal <= 1.2 * 2 * parameterBytes,
                    "coordinator: \(sentTotal) B/step out, \(receivedTotal) in; M = \(parameterBytes)")
        }
    }

    /// A local worker SIGKILLed on one host, the other host's agent SIGKILLed (its workers go
    /// with it) and started again: evicted, its shards reassigned, rejoined; the same bits. With
    /// CURVE, so the agents talk over the sealed bulk channel and the new agent gets a session.
    @Test func aKilledLocalWorkerAndAKilledAgentLeaveTheBitsAlone() throws {
        let long = ["--shards", "4", "--max-steps", "300", "--batch-size", "128", "--seed", "9", "--quiet", "--timeout-ms", "1500", "--heartbeat-ms", "250"]
        let expected = try inProcessHash(long)
        let out = Chorus.temporaryDirectory("mh-agent-kill")
        let keys = out + ".key"
        let publicKey = try Chorus.run(["keygen", "--out", keys]).output.replacingOccurrences(of: "public: ", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
        let key = "--curve-server-key=\(publicKey)"
        try TestHosts.with(3) {
            let coordinator = try TestHosts.start(on: 0, ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "2", "--curve-keys", keys, "--out", out] + long)
            let steady = try TestHosts.start(on: 1, ["worker", "--connect", TestHosts.endpoint(0), "--local-workers", "2", key,
                                                     "--fault", "kill:worker=1,step=30"])
            let doomed = try TestHosts.start(on: 2, ["worker", "--connect", TestHosts.endpoint(0), "--local-workers", "2", key])
            #expect(TestHosts.waitForSteps(out, 80))
            kill(doomed.0.processIdentifier, SIGKILL)
            _ = Chorus.finish(doomed.0, doomed.1, doomed.2, timeout: 10)
            let again = try TestHosts.start(on: 2, ["worker", "--connect", TestHosts.endpoint(0), "--local-workers", "2", key])
            let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 300)
            let a = Chorus.finish(steady.0, steady.1, steady.2, timeout: 30)
            _ = Chorus.finish(again.0, again.1, again.2, timeout: 30)
            #expect(result.status == 0, "\(result.error)")
            #expect(a.error.contains("SIGKILL worker 1"), "\(a.error)")
            let report = try Chorus.report(out)
            #expect(report["params_sha256"] as? String == expected)
            let cluster = report["cluster"] as? [String: Any] ?? [:]
            #expect(cluster["evictions"] as? Int ?? 0 >= 1, "\(cluster)")
            #expect(cluster["encryption"] as? String == "curve+aes-256-gcm")
            #expect(cluster["sealed_sessions"] as? Int ?? 0 >= 3, "two agents and the one started again: \(cluster["sealed_sessions"] ?? 0)")
        }
    }

    @Test func aHostWhoseCPUCannotRunTheKernelIsRefusedNamingTheFeatureAndTheFlag() throws {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        try #require(flags.contains(" avx2") && flags.contains(" fma"), "this test needs an AVX2 machine")
        let directory = Chorus.temporaryDirectory("mh-refuse")
        try TestHosts.with(2) {
            let coordinator = try TestHosts.start(on: 0, ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "1", "--blas-core", "Haswell",
                                                          "--out", directory + "/out"] + run)
            defer { coordinator.0.terminate(); _ = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 20) }
            // Test-only switch: this host pretends its CPU lacks AVX2.
            let refused = try TestHosts.start(on: 1, ["worker", "--connect", TestHosts.endpoint(0)], environment: ["CHORUS_TEST_HIDE_CPU_FLAGS": "avx2"])
            let result = Chorus.finish(refused.0, refused.1, refused.2, timeout: 60)
            #expect(result.status == 2, "\(result.error)")
            #expect(result.error.contains("Haswell") && result.error.contains("avx2") && result.error.contains("--blas-core"), "\(result.error)")
        }
    }

    @Test func aCoordinatorSIGKILLedMidRunAndResumedOnItsEndpointFinishesWithTheSameBits() throws {
        let long = ["--shards", "4", "--max-steps", "400", "--batch-size", "128", "--seed", "9", "--quiet"]
        let expected = try inProcessHash(long)
        let out = Chorus.temporaryDirectory("mh-resume")
        let coordinatorArguments = ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "2", "--checkpoint-every", "20", "--out", out] + long
        try TestHosts.with(3) {
            let first = try TestHosts.start(on: 0, coordinatorArguments)
            let workers = try [1, 2].map { try TestHosts.start(on: $0, ["worker", "--connect", TestHosts.endpoint(0)]) }
            #expect(TestHosts.waitForSteps(out, 130), "the run did not reach step 130")
            kill(first.0.processIdentifier, SIGKILL)
            let killedAt = TestHosts.stepsWritten(out)
            let killed = Chorus.finish(first.0, first.1, first.2, timeout: 10)
            try #require(killedAt < 400, "the run finished before it could be killed")
            #expect(killed.end == .signaled(SIGKILL))
            // The workers wait for their coordinator; it comes back from its last checkpoint.
            let second = try TestHosts.start(on: 0, coordinatorArguments + ["--resume", out])
            let result = Chorus.finish(second.0, second.1, second.2, timeout: 300)
            #expect(result.status == 0, "\(result.error)")
            for worker in workers {
                let ended = Chorus.finish(worker.0, worker.1, worker.2, timeout: 30)
                #expect(ended.status == 0, "\(ended.error)")
            }
            let report = try Chorus.report(out)
            #expect(report["params_sha256"] as? String == expected)
            #expect(report["steps"] as? Int == 400)
        }
    }

    @Test func aWorkerHostCutOffPastTheEvictionTimeoutIsEvictedAndRejoinsWhenItsLinkReturns() throws {
        // Long enough that the run is still going well after the link returns (node sums made steps faster: 500 were not).
        let long = ["--shards", "4", "--max-steps", "2000", "--batch-size", "128", "--seed", "9", "--quiet", "--timeout-ms", "1500", "--heartbeat-ms", "250"]
        let expected = try inProcessHash(long)
        let out = Chorus.temporaryDirectory("mh-cut")
        try TestHosts.with(3) {
            let coordinator = try TestHosts.start(on: 0, ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "2", "--out", out] + long)
            let workers = try [1, 2].map { try TestHosts.start(on: $0, ["worker", "--connect", TestHosts.endpoint(0)]) }
            #expect(TestHosts.waitForSteps(out, 60))
            try TestHosts.control(["cut", "2"])
            usleep(3_000_000)  // twice the eviction timeout
            try TestHosts.control(["mend", "2"])
            let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 300)
            for worker in workers { _ = Chorus.finish(worker.0, worker.1, worker.2, timeout: 30) }
            #expect(result.status == 0, "\(result.error)")
            let report = try Chorus.report(out)
            #expect(report["params_sha256"] as? String == expected)
            let cluster = report["cluster"] as? [String: Any] ?? [:]
            #expect((cluster["evictions"] as? Int ?? 0) >= 1, "\(cluster)")
            // The cut-off worker came back: more joins than the two at the start.
            #expect(result.error.components(separatedBy: " joined (").count - 1 >= 3, "\(result.error)")
        }
    }

    @Test func onePercentPacketLossOnEveryLinkAndADelayedWorkerLeaveTheBitsAlone() throws {
        let long = ["--shards", "4", "--max-steps", "150", "--batch-size", "128", "--seed", "9", "--quiet"]
        guard Chorus.require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft"), "nftables") else { return }
        let expected = try inProcessHash(long)
        let out = Chorus.temporaryDirectory("mh-loss")
        try TestHosts.with(3) {
            for host in 0..<3 { try TestHosts.control(["loss", String(host), "1"]) }
            let coordinator = try TestHosts.start(on: 0, ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "2", "--out", out] + long)
            let plain = try TestHosts.start(on: 1, ["worker", "--connect", TestHosts.endpoint(0)])
            let delayed = try TestHosts.start(on: 2, ["worker", "--connect", TestHosts.endpoint(0), "--fault", "delay:worker=0,rate=0.2,ms=30"])
            let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 300)
            _ = Chorus.finish(plain.0, plain.1, plain.2, timeout: 30)
            _ = Chorus.finish(delayed.0, delayed.1, delayed.2, timeout: 30)
            #expect(result.status == 0, "\(result.error)")
            #expect(try Chorus.report(out)["params_sha256"] as? String == expected)
        }
    }

    @Test func aWrongPortAFirewallAndAMissingHostEachEndInOneLineNamingWhatAndWhere() throws {
        try TestHosts.with(2) {
            func worker(_ endpoint: String) throws -> Chorus.Result {
                let started = try TestHosts.start(on: 1, ["worker", "--connect", endpoint, "--coordinator-timeout-ms", "1500"])
                return Chorus.finish(started.0, started.1, started.2, timeout: 30)
            }
            // Host 0 is up but nothing listens on the port.
            let wrongPort = try worker(TestHosts.endpoint(0, port: 5999))
            #expect(wrongPort.status == 1)
            #expect(wrongPort.error.contains("nothing listens on \(TestHosts.address(0)):5999"), "\(wrongPort.error)")
            // A coordinator behind a firewall that drops every packet it receives.
            let coordinator = try TestHosts.start(on: 0, ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "1", "--max-steps", "1", "--quiet",
                                                          "--no-worker-timeout-ms", "60000"])
            defer { kill(coordinator.0.processIdentifier, SIGKILL); _ = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 10) }
            try TestHosts.control(["loss", "0", "100"])
            let firewalled = try worker(TestHosts.endpoint(0))
            #expect(firewalled.status == 1)
            #expect(firewalled.error.contains("\(TestHosts.address(0)):5555 did not answer a TCP connection") && firewalled.error.contains("firewall"), "\(firewalled.error)")
            // An address on the subnet where no host is.
            let missing = try worker("tcp://10.213.7.200:5555")
            #expect(missing.status == 1)
            #expect(missing.error.contains("10.213.7.200"), "\(missing.error)")
            for result in [wrongPort, firewalled, missing] {
                let lines = result.error.split(separator: "\n").filter { !$0.contains("no answer yet") }
                #expect(lines.count == 1, "\(result.error)")
            }
        }
    }

    @Test func aWorkerHostThatVanishesForGoodLeavesTheRunToTheOthersWithTheSameBits() throws {
        let long = ["--shards", "4", "--max-steps", "300", "--batch-size", "128", "--seed", "9", "--quiet", "--timeout-ms", "1500", "--heartbeat-ms", "250"]
        let expected = try inProcessHash(long)
        let out = Chorus.temporaryDirectory("mh-vanish")
        try TestHosts.with(3) {
            let coordinator = try TestHosts.start(on: 0, ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "2", "--out", out] + long)
            let staying = try TestHosts.start(on: 1, ["worker", "--connect", TestHosts.endpoint(0)])
            let vanishing = try TestHosts.start(on: 2, ["worker", "--connect", TestHosts.endpoint(0)])
            #expect(TestHosts.waitForSteps(out, 40))
            try TestHosts.control(["cut", "2"])
            kill(vanishing.0.processIdentifier, SIGKILL)
            let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 300)
            _ = Chorus.finish(staying.0, staying.1, staying.2, timeout: 30)
            _ = Chorus.finish(vanishing.0, vanishing.1, vanishing.2, timeout: 5)
            #expect(result.status == 0, "\(result.error)")
            let report = try Chorus.report(out)
            #expect(report["params_sha256"] as? String == expected)
            #expect(((report["cluster"] as? [String: Any])?["evictions"] as? Int ?? 0) >= 1)
        }
    }
}
}
