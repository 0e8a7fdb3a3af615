import Foundation
import Cluster
import Signals
import Stress
import Training
import Testing
import WireProtocol

/// `chorus stress` run as a process: exact aggregates, fault counts, exit status, refusals.
@Suite(.serialized)
struct StressTests {
    /// Runs `chorus stress` with a JSON report; returns the process result and the parsed report.
    func stress(_ arguments: [String]) throws -> (Chorus.Result, [String: Any]) {
        let json = Chorus.temporaryDirectory("stress") + "/stress.json"
        let result = try Chorus.run(["stress", "--quiet", "--json", json] + arguments, timeout: 180)
        let data = (try? Data(contentsOf: URL(fileURLWithPath: json))) ?? Data("{}".utf8)
        return (result, try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:])
    }

    func int(_ report: [String: Any], _ key: String) -> Int { (report[key] as? NSNumber)?.intValue ?? -1 }

    @Test func cleanRunHasEveryAggregateExact() throws {
        let (result, report) = try stress(["--workers", "4", "--params", "100000", "--steps", "30"])
        #expect(result.status == 0, "\(result.error)")
        #expect(report["status"] as? String == "exact")
        #expect(int(report, "steps_completed") == 30)
        #expect(int(report, "wrong_aggregates") == 0)
        #expect(int(report, "contributions_aggregated") == 30 * 4)
        #expect(int(report, "aggregated_bytes") == 30 * 4 * 100_000 * 4)
        #expect(result.output.contains("EXACT"))
        // Local workers hand gradients over through the shared-memory pool, as in training.
        #expect(report["shared_memory_gradients"] as? Bool == true)
        #expect(int(report, "shared_memory_gradient_bytes") > 0)
    }

    @Test func socketOnlyRunIsExactToo() throws {
        let (result, report) = try stress(["--workers", "3", "--params", "100000", "--steps", "20", "--no-shm"])
        #expect(result.status == 0, "\(result.error)")
        #expect(report["status"] as? String == "exact")
        #expect(report["shared_memory_gradients"] as? Bool == false)
        #expect(int(report, "shared_memory_gradient_bytes") == 0)
        #expect(int(report, "gradient_bytes_received") == 20 * 3 * 100_000 * 4)
    }

    @Test func sharedMemoryFaultsAreRecoveredAndCounted() throws {
        // A two-slot pool for four workers: results go through shared memory or, when the pool
        // is full, over the socket; kills must not leak slots, garbled slots are caught.
        let (result, report) = try stress([
            "--workers", "4", "--params", "100000", "--steps", "30", "--shm-slots", "2",
            "--fault", "kill:worker=1,every=10", "--fault", "corrupt:worker=2,rate=0.1", "--fault", "drop:worker=3,rate=0.1",
        ])
        #expect(result.status == 0, "\(result.error)")
        #expect(int(report, "wrong_aggregates") == 0)
        #expect(int(report, "steps_lost") == 0)
        #expect(int(report, "contributions_aggregated") == 30 * 4)
        #expect(int(report, "shared_memory_slots") == 2)
        #expect(int(report, "shared_memory_gradient_bytes") > 0)
        let coordination = report["coordination"] as? [String: Any] ?? [:]
        #expect(int(report, "corrupt_detected") == (coordination["corrupt"] as? NSNumber)?.intValue)
    }

    @Test func faultsAreRecoveredAndCounted() throws {
        let (result, report) = try stress([
            "--workers", "4", "--params", "100000", "--steps", "30",
            "--fault", "kill:worker=1,every=10", "--fault", "corrupt:worker=2,rate=0.05", "--fault", "corrupt:worker=0,rate=0.05",
            "--fault", "delay:worker=3,rate=0.2,ms=30",
            "--frame-bytes", "65536",  // training-style multi-frame payloads: reassembly, and corruption in any frame
            "--no-shm",  // over the socket (other hosts' path)
        ])
        #expect(result.status == 0, "\(result.error)")
        #expect(int(report, "wrong_aggregates") == 0)
        #expect(int(report, "steps_lost") == 0)
        // Kills land on multiples of 10 whenever slot 1's (restarted) process holds work then
        // (a restart that has not rejoined by the next multiple is not killed again), and each
        // kill is reaped and replaced at once — the last step's too.
        let kills = (report["kills"] as? [[String: Any]] ?? []).compactMap { ($0["step"] as? NSNumber)?.intValue }
        #expect(!kills.isEmpty && kills.allSatisfy { $0 % 10 == 0 }, "\(kills)")
        #expect(int(report, "workers_restarted") >= kills.count)
        // Each corrupted payload is caught by its checksum and its shard recomputed, never summed.
        let coordination = report["coordination"] as? [String: Any] ?? [:]
        #expect(int(report, "corrupt_detected") == (coordination["corrupt"] as? NSNumber)?.intValue)
        #expect(int(report, "contributions_aggregated") == 30 * 4)
    }

    @Test func bitflipIsCaughtAsWrongAggregates() throws {
        let (result, report) = try stress(["--workers", "3", "--params", "50000", "--steps", "10", "--fault", "bitflip:worker=1,rate=0.0001"])
        #expect(result.status != 0)
        #expect(result.error.contains("stress check failed"), "\(result.error)")
        // Worker 1 computes shard 1 of every step; each of its contributions carries flipped bits.
        #expect(int(report, "wrong_aggregates") == 10)
        #expect(((report["wrong_contributions_by_worker"] as? [String: Any])?["1"] as? NSNumber)?.intValue == 10)
        #expect(int(report, "corrupt_detected") == 0, "checksums pass: the flips happen before checksumming")
    }

    @Test func halfPrecisionWireIsCheckedExactly() throws {
        for dtype in ["fp16", "bf16"] {
            let (result, report) = try stress(["--workers", "2", "--params", "70000", "--steps", "5", "--wire-dtype", dtype])
            #expect(result.status == 0, "\(dtype): \(result.error)")
            #expect(int(report, "wrong_aggregates") == 0, "\(dtype)")
            #expect(int(report, "aggregated_bytes") == 5 * 2 * 70_000 * 2, "\(dtype)")
        }
    }

    @Test func hostAgentsSendNodeSumsAndSurviveKillsAndCorruption() throws {
        // 2 agents × 2 local workers, S = 4: one node sum per agent and step; a local worker
        // SIGKILLed every 10 steps (respawned on its host), agent 1 SIGKILLed at step 40 (its
        // shards reassigned, a new agent started), agent 0's node sums garbled in transit.
        let (result, report) = try stress([
            "--workers", "2", "--local-workers", "2", "--params", "200000", "--steps", "120", "--shards", "4",
            "--local-fault", "kill:worker=1,every=10", "--fault", "kill:worker=1,step=40", "--fault", "corrupt:worker=0,rate=0.1",
        ])
        #expect(result.status == 0, "\(result.error)")
        #expect(report["status"] as? String == "exact")
        #expect(int(report, "steps_completed") == 120 && int(report, "steps_lost") == 0)
        #expect(int(report, "contributions_aggregated") == 120 * 4)
        #expect(int(report, "node_sums") > 120, "agents answer with node sums")
        #expect(int(report, "workers_killed") == 1, "the agent")
        #expect(int(report, "workers_restarted") >= 1)
        #expect(int(report, "local_workers_killed") >= 2, "local kills reach the report through the agents")
        #expect(int(report, "local_workers_restarted") >= 1)
        #expect(int(report, "corrupt_detected") > 0, "garbled node sums are caught by their checksums")
        let coordination = report["coordination"] as? [String: Any] ?? [:]
        #expect(((coordination["reassignments"] as? NSNumber)?.intValue ?? 0) > 0)
        // Half the coordinator's gradient bytes of plain workers: one node of 2 shards per agent.
        #expect(int(report, "gradient_bytes_received") < 120 * 4 * 200_000 * 4)
    }

    @Test func aHostAgentWithBadMemoryIsNamed() throws {
        let (result, report) = try stress(["--workers", "2", "--local-workers", "2", "--params", "50000", "--steps", "10", "--shards", "4",
                                           "--fault", "bitflip:worker=1,rate=0.0001"])
        #expect(result.status != 0)
        #expect(int(report, "wrong_aggregates") == 10)
        #expect(((report["wrong_contributions_by_worker"] as? [String: Any])?["1"] as? NSNumber)?.intValue == 10)
        #expect(result.error.contains("from agent 1"), "\(result.error)")
        let refused = try Chorus.run(["stress", "--workers", "2", "--params", "1000", "--steps", "1", "--local-fault", "kill:worker=0,step=1"], timeout: 30)
        #expect(refused.status != 0 && refused.error.contains("needs --local-workers"), "\(refused.error)")
        let slot = try Chorus.run(["stress", "--workers", "2", "--local-workers", "2", "--params", "1000", "--steps", "1", "--local-fault", "kill:worker=2,step=1"], timeout: 30)
        #expect(slot.status != 0 && slot.error.contains("only 2 local workers"), "\(slot.error)")
    }

    @Test func impossibleSettingsAreRefusedClearly() throws {
        let huge = try Chorus.run(["stress", "--workers", "4", "--params", "4000000000", "--steps", "1"], timeout: 30)
        #expect(huge.status != 0)
        #expect(huge.error.contains("--params 4000000000"), "\(huge.error)")
        let pool = try Chorus.run(["stress", "--workers", "2", "--params", "1000", "--steps", "1", "--shm-slots", "0"], timeout: 30)
        #expect(pool.status != 0 && pool.error.contains("--shm-slots 0"), "\(pool.error)")
        let slot = try Chorus.run(["stress", "--workers", "2", "--params", "1000", "--steps", "1", "--fault", "kill:worker=5,step=1"], timeout: 30)
        #expect(slot.status != 0)
        #expect(slot.error.contains("worker=5"), "\(slot.error)")
        // The hidden worker subcommand checks its own frame size (0 would divide by zero).
        for bytes in ["0", "-4096"] {
            let worker = try Chorus.run(["stress-worker", "--connect", "ipc:///tmp/chorus-none.sock", "--frame-bytes=\(bytes)"], timeout: 30)
            #expect(worker.status == 1 && worker.error.contains("--frame-bytes \(bytes)"), "\(worker.status) \(worker.error)")
        }
    }

    @Test func endpointInUseIsRefused() throws {
        let endpoint = "ipc://\(NSTemporaryDirectory())chorus-stress-busy-\(UUID().uuidString.prefix(6)).sock"
        let (first, out, err) = try Chorus.start(["stress", "--quiet", "--workers", "1", "--params", "1000", "--steps", "400",
                                                  "--fault", "slow:worker=0,ms=20", "--endpoint", endpoint])
        defer { first.terminate(); _ = Chorus.finish(first, out, err, timeout: 20) }
        usleep(1_500_000)
        let second = try Chorus.run(["stress", "--workers", "1", "--params", "1000", "--steps", "1", "--endpoint", endpoint], timeout: 30)
        #expect(second.status != 0)
        #expect(second.error.contains("in use"), "\(second.error)")
    }
}

