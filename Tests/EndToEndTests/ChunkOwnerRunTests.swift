import Foundation
import ProcessTestSupport
import Testing

/// `chorus coordinator --chunk-owners` with host agents (`--local-workers N --peer-bind`) on
/// loopback: the in-process bits, and a worker that cannot own chunks refused by name.
@Suite(.serialized, .needsFashionMNIST)
struct ChunkOwnerRunTests {
    static let run = ["--max-steps", "12", "--batch-size", "64", "--shards", "4", "--seed", "9", "--quiet"]

    func inProcessHash(_ run: [String]) throws -> String {
        let out = Chorus.temporaryDirectory("owners-ref")
        let result = try Chorus.run(["train", "--workers", "0", "--out", out] + run)
        #expect(result.status == 0, "\(result.error)")
        return try Chorus.report(out)["params_sha256"] as? String ?? "?"
    }

    @Test func twoAgentsOwningChunksGiveTheInProcessBits() throws {
        let expected = try inProcessHash(Self.run)
        let out = Chorus.temporaryDirectory("owners")
        let endpoint = "tcp://127.0.0.1:\(Int.random(in: 20_000...40_000))"
        let coordinator = try Chorus.start(["coordinator", "--bind", endpoint, "--expect", "2", "--chunk-owners", "--out", out] + Self.run)
        let agents = try (0..<2).map { _ in
            try Chorus.start(["worker", "--connect", endpoint, "--local-workers", "1", "--peer-bind", "tcp://127.0.0.1:0"])
        }
        let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 240)
        let ended = agents.map { Chorus.finish($0.0, $0.1, $0.2, timeout: 30) }
        #expect(result.status == 0, "\(result.error)")
        #expect(ended.allSatisfy { $0.status == 0 }, "\(ended.map(\.error))")
        #expect(ended.allSatisfy { $0.error.contains("chunk owners: 2 agents") }, "\(ended.map(\.error))")
        let report = try Chorus.report(out)
        #expect(report["params_sha256"] as? String == expected)
        let hosts = (report["cluster"] as? [String: Any])?["hosts"] as? [[String: Any]] ?? []
        #expect(hosts.contains { ($0["peer_bytes_sent"] as? Int ?? 0) > 0 }, "the agents' peer traffic is reported: \(hosts)")
    }

    @Test func aWorkerWithoutAPeerEndpointIsRefusedByName() throws {
        let out = Chorus.temporaryDirectory("owners-plain")
        let endpoint = "tcp://127.0.0.1:\(Int.random(in: 20_000...40_000))"
        let coordinator = try Chorus.start(["coordinator", "--bind", endpoint, "--expect", "1", "--chunk-owners", "--out", out] + Self.run)
        let worker = try Chorus.start(["worker", "--connect", endpoint])
        let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 120)
        _ = Chorus.finish(worker.0, worker.1, worker.2, timeout: 30)
        #expect(result.status != 0)
        #expect(result.error.contains("has no peer endpoint") && result.error.contains("--peer-bind"), "\(result.error)")
        let bad = try Chorus.run(["worker", "--connect", endpoint, "--peer-bind", "tcp://127.0.0.1:0"])
        #expect(bad.status != 0 && bad.error.contains("--peer-bind needs --local-workers"), "\(bad.error)")
    }
}

/// Chunk owners on test hosts: three agents on three hosts, the coordinator on a fourth.
extension TestHostSuites {
@Suite(.needsFashionMNIST)
struct ChunkOwnerHostTests {
    /// Each host moves at most 2.5 × M per step each way (M: the parameters' bytes), the
    /// coordinator's card about M each way instead of 3 M, and the in-process bits; then an owner
    /// SIGKILLed mid-run: its step is computed again with its chunks dealt to the others, the same bits.
    @Test func threeOwnerHostsMoveAtMostTwoAndAHalfMEachWayAndSurviveAnOwnersSIGKILL() throws {
        let run = ["--shards", "6", "--max-steps", "60", "--batch-size", "96", "--seed", "9", "--quiet", "--timeout-ms", "1500", "--heartbeat-ms", "250"]
        let out = Chorus.temporaryDirectory("owners-ref-hosts")
        let reference = try Chorus.run(["train", "--workers", "0", "--out", out] + run, timeout: 300)
        #expect(reference.status == 0, "\(reference.error)")
        let expected = try Chorus.report(out)["params_sha256"] as? String ?? "?"
        for killing in [false, true] {
            let directory = Chorus.temporaryDirectory(killing ? "owners-kill" : "owners-hosts")
            try TestHosts.with(4) {
                let coordinator = try TestHosts.start(on: 0, ["coordinator", "--bind", TestHosts.endpoint(0), "--expect", "3", "--chunk-owners",
                                                              "--out", directory] + run)
                let agents = try [1, 2, 3].map {
                    try TestHosts.start(on: $0, ["worker", "--connect", TestHosts.endpoint(0), "--local-workers", "1",
                                                 "--peer-bind", TestHosts.endpoint($0, port: 6000), "--timeout-ms", "1500", "--heartbeat-ms", "250"])
                }
                if killing {
                    #expect(TestHosts.waitForSteps(directory, 20))
                    kill(agents[2].0.processIdentifier, SIGKILL)
                }
                let result = Chorus.finish(coordinator.0, coordinator.1, coordinator.2, timeout: 300)
                for agent in agents { _ = Chorus.finish(agent.0, agent.1, agent.2, timeout: 30) }
                #expect(result.status == 0, "\(result.error)")
                let report = try Chorus.report(directory)
                #expect(report["params_sha256"] as? String == expected, "killing: \(killing)")
                let cluster = report["cluster"] as? [String: Any] ?? [:]
                if killing {
                    #expect(result.error.contains("chunk owner") && result.error.contains("computing the step again"), "\(result.error)")
                    #expect(cluster["recomputed_steps"] as? Int ?? 0 >= 1, "\(cluster)")
                    return
                }
                let parameterBytes = Double(report["parameters"] as? Int ?? 0) * 4
                let out = cluster["max_host_bytes_out_per_step"] as? Double ?? 0, into = cluster["max_host_bytes_in_per_step"] as? Double ?? 0
                #expect(out > 0.5 * parameterBytes && out <= 2.5 * parameterBytes, "busiest host out: \(out) B/step, M = \(parameterBytes)")
                #expect(into > 0.5 * parameterBytes && into <= 2.5 * parameterBytes, "busiest host in: \(into) B/step, M = \(parameterBytes)")
                let hosts = cluster["hosts"] as? [[String: Any]] ?? []
                #expect(hosts.count == 3, "\(hosts)")
                let coordinatorOut = hosts.map { Double($0["bytes_sent"] as? Int ?? 0) }.reduce(0, +) / 60
                let coordinatorIn = hosts.map { Double($0["bytes_received"] as? Int ?? 0) }.reduce(0, +) / 60
                #expect(coordinatorOut <= 1.3 * parameterBytes && coordinatorIn <= 1.3 * parameterBytes,
                        "coordinator: \(coordinatorOut) B/step out, \(coordinatorIn) in; M = \(parameterBytes)")
            }
        }
    }
}
}
