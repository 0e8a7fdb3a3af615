import Foundation
import ProcessTestSupport
import Testing

/// `chorus worker --local-workers N`: one agent per host, its local workers behind it.
@Suite(.serialized, .needsFashionMNIST)
struct HostAgentTests {
    static let steps = 12
    var run: [String] { ["--max-steps", String(Self.steps), "--batch-size", "64", "--shards", "4", "--seed", "9", "--quiet"] }

    func inProcessHash() throws -> String {
        let out = Chorus.temporaryDirectory("agent-ref")
        let result = try Chorus.run(["train", "--workers", "0", "--out", out] + run)
        #expect(result.status == 0, "\(result.error)")
        return try Chorus.report(out)["params_sha256"] as? String ?? "?"
    }

    /// Two agents over loopback TCP, one losing a local worker to SIGKILL and one garbling the
    /// node sums it sends up: the in-process run's bits, the coordinator seeing two workers.
    @Test func twoAgentsWithAKilledLocalWorkerAndCorruptedNodeSumsKeepTheBits() throws {
        let expected = try inProcessHash()
        let out = Chorus.temporaryDirectory("agents")
        let endpoint = "tcp://127.0.0.1:\(Int.random(in: 20_000...40_000))"
        let coordinator = try Chorus.start(["coordinator", "--bind", endpoint, "--expect", "2", "--out", out] + run)
        let first = try Chorus.start(["worker", "--connect", endpoint, "--local-workers", "2", "--fault", "kill:worker=1,step=4"])
        let second = try Chorus.start(["worker", "--connect", endpoint, "--local-workers", "2", "--agent-fault", "corrupt:worker=0,rate=0.5"])
        let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 240)
        let a = Chorus.finish(first.0, first.1, first.2, timeout: 30), b = Chorus.finish(second.0, second.1, second.2, timeout: 30)
        #expect(result.status == 0, "\(result.error)")
        #expect(a.status == 0 && b.status == 0, "\(a.error) / \(b.error)")
        #expect(a.error.contains("SIGKILL worker 1"), "\(a.error)")
        let report = try Chorus.report(out)
        #expect(report["params_sha256"] as? String == expected)
        let cluster = report["cluster"] as? [String: Any] ?? [:]
        #expect(cluster["corrupt_payloads"] as? Int ?? 0 >= 1, "\(cluster)")
        let hosts = cluster["hosts"] as? [[String: Any]] ?? []
        #expect(hosts.map { $0["workers"] as? Int ?? 0 }.reduce(0, +) == 2, "\(hosts)")
    }

    /// A local worker whose memory flips bits after it computed its gradient (`memflip`): the agent
    /// sees the norm it reported differ from the norm that arrived, recomputes the shard on the
    /// other local worker, and the run keeps the in-process bits (one agent: no cross-host audit
    /// could; with `bitflip`, values computed wrong, the bits differ — the audits' job).
    @Test func aLocalWorkerWithBadMemoryIsCaughtByItsAgentAndTheBitsStay() throws {
        let expected = try inProcessHash()
        let out = Chorus.temporaryDirectory("agent-bitflip")
        let endpoint = "tcp://127.0.0.1:\(Int.random(in: 20_000...40_000))"
        let coordinator = try Chorus.start(["coordinator", "--bind", endpoint, "--expect", "1", "--out", out] + run)
        let agent = try Chorus.start(["worker", "--connect", endpoint, "--local-workers", "2", "--fault", "memflip:worker=1,rate=0.001"])
        let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 240)
        let a = Chorus.finish(agent.0, agent.1, agent.2, timeout: 30)
        #expect(result.status == 0, "\(result.error)")
        #expect(a.error.contains("its values changed after they were computed"), "\(a.error)")
        #expect(try Chorus.report(out)["params_sha256"] as? String == expected)
    }

    /// An agent's local workers do not outlive it: SIGKILL the agent and they exit by themselves.
    @Test func theLocalWorkersOfAKilledAgentExit() throws {
        let out = Chorus.temporaryDirectory("agent-orphans")
        let endpoint = "tcp://127.0.0.1:\(Int.random(in: 20_000...40_000))"
        let long = ["--max-steps", "100000", "--batch-size", "64", "--shards", "4", "--quiet"]
        let coordinator = try Chorus.start(["coordinator", "--bind", endpoint, "--expect", "1", "--out", out] + long)
        let agent = try Chorus.start(["worker", "--connect", endpoint, "--local-workers", "2"])
        defer {
            kill(coordinator.0.processIdentifier, SIGKILL)
            _ = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 10)
        }
        let pid = agent.0.processIdentifier
        let deadline = Date().addingTimeInterval(120)
        while TestHosts.stepsWritten(out) < 5 && Date() < deadline { usleep(20_000) }
        let children = Self.children(of: pid)
        #expect(children.count == 2, "local workers of \(pid): \(children)")
        kill(pid, SIGKILL)
        _ = Chorus.finish(agent.0, agent.1, agent.2, timeout: 10)
        let gone = Date().addingTimeInterval(10)
        while children.contains(where: { kill($0, 0) == 0 }) && Date() < gone { usleep(50_000) }
        #expect(!children.contains { kill($0, 0) == 0 }, "local workers still running after their agent died: \(children)")
    }

    /// Pids whose parent is `pid` (from /proc).
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }
    }
}