/// The generator and the aggregator in process, against naive references.
struct StressArithmeticTests {
    @Test func gradientsArePureFunctionsOfSeedStepAndShard() {
        let a = StressGradients(seed: 7, count: 200_000), b = StressGradients(seed: 7, count: 200_000)
        #expect(a.gradient(step: 3, shard: 1) == b.gradient(step: 3, shard: 1))
        let base = a.gradient(step: 3, shard: 1)
        for other in [a.gradient(step: 4, shard: 1), a.gradient(step: 3, shard: 2), StressGradients(seed: 8, count: 200_000).gradient(step: 3, shard: 1)] {
            // Every element differs, so a stale or misrouted contribution changes every element of a sum.
            #expect(zip(base, other).allSatisfy { $0.bitPattern != $1.bitPattern })
        }
        #expect(base.allSatisfy { $0.isFinite && $0.isNormal })
    }

    @Test func aggregatorMatchesANaiveCanonicalSum() {
        let gradients = StressGradients(seed: 2, count: 70_001)
        let aggregator = StressAggregator(gradients: gradients, dtype: .fp32)
        aggregator.beginStep(shards: 3)
        var reference = [Float](repeating: 0, count: 70_001)
        for shard in 0..<3 {
            let g = gradients.gradient(step: 5, shard: shard)
            #expect(aggregator.add(PayloadBuffer(floats: g), step: 5, shard: shard) == 0)
            for i in 0..<g.count { reference[i] = shard == 0 ? g[i] : reference[i] + g[i] }
        }
        #expect(aggregator.aggregate.map(\.bitPattern) == reference.map(\.bitPattern))
        #expect(aggregator.check(shards: 3).wrongElements == 0)
    }

