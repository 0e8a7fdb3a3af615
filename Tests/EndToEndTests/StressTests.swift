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
        aggregator.beginStep()
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
        aggregator.beginStep()
        for shard in [0, 2, 1] { _ = aggregator.add(PayloadBuffer(floats: gradients.gradient(step: 1, shard: shard)), step: 1, shard: shard) }
        // Float addition is not associative on these values, so adding out of order shows.
        #expect(aggregator.check(shards: 3).wrongElements > 0)
    }

    @Test func aCorruptedElementOrAMissingContributionIsAWrongAggregate() {
        let gradients = StressGradients(seed: 4, count: 140_000)
        let aggregator = StressAggregator(gradients: gradients, dtype: .fp32)
        aggregator.beginStep()
        var bad = gradients.gradient(step: 9, shard: 1)
        bad[131_073] = Float(bitPattern: bad[131_073].bitPattern ^ 1)
        #expect(aggregator.add(PayloadBuffer(floats: gradients.gradient(step: 9, shard: 0)), step: 9, shard: 0) == 0)
        #expect(aggregator.add(PayloadBuffer(floats: bad), step: 9, shard: 1) == 1)
        let (wrong, first) = aggregator.check(shards: 2)
        #expect(wrong == 1 && first == 131_073)
        // The next step starts clean; one contribution short of S is wrong everywhere.
        aggregator.beginStep()
        #expect(aggregator.add(PayloadBuffer(floats: gradients.gradient(step: 10, shard: 0)), step: 10, shard: 0) == 0)
        #expect(aggregator.check(shards: 1).wrongElements == 0)
        #expect(aggregator.check(shards: 2).wrongElements == 140_000)
    }

    @Test func roundedContributionsAreExpectedOnAHalfWire() {
        let gradients = StressGradients(seed: 3, count: 5_000)
        let aggregator = StressAggregator(gradients: gradients, dtype: .bf16)
        aggregator.beginStep()
        for shard in 0..<2 {
            let payload = PayloadBuffer.encoding(gradients.gradient(step: 2, shard: shard), as: .bf16)
            #expect(aggregator.add(payload, step: 2, shard: shard) == 0)
        }
        #expect(aggregator.check(shards: 2).wrongElements == 0)
    }
}