    @Test func outOfOrderAdditionIsAWrongAggregate() {
        let gradients = StressGradients(seed: 2, count: 10_000)
        let aggregator = StressAggregator(gradients: gradients, dtype: .fp32)
        aggregator.beginStep(shards: 3)
        for shard in [0, 2, 1] { _ = aggregator.add(PayloadBuffer(floats: gradients.gradient(step: 1, shard: shard)), step: 1, shard: shard) }
        // Float addition is not associative on these values, so adding out of order shows.
        #expect(aggregator.check(shards: 3).wrongElements > 0)
    }

    @Test func aCorruptedElementOrAMissingContributionIsAWrongAggregate() {
        let gradients = StressGradients(seed: 4, count: 140_000)
        let aggregator = StressAggregator(gradients: gradients, dtype: .fp32)
        aggregator.beginStep(shards: 2)
        var bad = gradients.gradient(step: 9, shard: 1)
        bad[131_073] = Float(bitPattern: bad[131_073].bitPattern ^ 1)
        #expect(aggregator.add(PayloadBuffer(floats: gradients.gradient(step: 9, shard: 0)), step: 9, shard: 0) == 0)
        #expect(aggregator.add(PayloadBuffer(floats: bad), step: 9, shard: 1) == 1)
        let (wrong, first) = aggregator.check(shards: 2)
        #expect(wrong == 1 && first == 131_073)
        // The next step starts clean; one contribution short of S is wrong everywhere.
        aggregator.beginStep(shards: 2)
        #expect(aggregator.add(PayloadBuffer(floats: gradients.gradient(step: 10, shard: 0)), step: 10, shard: 0) == 0)
        #expect(aggregator.check(shards: 2).wrongElements == 140_000)
        aggregator.beginStep(shards: 1)
        #expect(aggregator.add(PayloadBuffer(floats: gradients.gradient(step: 10, shard: 0)), step: 10, shard: 0) == 0)
        #expect(aggregator.check(shards: 1).wrongElements == 0)
    }

    @Test func roundedContributionsAreExpectedOnAHalfWire() {
        let gradients = StressGradients(seed: 3, count: 5_000)
        let aggregator = StressAggregator(gradients: gradients, dtype: .bf16)
        aggregator.beginStep(shards: 2)
        for shard in 0..<2 {
            let payload = PayloadBuffer.encoding(gradients.gradient(step: 2, shard: shard), as: .bf16)
            #expect(aggregator.add(payload, step: 2, shard: shard) == 0)
        }
        #expect(aggregator.check(shards: 2).wrongElements == 0)
    }

    /// Element-wise fp32 a + b.
    func plus(_ a: [Float], _ b: [Float]) -> [Float] {
        var result = a
        for i in result.indices { result[i] += b[i] }
        return result
    }

    @Test func aggregatorSumsAlongTheShardTreeWhateverTheGrouping() {
        let gradients = StressGradients(seed: 6, count: 70_003)
        let g = (0..<5).map { gradients.gradient(step: 3, shard: $0) }
        // S = 5 summed pairwise: ((g0 + g1) + (g2 + g3)) + g4, the tree training sums along.
        let reference = plus(plus(plus(g[0], g[1]), plus(g[2], g[3])), g[4])
        let leftFold = plus(plus(plus(plus(g[0], g[1]), g[2]), g[3]), g[4])
        // The check could fail: on these values the left fold is other bits.
        #expect(leftFold.map(\.bitPattern) != reference.map(\.bitPattern))
        let aggregator = StressAggregator(gradients: gradients, dtype: .fp32)
        // Single shards, then host-agent node sums ([0,2), [2,4), 4), then one node of four.
        let groupings: [[Range<Int>]] = [[0..<1, 1..<2, 2..<3, 3..<4, 4..<5], [0..<2, 2..<4, 4..<5], [0..<4, 4..<5], [0..<1, 1..<2, 2..<4, 4..<5]]
        for grouping in groupings {
            aggregator.beginStep(shards: 5)
            for node in grouping {
                let values: [Float] = node.count == 1 ? g[node.lowerBound]
                    : node.count == 2 ? plus(g[node.lowerBound], g[node.lowerBound + 1]) : plus(plus(g[0], g[1]), plus(g[2], g[3]))
                #expect(aggregator.add(PayloadBuffer(floats: values), step: 3, shards: node) == 0, "\(grouping) \(node)")
            }
            #expect(aggregator.check(shards: 5).wrongElements == 0, "\(grouping)")
            #expect(aggregator.aggregate.map(\.bitPattern) == reference.map(\.bitPattern), "\(grouping)")
        }
    }

    @Test func aWrongNodeSumIsCaughtAndAttributed() {
        let gradients = StressGradients(seed: 6, count: 20_000)
        let g = (0..<4).map { gradients.gradient(step: 8, shard: $0) }
        let aggregator = StressAggregator(gradients: gradients, dtype: .fp32)
        aggregator.beginStep(shards: 4)
        // A node sum in the wrong order of addition: g3 + g2 is the same bits (commutative), but
        // a left fold over a node of four is not.
        var upper = plus(g[3], g[2])
        #expect(aggregator.add(PayloadBuffer(floats: plus(g[0], g[1])), step: 8, shards: 0..<2) == 0)
        upper[17] = Float(bitPattern: upper[17].bitPattern ^ (1 << 22))
        #expect(aggregator.add(PayloadBuffer(floats: upper), step: 8, shards: 2..<4) == 1)
        let (wrong, first) = aggregator.check(shards: 4)
        #expect(wrong == 1 && first == 17)
        aggregator.beginStep(shards: 4)
        let folded = plus(plus(plus(g[0], g[1]), g[2]), g[3])
        #expect(aggregator.add(PayloadBuffer(floats: folded), step: 8, shards: 0..<4) > 0)
        #expect(aggregator.check(shards: 4).wrongElements > 0)
        // A node that is no node of the tree ([1,3)) breaks the step: wrong everywhere.
        aggregator.beginStep(shards: 4)
        _ = aggregator.add(PayloadBuffer(floats: g[0]), step: 8, shard: 0)
        _ = aggregator.add(PayloadBuffer(floats: g[1]), step: 8, shards: 1..<3)
        #expect(aggregator.check(shards: 4).wrongElements == 20_000)
    }

    @Test func nodeSumsOnAHalfWireAreTheRoundedFloatSums() {
        let gradients = StressGradients(seed: 5, count: 9_000)
        let g = (0..<2).map { gradients.gradient(step: 4, shard: $0) }
        for dtype in [WireDType.fp16, .bf16] {
            let aggregator = StressAggregator(gradients: gradients, dtype: dtype)
            aggregator.beginStep(shards: 2)
            let sum = plus(g[0], g[1])
            #expect(aggregator.add(PayloadBuffer.encoding(sum, as: dtype), step: 4, shards: 0..<2) == 0, "\(dtype)")
            #expect(aggregator.check(shards: 2).wrongElements == 0, "\(dtype)")
        }
    }
}
